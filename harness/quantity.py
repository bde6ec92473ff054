"""Kubernetes resource quantities ("500m", "1Gi", "1e3") as exact :class:`~decimal.Decimal` values.

The one implementation of the project (the scheduler, the kubelet's limits and downward API, the cluster spec, the
state metrics, the pod network's bandwidth annotations, storage and capacity checks all read quantities through it;
it lives at the top of ``harness`` so that the cluster layer may use it without importing the embedded target):
exact arithmetic, since
float rounding would let "0.1"+"0.2" CPU exceed "300m". It follows apimachinery's ``resource.ParseQuantity``:

- a signed decimal number ("1", "1.", ".5", "+7") followed by a binary-SI suffix (Ki Mi Gi Ti Pi Ei), a
  decimal-SI suffix (n u m k M G T P E, or none) or a decimal exponent (e3, E-2, within int32 as in kube;
  "1E" alone is one exa);
- no surrounding whitespace;
- precision finer than one nano rounds up, away from zero ("3.001n" is 4n), as kube stores at most nano scale;
- a binary-SI value is capped at 2^63-1 ("9Ei"), as kube caps it.
"""

from __future__ import annotations

import math
import re
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, ROUND_UP, Context, Decimal, Inexact, InvalidOperation, Overflow

__all__ = [
    "EXACT",
    "QUANTITY_RE",
    "ceil_ratio",
    "format_cpu_millis",
    "from_millis",
    "is_quantity",
    "parse_quantity",
    "to_millis",
]

_BINARY: dict[str, int] = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}  # powers of two
_DECIMAL: dict[str, int] = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_NANO = Decimal("1e-9")
_MAX_BINARY = Decimal(2**63 - 1)
_MAX_EXPONENT = 2**31 - 1
# Every operation in this context is exact: a result that would need rounding raises instead of silently losing
# digits (sums of quantities use it too; the default context keeps 28 digits).
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[Inexact, InvalidOperation, Overflow])

# The exponent alternative comes first so "1E3" is 1000 while a bare "1E" is one exa, as in apimachinery.
QUANTITY_RE = re.compile(
    r"(?P<num>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<exp>[eE][+-]?[0-9]+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?))"
)


def parse_quantity(s: str) -> Decimal:
    """Return the exact value of a Kubernetes quantity string; raise ValueError naming the bad input."""
    if not isinstance(s, str):
        raise ValueError(f"quantity must be a string, got {type(s).__name__} {s!r}")
    match = QUANTITY_RE.fullmatch(s)
    exponent = int(match["exp"][1:]) if match is not None and match["exp"] is not None else 0
    if match is None or abs(exponent) > _MAX_EXPONENT:
        raise ValueError(
            f"invalid quantity {s!r}: expected a number with an optional suffix "
            "(n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei) or exponent (e.g. 1e3), no spaces"
        )
    number = Decimal(match["num"])
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        value = EXACT.multiply(number, 2 ** _BINARY[suffix])
    else:
        value = EXACT.scaleb(number, exponent if match["exp"] is not None else _DECIMAL[suffix])
    if value.as_tuple().exponent < -9:  # type: ignore[operator]  # finite here: the exponent is an int
        value = value.quantize(_NANO, rounding=ROUND_UP, context=Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN))
    if suffix in _BINARY and abs(value) > _MAX_BINARY:
        value = _MAX_BINARY.copy_sign(value)
    return value


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
    """Return a quantity in milli-units, rounded up as kube's MilliValue does ("0.1m" CPU still reserves 1m)."""
    return math.ceil(EXACT.scaleb(parse_quantity(s), 3))


def from_millis(millis: int) -> Decimal:
    """The exact quantity of ``millis`` milli-units."""
    return EXACT.scaleb(Decimal(millis), -3)


def ceil_ratio(value: Decimal, divisor: Decimal) -> int:
    """``value / divisor`` rounded up, exactly (the downward API's resourceFieldRef with a divisor)."""
    quotient, remainder = EXACT.divmod(value, divisor)  # quotient truncated toward zero; remainder has value's sign
    return int(quotient) + (1 if remainder and (remainder > 0) == (divisor > 0) else 0)


def format_cpu_millis(millis: int) -> str:
    """Format millicores the way kubectl shows them: whole cores as "2", anything else as "1500m"."""
    if millis % 1000 == 0:
        return str(millis // 1000)
    return f"{millis}m"
