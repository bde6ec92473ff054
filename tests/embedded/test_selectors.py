"""Selector semantics the embedded API server must share with kube (see harness/embedded/selectors.py)."""

from __future__ import annotations

import pytest

from harness.embedded.selectors import (
    LabelSelector,
    SelectorError,
    label_selector_from_object,
    parse_field_selector,
    parse_label_selector,
)

POD_LABELS = {"app": "web", "tier": "frontend", "aibench.io/run-id": "r1"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("app=web", True),
        ("app==web", True),
        ("app=db", False),
        ("app!=db", True),
        ("app!=web", False),
        ("missing!=x", True),  # an absent key satisfies != like in kube
        ("app in (db, web)", True),
        ("app in (db)", False),
        ("app notin (db,cache)", True),
        ("missing notin (x)", True),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("app=web,tier=frontend", True),
        ("app=web, tier=backend", False),
        ("  app = web ,  aibench.io/run-id=r1 ", True),
        ("", True),
        ("missing=", False),
    ],
)
def test_label_selector_matches(text: str, expected: bool) -> None:
    assert parse_label_selector(text).matches(POD_LABELS) is expected


def test_empty_value_matches_label_with_empty_value() -> None:
    assert parse_label_selector("flag=").matches({"flag": ""})
    assert not parse_label_selector("flag=").matches({})


def test_greater_less_than() -> None:
    assert parse_label_selector("gen>3").matches({"gen": "4"})
    assert not parse_label_selector("gen<3").matches({"gen": "4"})
    assert not parse_label_selector("gen>3").matches({"gen": "x"})


def test_string_form_is_sorted_like_kube() -> None:
    sel = parse_label_selector("tier in (b,a),app=web,!gone,x")
    assert str(sel) == "app=web,!gone,tier in (a,b),x"
    assert parse_label_selector("app=web,tier=f") == parse_label_selector("tier=f, app=web")


@pytest.mark.parametrize(
    "text",
    [
        "app in ()",
        "app in (a",
        "app=web,",
        "=web",
        "app in (a b)",
        "!app=x",
        "app notin x",
        "app=(x)",
        "-bad=x",
        "a/b/c=x",
        "Bad_Prefix/name=x",
        "x" * 64 + "=y",
        "app=" + "v" * 64,
        "app=-v",
        "gen>x",
    ],
)
def test_label_selector_rejects(text: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(text)


def test_label_error_message_mentions_requirement() -> None:
    with pytest.raises(SelectorError, match="unable to parse requirement"):
        parse_label_selector("-bad=x")
    with pytest.raises(SelectorError, match="found"):
        parse_label_selector("app in (a")


def test_prefixed_keys_accepted() -> None:
    sel = parse_label_selector("node-role.kubernetes.io/control-plane,example.com/x.y_z=1")
    assert sel.matches({"node-role.kubernetes.io/control-plane": "", "example.com/x.y_z": "1"})


def test_label_selector_from_object() -> None:
    sel = label_selector_from_object(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["frontend", "edge"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "aibench.io/run-id", "operator": "Exists"},
                {"key": "zone", "operator": "NotIn", "values": ["b"]},
            ],
        }
    )
    assert sel.matches(POD_LABELS)
    assert not sel.matches({**POD_LABELS, "canary": "1"})
    assert not sel.matches({**POD_LABELS, "zone": "b"})
    assert str(sel) == "aibench.io/run-id,app=web,!canary,tier in (edge,frontend),zone notin (b)"


def test_empty_object_selects_everything_and_none_selects_nothing() -> None:
    assert label_selector_from_object({}).matches({"anything": "x"})
    assert label_selector_from_object({}).empty
    assert label_selector_from_object({"matchLabels": {}, "matchExpressions": []}).matches(None)
    nothing = label_selector_from_object(None)
    assert not nothing.matches({})
    assert not nothing.matches(POD_LABELS)
    assert nothing == LabelSelector.nothing()
    assert not nothing.empty


@pytest.mark.parametrize(
    "sel",
    [
        {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
        {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
        {"matchExpressions": [{"key": "a", "operator": "Near", "values": ["x"]}]},
        {"matchLabels": {"a": "bad value"}},
    ],
)
def test_label_selector_from_object_rejects(sel: dict) -> None:
    with pytest.raises(SelectorError):
        label_selector_from_object(sel)


POD = {
    "kind": "Pod",
    "metadata": {"name": "web-0", "namespace": "team-a", "uid": "u-1"},
    "spec": {"nodeName": "node-1", "hostNetwork": False},
    "status": {"phase": "Running"},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metadata.name=web-0", True),
        ("metadata.name==web-0", True),
        ("metadata.name!=web-0", False),
        ("metadata.namespace=team-a,status.phase=Running", True),
        ("status.phase!=Running", False),
        ("status.phase!=Pending", True),
        ("spec.nodeName=node-1", True),
        ("spec.nodeName=", False),
        ("spec.hostNetwork=false", True),
        ("spec.schedulerName=", True),  # missing field compares as ""
        ("", True),
    ],
)
def test_field_selector_matches(text: str, expected: bool) -> None:
    assert parse_field_selector(text).matches(POD) is expected


def test_field_selector_unscheduled_pods() -> None:
    pending = {"metadata": {"name": "p"}, "spec": {}}
    assert parse_field_selector("spec.nodeName=").matches(pending)
    assert not parse_field_selector("spec.nodeName!=").matches(pending)


def test_field_selector_event_fields() -> None:
    event = {
        "involvedObject": {"kind": "Pod", "uid": "u-1", "name": "web-0"},
        "reason": "FailedScheduling",
        "source": {"component": "default-scheduler"},
        "type": "Warning",
    }
    assert parse_field_selector("involvedObject.uid=u-1,involvedObject.kind=Pod,type=Warning").matches(event)
    assert parse_field_selector("source=default-scheduler").matches(event)
    assert not parse_field_selector("reason=Scheduled").matches(event)


def test_field_selector_exact_and_paths() -> None:
    sel = parse_field_selector("metadata.name=web-0,status.phase!=Failed,spec.nodeName==n1")
    assert sel.exact("metadata.name") == "web-0"
    assert sel.exact("spec.nodeName") == "n1"
    assert sel.exact("status.phase") is None
    assert sel.exact("metadata.namespace") is None
    assert sel.paths == {"metadata.name", "status.phase", "spec.nodeName"}
    assert str(sel) == "metadata.name=web-0,status.phase!=Failed,spec.nodeName==n1"


def test_field_selector_escapes() -> None:
    sel = parse_field_selector(r"metadata.annotations.x=a\,b\=c\\d,status.phase=Running")
    assert sel.exact("metadata.annotations.x") == "a,b=c\\d"
    assert len(sel.requirements) == 2
    assert parse_field_selector(str(sel)) == sel


@pytest.mark.parametrize("text", ["metadata.name", "=x", r"metadata.name=a\qb", "a=b=c"])
def test_field_selector_rejects(text: str) -> None:
    with pytest.raises(SelectorError):
        parse_field_selector(text)
