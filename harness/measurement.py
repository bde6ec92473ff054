"""The measurement: one number with a unit and labels (DESIGN.md section 1).

Identity lives in labels, never in the metric name: ``busbw 452.1 GB/s {op=all_reduce, size=8589934592,
nodes=2}``. Parsers produce these, thresholds select them by metric and labels, reports group them.

:func:`as_record` writes a measurement, and the other frozen dataclasses a run records next to it (a threshold's
check, a node pool), as the JSON object ``results.jsonl`` holds: every field under its own name in declaration
order. It lives here because this module is the record's foundation, importable from every layer (parsers,
thresholds and probes alike); deriving the object from the fields means a field added to a class is recorded
without a second, hand-kept list that can drift from it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from harness.units import unit

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


@dataclass(frozen=True, slots=True, kw_only=True)
class Measurement:
    """One measured value. ``emulated`` marks numbers that did not come from real hardware."""

    metric: str
    value: float
    unit: str
    labels: Mapping[str, str] = field(default_factory=dict)
    emulated: bool = False

    def __post_init__(self) -> None:
        if not self.metric:
            raise ValueError("a measurement needs a metric name")
        if not isinstance(self.value, int | float) or isinstance(self.value, bool) or math.isnan(self.value):
            raise ValueError(f"measurement {self.metric}: value must be a finite number, got {self.value!r}")
        unit(self.unit)  # raises UnitMismatch for unknown units
        object.__setattr__(self, "labels", {str(k): str(v) for k, v in self.labels.items()})

    def label(self, key: str, default: str = "") -> str:
        return self.labels.get(key, default)

    def with_labels(self, extra: Mapping[str, str] | None) -> Measurement:
        """The same measurement with ``extra`` labels added (they win over existing ones of the same key)."""
        if not extra:
            return self
        return dataclasses.replace(self, labels={**self.labels, **extra})

    def to_dict(self) -> dict[str, Any]:
        return as_record(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Measurement:
        return cls(
            metric=data["metric"],
            value=float(data["value"]),
            unit=data["unit"],
            labels=data.get("labels") or {},
            emulated=bool(data.get("emulated", False)),
        )

    def __str__(self) -> str:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        return f"{self.metric} {self.value:g} {self.unit}" + (f" {{{labels}}}" if labels else "")


def marked_emulated(measurements: Sequence[Measurement], emulated: bool) -> list[Measurement]:
    """The measurements, flagged emulated when the run that produced them was (parsers do not know)."""
    if not emulated:
        return list(measurements)
    return [m if m.emulated else dataclasses.replace(m, emulated=True) for m in measurements]


#: Values written as they are (the common case, decided by one set lookup: a fleet run records 100,000 checks).
_PLAIN: frozenset[type] = frozenset({str, int, float, bool, type(None)})


def _record_value(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    if isinstance(value, Enum):
        return value.value
    if (own := getattr(value, "to_dict", None)) is not None:  # a value with its own record form (a label selector)
        return own()
    if isinstance(value, Mapping):
        return {k: _record_value(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_record_value(v) for v in value]
    return value


@functools.cache
def _field_names(cls: type[DataclassInstance]) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def as_record(obj: DataclassInstance) -> dict[str, Any]:
    """Every field of the dataclass ``obj`` under its own name, in declaration order, as JSON values: enums as their
    values, mappings as dicts, tuples as lists, a value with its own ``to_dict`` as what that returns."""
    return {name: _record_value(getattr(obj, name)) for name in _field_names(type(obj))}
