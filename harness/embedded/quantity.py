"""Kubernetes resource quantities ("500m", "1Gi", "1e3") as exact fractions.

The scheduler compares requests against allocatable and the cluster spec validates capacities; both need the
same parser, and both need exact arithmetic (float rounding would let "0.1"+"0.2" CPU exceed "300m").
The grammar follows apimachinery's ``resource.Quantity``: a signed decimal number followed by a binary-SI suffix
(Ki..Ei), a decimal-SI suffix (n, u, m, "", k, M, G, T, P, E) or a decimal exponent (e3, E-2).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

__all__ = ["QUANTITY_RE", "format_cpu_millis", "is_quantity", "parse_quantity", "to_millis"]

_BINARY: dict[str, int] = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL: dict[str, Fraction] = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}

# Exponent alternative comes first so "1E3" is 1000 while a bare "1E" is one exa, as in apimachinery.
QUANTITY_RE = re.compile(
    r"^(?P<num>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<exp>[eE][+-]?[0-9]+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?))$"
)


def parse_quantity(s: str) -> Fraction:
    """Return the exact value of a Kubernetes quantity string; raise ValueError naming the bad input."""
    if not isinstance(s, str):
        raise ValueError(f"quantity must be a string, got {type(s).__name__} {s!r}")
    match = QUANTITY_RE.match(s.strip())
    if match is None or not s.strip():
        raise ValueError(
            f"invalid quantity {s!r}: expected a number with an optional suffix "
            "(n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei) or exponent (e.g. 1e3)"
        )
    number = Fraction(match["num"])
    if match["exp"] is not None:
        exponent = int(match["exp"][1:])
        return number * (Fraction(10) ** exponent)
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    return number * _DECIMAL[suffix]


def is_quantity(s: object) -> bool:
    """Say whether ``s`` is a valid quantity string, for validators that build their own error message."""
    if not isinstance(s, str):
        return False
    try:
        parse_quantity(s)
    except ValueError:
        return False
    return True


def to_millis(s: str) -> int:
    """Return a CPU quantity in millicores, rounded up as the kubelet does ("0.1m" still reserves 1m)."""
    return math.ceil(parse_quantity(s) * 1000)


def format_cpu_millis(millis: int) -> str:
    """Format millicores the way kubectl shows them: whole cores as "2", anything else as "1500m"."""
    if millis % 1000 == 0:
        return str(millis // 1000)
    return f"{millis}m"
