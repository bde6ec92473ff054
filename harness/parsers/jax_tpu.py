"""The TPU JAX workload's result block (``workloads/tpu-jax/tpu_bench.py``): slice size as JAX sees it, per-chip
bf16 matmul TFLOP/s, HBM copy bandwidth, and psum all-reduce bandwidth across the slice.

Why a dedicated reader on top of the sentinel block: the first TPU question is not speed but shape. A pod that
asked for a 2x4 slice and got a JAX runtime with 4 chips (a wrong topology selector, a host whose other chips are
held by a stale pod) measures the wrong thing perfectly well, so the device counts are returned separately for the
suite to judge before any number is.

Measurements (labels): ``tflops`` TFLOP/s ``{dtype=bf16, chip=<global id>}``, ``membw`` GB/s ``{chip=...}``,
``allreduce_busbw`` / ``allreduce_algbw`` GB/s ``{op=psum, size=<bytes>, chips=<n>}``. All-reduce bus bandwidth
uses the nccl-tests convention (algbw x 2(n-1)/n) so the numbers read like every other all-reduce in the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.measurement import Measurement
from harness.parsers._lines import parse_error
from harness.parsers.sentinel import parse_sentinel

__all__ = ["TpuResult", "parse_tpu_result"]

_TOOL = "tpu-jax result block"
_INFO_INTS = ("device_count", "local_device_count", "process_count", "process_index", "expected_chips")


@dataclass(frozen=True, slots=True, kw_only=True)
class TpuResult:
    """One JAX process's view of the slice and what it measured."""

    measurements: tuple[Measurement, ...]
    device_count: int
    local_device_count: int
    process_count: int
    process_index: int
    expected_chips: int
    platform: str
    device_kind: str
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def slice_matches(self) -> bool:
        return self.platform == "tpu" and self.device_count == self.expected_chips

    def describe(self) -> str:
        return (
            f"JAX saw {self.device_count} {self.platform} device(s) ({self.device_kind or 'unknown kind'}) across "
            f"{self.process_count} process(es), {self.local_device_count} local; the slice has {self.expected_chips}"
        )


def parse_tpu_result(text: str, *, extra_labels: Mapping[str, str] | None = None) -> TpuResult:
    """Parse the block; the info fields are required (a script that could not count devices measured nothing)."""
    block = parse_sentinel(text)
    info = dict(block.info)
    values: dict[str, int] = {}
    for key in _INFO_INTS:
        value = info.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise parse_error(_TOOL, f"info.{key} must be a non-negative integer (got {value!r})", block.begin_line, "")
        values[key] = value
    platform = info.get("platform")
    if not isinstance(platform, str) or not platform:
        raise parse_error(_TOOL, f"info.platform must name the JAX backend (got {platform!r})", block.begin_line, "")
    measurements = tuple(m.with_labels(extra_labels) for m in block.measurements)
    if platform == "tpu":
        chips = {m.label("chip") for m in measurements if m.metric == "tflops"}
        if len(chips) != values["local_device_count"]:
            raise parse_error(
                _TOOL,
                f"{len(chips)} chip(s) reported tflops, this process has {values['local_device_count']} local chips",
                block.begin_line,
                "",
            )
        if not any(m.metric == "allreduce_busbw" for m in measurements):
            raise parse_error(_TOOL, "no allreduce_busbw measurement (the psum did not run)", block.begin_line, "")
    return TpuResult(
        measurements=measurements,
        device_count=values["device_count"],
        local_device_count=values["local_device_count"],
        process_count=values["process_count"],
        process_index=values["process_index"],
        expected_chips=values["expected_chips"],
        platform=platform,
        device_kind=str(info.get("device_kind", "")),
        info=info,
    )
