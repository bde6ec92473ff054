"""kubernetes-sigs/inference-perf lifecycle reports (``stage_N_lifecycle_metrics.json``,
``summary_lifecycle_metrics.json``) as serving Measurements.

Why a reader: a team that load-tested with inference-perf has its numbers already; reading its report lets the
profile's serving bars judge them (``k8s-ai-bench report import``). Mapping (docs/serving-metrics.md, "The same
quantity in other tools"; times in the report are seconds, ours are ms):

- ``successes.latency.time_to_first_token`` -> ``ttft``; ``time_per_output_token`` -> ``tpot`` ((e2e - TTFT) /
  (N - 1), as ours); ``inter_token_latency`` -> ``itl``; ``normalized_time_per_output_token`` -> ``ntpot``;
  ``request_latency`` -> ``e2e_latency``;
- ``load_summary.schedule_delay`` -> ``queue_delay`` (inference-perf's TTFT excludes it: read it before trusting
  TTFT near saturation);
- ``successes.throughput.requests_per_sec`` -> ``requests_per_s``, ``output_tokens_per_sec`` ->
  ``output_tokens_per_s``; ``successes.count`` / ``failures.count`` -> ``requests`` / ``failures`` and
  ``error_rate`` (% of all requests).

Each summary's ``mean``/``min``/``max``/``median``/``pNN`` become ``stat``/``percentile`` labels. Labels: ``tool``,
``rate`` (the stage's requested rate) when the report has it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.errors import ParseError
from harness.measurement import Measurement
from harness.parsers._lines import json_document
from harness.parsers._summary import distribution_measurements, request_counts

__all__ = ["LATENCIES", "inference_perf_measurements", "is_inference_perf_report"]

_TOOL = "inference-perf"
#: inference-perf latency name -> our metric name
LATENCIES: Mapping[str, str] = {
    "time_to_first_token": "ttft",
    "time_per_output_token": "tpot",
    "inter_token_latency": "itl",
    "normalized_time_per_output_token": "ntpot",
    "request_latency": "e2e_latency",
}


def is_inference_perf_report(data: Any) -> bool:
    """True for a decoded lifecycle report: ``load_summary`` plus ``successes`` with a ``latency`` object."""
    return (
        isinstance(data, dict)
        and isinstance(data.get("load_summary"), dict)
        and isinstance(data.get("successes"), dict)
        and "latency" in data["successes"]
    )


def _count(obj: Any) -> int:
    value = obj.get("count") if isinstance(obj, dict) else None
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def inference_perf_measurements(text: str, *, extra_labels: Mapping[str, str] | None = None) -> list[Measurement]:
    """Measurements of one lifecycle report; ParseError naming what is missing when it is not one."""
    data = json_document(text, _TOOL)
    if not is_inference_perf_report(data):
        raise ParseError(f"{_TOOL}: not a lifecycle report (no 'load_summary' and 'successes.latency')")
    labels = {"tool": _TOOL, **dict(extra_labels or {})}
    load = data["load_summary"]
    rate = load.get("requested_rate")
    if isinstance(rate, int | float) and not isinstance(rate, bool):
        labels.setdefault("rate", f"{rate:g}")
    successes, failures = data["successes"], data.get("failures") or {}
    out: list[Measurement] = []
    latency = successes.get("latency") or {}
    for name, metric in LATENCIES.items():
        if isinstance(latency.get(name), dict):
            out += distribution_measurements(metric, latency[name], unit="ms", scale=1e3, labels=labels)
    if isinstance(load.get("schedule_delay"), dict):
        out += distribution_measurements("queue_delay", load["schedule_delay"], unit="ms", scale=1e3, labels=labels)
    throughput = successes.get("throughput") or {}
    for key, metric, unit in (
        ("requests_per_sec", "requests_per_s", "req/s"),
        ("output_tokens_per_sec", "output_tokens_per_s", "tok/s"),
    ):
        value = throughput.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out.append(Measurement(metric=metric, value=float(value), unit=unit, labels=labels))
    return out + request_counts(_count(successes), _count(failures), labels)
