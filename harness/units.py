"""Units of measurements and thresholds, and conversion between compatible ones.

A profile may state a bar in GB/s while a parser reports MiB/s; both are bandwidth, so the bar is converted. A bar
in ms against a measurement in GB/s is a configuration error (:class:`UnitMismatch`), never a silent comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["UNITS", "Unit", "UnitMismatch", "convert", "unit"]


class UnitMismatch(ValueError):
    """Two units of different dimensions (or an unknown unit) were compared or converted."""


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit: its dimension and its factor to the dimension's base unit."""

    symbol: str
    dimension: str
    factor: float


def _family(dimension: str, **factors: float) -> dict[str, Unit]:
    return {symbol: Unit(symbol, dimension, factor) for symbol, factor in factors.items()}


_K, _M, _G, _T = 1e3, 1e6, 1e9, 1e12
_KI, _MI, _GI, _TI = 1024.0, 1024.0**2, 1024.0**3, 1024.0**4

#: The decimal and binary multiples of a byte: sizes (``GiB``) and bandwidths (``GiB/s``) share them.
_BYTE_MULTIPLES: dict[str, float] = {
    "B": 1.0,
    "KB": _K,
    "MB": _M,
    "GB": _G,
    "TB": _T,
    "KiB": _KI,
    "MiB": _MI,
    "GiB": _GI,
    "TiB": _TI,
}

UNITS: dict[str, Unit] = {
    # bandwidth, base B/s
    **_family(
        "bandwidth",
        **{f"{symbol}/s": factor for symbol, factor in _BYTE_MULTIPLES.items()},
        **{"bit/s": 1 / 8, "Kbit/s": _K / 8, "Mbit/s": _M / 8, "Gbit/s": _G / 8, "Gb/s": _G / 8, "Tbit/s": _T / 8},
    ),
    # time, base s
    **_family("time", ns=1e-9, us=1e-6, ms=1e-3, s=1.0, min=60.0),
    # data size, base B
    **_family("size", **_BYTE_MULTIPLES),
    # event rates, base 1/s (IOPS, requests and tokens are rates of different things: separate dimensions)
    **_family("iops", IOPS=1.0, kIOPS=_K),
    **_family("request_rate", **{"req/s": 1.0}),
    **_family("token_rate", **{"tok/s": 1.0}),
    **_family("call_rate", **{"calls/s": 1.0}),  # remote calls: Ray tasks and actor methods
    **_family("flops", **{"FLOP/s": 1.0, "GFLOP/s": _G, "TFLOP/s": _T, "PFLOP/s": 1e15}),
    **_family("ratio", ratio=1.0, **{"%": 0.01}),
    **_family("count", count=1.0),
    **_family("cpu", cores=1.0, millicores=1e-3),
    **_family("temperature", C=1.0),
    **_family("power", W=1.0, kW=_K),
}


def unit(symbol: str) -> Unit:
    """The :class:`Unit` for ``symbol``; unknown symbols are an error naming the known ones of a similar kind."""
    try:
        return UNITS[symbol]
    except KeyError:
        raise UnitMismatch(f"unknown unit {symbol!r} (known: {', '.join(sorted(UNITS))})") from None


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """``value`` in ``from_unit`` expressed in ``to_unit``; raises :class:`UnitMismatch` across dimensions."""
    if from_unit == to_unit:
        return value
    source, target = unit(from_unit), unit(to_unit)
    if source.dimension != target.dimension:
        raise UnitMismatch(f"cannot compare {from_unit} ({source.dimension}) with {to_unit} ({target.dimension})")
    return value * source.factor / target.factor
