"""Kubernetes name syntax: the cases apimachinery's validation tests use, so admission, selectors, the cluster spec
and the pod network agree with kube-apiserver on what a name is."""

from __future__ import annotations

import pytest

from harness.embedded.names import (
    is_c_identifier,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_label_value,
    is_qualified_name,
    is_qualified_name_part,
)


@pytest.mark.parametrize(
    "value", ["a", "ab", "abc", "a1", "a-1", "a--1--2--b", "0", "01", "012", "1a", "1-a", "a" * 63]
)
def test_dns1123_label_accepts(value: str) -> None:
    assert is_dns1123_label(value)


@pytest.mark.parametrize("value", ["", "A", "ABC", "aBc", "a_1", "a.1", "-1", "1-", "a b", "a" * 64, "a\n"])
def test_dns1123_label_rejects(value: str) -> None:
    assert not is_dns1123_label(value)


@pytest.mark.parametrize("value", ["a", "a.a", "0.0", "a-1.b-2", "1.a.1", "a" * 253, ("a" * 63 + ".") * 3 + "a"])
def test_dns1123_subdomain_accepts(value: str) -> None:
    assert is_dns1123_subdomain(value)


@pytest.mark.parametrize("value", ["", "A", "a..b", ".a", "a.", "a_b.c", "-a.b", "a" * 254, "a.b\n"])
def test_dns1123_subdomain_rejects(value: str) -> None:
    assert not is_dns1123_subdomain(value)


def test_dns1035_label_must_start_with_a_letter() -> None:
    assert is_dns1035_label("a-1")
    assert not is_dns1035_label("1-a")
    assert not is_dns1035_label("a" * 64)


@pytest.mark.parametrize(
    "value",
    ["simple", "now-with-dashes", "1-starts-with-num", "1234", "simple/simple", "now-with-dashes/simple",
     "now-with-dashes/now-with-dashes", "now.with.dots/simple", "now-with.dashes-and.dots/simple",
     "1-num.2-num/3-num", "1234/5678", "1.2.3.4/5678", "Uppercase_Is_OK_123", "example.com/Uppercase_Is_OK_123",
     "requests.storage-foo", "a" * 63, "a" * 253 + "/" + "b" * 63],
)  # fmt: skip
def test_qualified_name_accepts(value: str) -> None:
    assert is_qualified_name(value)


@pytest.mark.parametrize(
    "value",
    ["", "nospecialchars%^=@", "cantendwithadash-", "-cantstartwithadash-", "only/one/slash", "Example.com/abc",
     "example_com/abc", "example.com/", "/simple", "a" * 64, "a" * 254 + "/abc"],
)  # fmt: skip
def test_qualified_name_rejects(value: str) -> None:
    assert not is_qualified_name(value)


def test_qualified_name_part_has_no_prefix() -> None:
    assert is_qualified_name_part("My.Name_1")
    assert not is_qualified_name_part("a/b")
    assert not is_qualified_name_part("")


@pytest.mark.parametrize("value", ["", "simple", "now-with-dashes", "1-starts-with-num", "end-with-num-1", "1234",
                                   "a" * 63, "Uppercase_Is_OK_123"])  # fmt: skip
def test_label_value_accepts(value: str) -> None:
    assert is_label_value(value)


@pytest.mark.parametrize("value", ["nospecialchars%^=@", "Tama-nui-te-rā.is.Māori.sun", "\\backslashes\\",
                                   "-starts-with-dash", "ends-with-dash-", ".starts.with.dot", "ends.with.dot.",
                                   "a" * 64])  # fmt: skip
def test_label_value_rejects(value: str) -> None:
    assert not is_label_value(value)


def test_c_identifier() -> None:
    assert is_c_identifier("_a1")
    assert is_c_identifier("A_B")
    assert not is_c_identifier("1a")
    assert not is_c_identifier("a-b")
    assert not is_c_identifier("a\n")


@pytest.mark.parametrize(
    "key",
    ["app", "example.com/app", "a" * 63, "/app", "Example.com/app", "example.com/", "a" * 64, "-app", "app\n"],
)
def test_object_labels_and_selectors_agree_on_what_a_label_key_is(key: str) -> None:
    """Before one module held the syntax, admission accepted ``/app`` (an empty prefix) that selectors refuse."""
    from harness.embedded.admission import validate_labels
    from harness.embedded.selectors import SelectorError, validate_label_key

    admitted = validate_labels({key: "v"}, "metadata.labels") == []
    try:
        validate_label_key(key)
        selectable = True
    except SelectorError:
        selectable = False
    assert admitted == selectable == is_qualified_name(key)
