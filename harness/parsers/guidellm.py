"""GuideLLM ``benchmarks.json`` (``guidellm benchmark ... --output-path benchmarks.json``) as serving Measurements.

Why a reader: GuideLLM sweeps are a common way to size a vLLM deployment; importing them lets a profile judge each
strategy's numbers. GuideLLM's names differ from ours (docs/serving-metrics.md, read from its source): its
``inter_token_latency_ms`` is (last - first)/(N - 1) per request, which is **our TPOT**; its
``time_per_output_token_ms`` is (last token - start)/N, which is **our NTPOT**. So:

- ``time_to_first_token_ms`` -> ``ttft``; ``inter_token_latency_ms`` -> ``tpot``; ``time_per_output_token_ms`` ->
  ``ntpot``; ``request_latency`` (seconds) -> ``e2e_latency`` (ms); all from the ``successful`` distribution
  (``mean``/``median``/``min``/``max`` and ``percentiles`` p001 ... p999, schema
  ``guidellm/schemas/statistics.py``);
- ``requests_per_second`` / ``output_tokens_per_second`` (``successful.mean``) -> ``requests_per_s`` /
  ``output_tokens_per_s``; ``request_totals`` -> ``requests``, ``failures`` (errored), ``error_rate``.

GuideLLM folds its own client delays into TTFT (no separate queue figure): near saturation its TTFT is the
client's as much as the server's. Labels per benchmark: ``tool``, ``strategy`` (synchronous, concurrent,
constant, poisson, throughput), ``concurrency`` (streams) or ``rate`` when the strategy names them, ``benchmark``
(its index in the file, so a sweep's points stay apart).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.errors import ParseError
from harness.measurement import Measurement
from harness.parsers._lines import json_document
from harness.parsers._summary import distribution_measurements, request_counts

__all__ = ["guidellm_measurements", "is_guidellm_report"]

_TOOL = "guidellm"
_LATENCIES: tuple[tuple[str, str, float], ...] = (
    ("time_to_first_token_ms", "ttft", 1.0),
    ("inter_token_latency_ms", "tpot", 1.0),
    ("time_per_output_token_ms", "ntpot", 1.0),
    ("request_latency", "e2e_latency", 1e3),
)


def is_guidellm_report(data: Any) -> bool:
    """A decoded benchmarks report: a ``benchmarks`` list whose entries have ``metrics``."""
    benchmarks = data.get("benchmarks") if isinstance(data, dict) else None
    return (
        isinstance(benchmarks, list)
        and bool(benchmarks)
        and all(isinstance(b, dict) and isinstance(b.get("metrics"), dict) for b in benchmarks)
    )


def _strategy(benchmark: Mapping[str, Any]) -> dict[str, str]:
    for holder in (benchmark.get("config"), benchmark.get("args"), benchmark):
        strategy = holder.get("strategy") if isinstance(holder, dict) else None
        if isinstance(strategy, dict):
            labels = {"strategy": str(strategy.get("type_") or strategy.get("type") or "")}
            if isinstance(strategy.get("streams"), int):
                labels["concurrency"] = str(strategy["streams"])
            if isinstance(strategy.get("rate"), int | float) and not isinstance(strategy.get("rate"), bool):
                labels["rate"] = f"{strategy['rate']:g}"
            return {k: v for k, v in labels.items() if v}
    return {}


def _mean(metrics: Mapping[str, Any], name: str) -> float | None:
    successful = (metrics.get(name) or {}).get("successful") if isinstance(metrics.get(name), dict) else None
    value = successful.get("mean") if isinstance(successful, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def guidellm_measurements(text: str, *, extra_labels: Mapping[str, str] | None = None) -> list[Measurement]:
    """Measurements of every benchmark in the report."""
    data = json_document(text, _TOOL)
    if not is_guidellm_report(data):
        raise ParseError(f"{_TOOL}: not a benchmarks report (no 'benchmarks' list with 'metrics')")
    out: list[Measurement] = []
    for index, benchmark in enumerate(data["benchmarks"]):
        labels = {"tool": _TOOL, "benchmark": str(index), **_strategy(benchmark), **dict(extra_labels or {})}
        metrics = benchmark["metrics"]
        for name, metric, scale in _LATENCIES:
            successful = (metrics.get(name) or {}).get("successful") if isinstance(metrics.get(name), dict) else None
            if isinstance(successful, dict):
                out += distribution_measurements(metric, successful, unit="ms", scale=scale, labels=labels)
        for name, metric, unit in (
            ("requests_per_second", "requests_per_s", "req/s"),
            ("output_tokens_per_second", "output_tokens_per_s", "tok/s"),
        ):
            if (value := _mean(metrics, name)) is not None:
                out.append(Measurement(metric=metric, value=value, unit=unit, labels=labels))
        totals = benchmark.get("request_totals") or metrics.get("request_totals")
        if isinstance(totals, dict):
            out += request_counts(float(totals.get("successful") or 0), float(totals.get("errored") or 0), labels)
    return out
