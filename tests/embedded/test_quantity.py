from __future__ import annotations

from fractions import Fraction

import pytest

from harness.embedded.quantity import format_cpu_millis, is_quantity, parse_quantity, to_millis


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", Fraction(1)),
        ("0", Fraction(0)),
        ("2.5", Fraction(5, 2)),
        (".5", Fraction(1, 2)),
        ("-3", Fraction(-3)),
        ("+7", Fraction(7)),
        ("500m", Fraction(1, 2)),
        ("100n", Fraction(1, 10**7)),
        ("250u", Fraction(1, 4000)),
        ("1k", Fraction(1000)),
        ("1M", Fraction(10**6)),
        ("2G", Fraction(2 * 10**9)),
        ("1T", Fraction(10**12)),
        ("1P", Fraction(10**15)),
        ("1E", Fraction(10**18)),
        ("1Ki", Fraction(1024)),
        ("1.5Gi", Fraction(3 * 2**29)),
        ("1Ti", Fraction(2**40)),
        ("1Ei", Fraction(2**60)),
        ("24576000Ki", Fraction(24576000 * 1024)),
        ("1e3", Fraction(1000)),
        ("1E3", Fraction(1000)),
        ("5e-3", Fraction(5, 1000)),
        ("1.5e+2", Fraction(150)),
    ],
)
def test_parse_quantity_values(text: str, expected: Fraction) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "1KB", "1K", "1mi", "Gi", "1.2.3", "1 Gi", "1e", "--1", "1Gi2"])
def test_parse_quantity_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid quantity"):
        parse_quantity(text)


def test_parse_quantity_rejects_non_string() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        parse_quantity(8)  # type: ignore[arg-type]


def test_exact_arithmetic() -> None:
    assert parse_quantity("0.1") + parse_quantity("0.2") == parse_quantity("300m")


def test_is_quantity() -> None:
    assert is_quantity("1Ti")
    assert not is_quantity("1TB")
    assert not is_quantity(8)


def test_to_millis_rounds_up() -> None:
    assert to_millis("2") == 2000
    assert to_millis("1500m") == 1500
    assert to_millis("0.0001") == 1
    assert to_millis("100u") == 1


@pytest.mark.parametrize(("millis", "text"), [(0, "0"), (2000, "2"), (1500, "1500m"), (250, "250m")])
def test_format_cpu_millis(millis: int, text: str) -> None:
    assert format_cpu_millis(millis) == text
