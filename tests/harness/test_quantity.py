"""Quantities parse as kube's apimachinery parses them: the cases are its own (resource/quantity_test.go,
TestQuantityParse), the values exact Decimals."""

from __future__ import annotations

from decimal import Decimal

import pytest

from harness.quantity import (
    ceil_ratio,
    format_cpu_millis,
    from_millis,
    is_quantity,
    parse_quantity,
    to_millis,
)

MAX_INT64 = Decimal(2**63 - 1)

# (input, value) from apimachinery's TestQuantityParse; decQuantity(n, s) is n * 10**s
KUBE_CASES = [
    ("0", "0"),
    ("0n", "0"),
    ("0Ki", "0"),
    ("0T", "0"),
    ("1", "1"),
    ("1Ki", "1024"),
    ("8Ki", str(8 * 1024)),
    ("7Mi", str(7 * 1024**2)),
    ("6Gi", str(6 * 1024**3)),
    ("5Ti", str(5 * 1024**4)),
    ("4Pi", str(4 * 1024**5)),
    ("3Ei", str(3 * 1024**6)),
    ("100Ti", str(100 * 1024**4)),
    ("5n", "5e-9"),
    ("4u", "4e-6"),
    ("3m", "3e-3"),
    ("8k", "8e3"),
    ("50k", "5e4"),
    ("7M", "7e6"),
    ("6G", "6e9"),
    ("300T", "3e14"),
    ("2P", "2e15"),
    ("1E", "1e18"),
    ("1E-3", "1e-3"),
    ("1e3", "1e3"),
    ("1E6", "1e6"),
    ("1E18", "1e18"),
    ("1e14", "1e14"),
    ("100.035k", "100035"),
    ("0.001", "1e-3"),
    ("0.0005k", "0.5"),
    ("0.00050k", "0.5"),
    ("0.50000", "0.5"),
    ("0.5e-2", "5e-3"),
    ("10.035M", "10035e3"),
    ("1.2e3", "12e2"),
    ("1.3E+6", "13e5"),
    ("1.53E12", "153e10"),
    ("1.7E18", "17e17"),
    ("9.01", "9.01"),
    ("7.123456M", "7123456"),
    ("6.987654321G", "6987654321"),
    ("40.1T", "401e11"),
    ("1.01E", "101e16"),
    # precision finer than nano rounds up to the next nano
    ("3.001n", "4e-9"),
    ("1.1E-9", "2e-9"),
    ("0.0000000001", "1e-9"),
    ("0.5e-9", "1e-9"),
    ("0.9n", "1e-9"),
    ("0.00000012345", "124e-9"),
    ("0.00000012354", "124e-9"),
    # binary-SI values are capped at int64; decimal-SI ones are not
    ("9Ei", str(MAX_INT64)),
    ("9223372036854775807Ki", str(MAX_INT64)),
    ("12E", "12e18"),
    ("100.035Ki", "102435.84"),
    ("0.5Mi", str(512 * 1024)),
    ("0.05Gi", "53687091.2"),
    ("0.025Ti", "27487790694.4"),
    ("0.000000000001Ki", "2e-9"),
    (".001", "1e-3"),
    (".0001k", "0.1"),
    ("1.", "1"),
    ("1.G", "1e9"),
]

# apimachinery's invalid list (plus the project's own earlier ones)
KUBE_INVALID = [
    "1.1.M",
    "1+1.0M",
    "0.1mi",
    "0.1am",
    "aoeu",
    ".5i",
    "1i",
    "-3.01i",
    "-3.01e-",
    "1e4294967297",
    " 1",
    "1 ",
]


@pytest.mark.parametrize(("text", "expected"), KUBE_CASES)
def test_kube_parse_cases(text: str, expected: str) -> None:
    assert parse_quantity(text) == Decimal(expected)
    assert parse_quantity("+" + text) == Decimal(expected)
    assert parse_quantity("-" + text) == -Decimal(expected)


@pytest.mark.parametrize(
    "text", [*KUBE_INVALID, "", "abc", "1KB", "1K", "Gi", "1.2.3", "1 Gi", "1e", "--1", "1Gi2", "."]
)
def test_parse_quantity_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid quantity"):
        parse_quantity(text)


def test_parse_quantity_rejects_non_string() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        parse_quantity(8)  # type: ignore[arg-type]


def test_exact_arithmetic() -> None:
    assert parse_quantity("0.1") + parse_quantity("0.2") == parse_quantity("300m")
    assert isinstance(parse_quantity("1Gi"), Decimal)


def test_kube_comparisons() -> None:
    """apimachinery's TestQuantityCmp."""
    assert parse_quantity("100m") > parse_quantity("50m")
    assert parse_quantity("10000T") > parse_quantity("100Gi")
    assert parse_quantity("0") == parse_quantity("0")


def test_is_quantity() -> None:
    assert is_quantity("1Ti")
    assert not is_quantity("1TB")
    assert not is_quantity(8)


def test_millis() -> None:
    assert to_millis("2") == 2000
    assert to_millis("1500m") == 1500
    assert to_millis("0.0001") == 1  # rounded up, as MilliValue does
    assert to_millis("100u") == 1
    assert to_millis("-1500m") == -1500
    assert from_millis(1500) == Decimal("1.5")
    assert from_millis(to_millis("250m")) == parse_quantity("250m")


@pytest.mark.parametrize(
    ("value", "divisor", "expected"),
    [("1Gi", "1Mi", 1024), ("1500m", "1", 2), ("1", "1m", 1000), ("1", "3", 1), ("-5", "2", -2), ("7", "-2", -3)],
)
def test_ceil_ratio(value: str, divisor: str, expected: int) -> None:
    assert ceil_ratio(parse_quantity(value), parse_quantity(divisor)) == expected


@pytest.mark.parametrize(("millis", "text"), [(0, "0"), (2000, "2"), (1500, "1500m"), (250, "250m")])
def test_format_cpu_millis(millis: int, text: str) -> None:
    assert format_cpu_millis(millis) == text
