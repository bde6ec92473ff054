"""The measurement: one number with a unit and labels (DESIGN.md section 1).

Identity lives in labels, never in the metric name: ``busbw 452.1 GB/s {op=all_reduce, size=8589934592,
nodes=2}``. Parsers produce these, thresholds select them by metric and labels, reports group them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.units import unit


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
        return {
            "metric": self.metric,
            "value": self.value,
            "unit": self.unit,
            "labels": dict(self.labels),
            "emulated": self.emulated,
        }

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
    return [
        m if m.emulated else Measurement(metric=m.metric, value=m.value, unit=m.unit, labels=m.labels, emulated=True)
        for m in measurements
    ]
