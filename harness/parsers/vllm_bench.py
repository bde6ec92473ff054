"""vLLM's benchmark outputs: ``vllm bench serve`` (``--save-result`` JSON and the printed result block, also from
the older ``benchmarks/benchmark_serving.py``) and ``vllm bench throughput`` / ``benchmark_throughput.py`` (its
``Throughput:`` line and ``--output-json`` file).

Why a reader: vLLM's own benchmark is what most serving teams run first; reading its results lets a profile judge
them with the same bars as ours. Mapping (docs/serving-metrics.md): vLLM's TTFT, TPOT ((e2e - TTFT)/(N - 1), as
ours), ITL and E2EL -> ``ttft``, ``tpot``, ``itl``, ``e2e_latency`` in ms (``mean_*``, ``median_*`` and ``pNN_*``
keys -> ``stat=mean`` / ``stat=percentile``); ``request_throughput`` -> ``requests_per_s``; ``output_throughput``
-> ``output_tokens_per_s``; ``total_token_throughput`` -> ``total_tokens_per_s``; ``request_goodput`` ->
``goodput`` (req/s, when an SLO was given); ``completed``/``failed`` -> ``requests``, ``failures``, ``error_rate``.
The offline throughput benchmark gives ``requests_per_s``, ``total_tokens_per_s`` and ``output_tokens_per_s``
labelled ``mode=offline``. Key names read from vLLM's source (``vllm/benchmarks/serve.py``, ``process_one_metric``
and the ``result`` dict; ``benchmarks/benchmark_throughput.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from harness.errors import ParseError
from harness.measurement import Measurement
from harness.parsers._lines import json_document
from harness.parsers._numbers import finite, number
from harness.parsers._summary import request_counts
from harness.statistics import percentile_text

__all__ = [
    "is_vllm_serve_result",
    "is_vllm_throughput_result",
    "vllm_serve_json_measurements",
    "vllm_serve_text_measurements",
    "vllm_throughput_measurements",
]

_SERVE = "vllm bench serve"
_THROUGHPUT = "vllm bench throughput"
_LATENCIES = {"ttft": "ttft", "tpot": "tpot", "itl": "itl", "e2el": "e2e_latency"}
_KEY = re.compile(r"^(mean|median|p(\d+(?:\.\d+)?))_(ttft|tpot|itl|e2el)_ms$")
_TEXT_LATENCY = re.compile(r"^(Mean|Median|P(\d+(?:\.\d+)?)) (TTFT|TPOT|ITL|E2EL) \(ms\):\s+(\S+)\s*$")
_TEXT_FIELD = re.compile(r"^([A-Z][A-Za-z ]+(?:\([^)]*\))?):\s+(\S+)\s*$")
_THROUGHPUT_LINE = re.compile(
    r"Throughput:\s+([\d.]+) requests/s,\s+([\d.]+) (?:total )?tokens/s(?:,\s+([\d.]+) output tokens/s)?"
)


def is_vllm_serve_result(data: Any) -> bool:
    """A decoded ``--save-result`` document: ``completed`` plus ``request_throughput`` and a latency key."""
    return (
        isinstance(data, dict)
        and "completed" in data
        and "request_throughput" in data
        and any(_KEY.match(k) for k in data)
    )


def is_vllm_throughput_result(data: Any) -> bool:
    """A decoded ``--output-json`` of the throughput benchmark."""
    return isinstance(data, dict) and {"elapsed_time", "num_requests", "requests_per_second"} <= data.keys()


def _latency(metric: str, stat: str, value: float, labels: Mapping[str, str]) -> Measurement:
    extra = {"stat": "mean"} if stat == "mean" else {"stat": "percentile", "percentile": stat}
    return Measurement(metric=metric, value=value, unit="ms", labels={**labels, **extra})


def vllm_serve_json_measurements(text: str, *, extra_labels: Mapping[str, str] | None = None) -> list[Measurement]:
    """Measurements of one ``vllm bench serve --save-result`` JSON file."""
    data = json_document(text, _SERVE)
    if not is_vllm_serve_result(data):
        raise ParseError(f"{_SERVE}: not a result file (no 'completed', 'request_throughput' and '*_ttft_ms' keys)")
    labels = {"tool": _SERVE, **dict(extra_labels or {})}
    if isinstance(data.get("model_id"), str):
        labels.setdefault("model", data["model_id"])
    rate = data.get("request_rate")
    if isinstance(rate, int | float) and not isinstance(rate, bool):
        labels.setdefault("rate", f"{rate:g}")
    if isinstance(data.get("max_concurrency"), int):
        labels.setdefault("concurrency", str(data["max_concurrency"]))
    out: list[Measurement] = []
    for key, raw in data.items():
        m = _KEY.match(key)
        value = finite(raw)
        if m is None or value is None:
            continue
        stat = "mean" if m.group(1) == "mean" else "50" if m.group(1) == "median" else percentile_text(m.group(2))
        out.append(_latency(_LATENCIES[m.group(3)], stat, value, labels))
    for key, metric, unit in (
        ("request_throughput", "requests_per_s", "req/s"),
        ("output_throughput", "output_tokens_per_s", "tok/s"),
        ("total_token_throughput", "total_tokens_per_s", "tok/s"),
        ("request_goodput", "goodput", "req/s"),
    ):
        if (value := finite(data.get(key))) is not None:
            out.append(Measurement(metric=metric, value=value, unit=unit, labels=labels))
    completed, failed = finite(data.get("completed")) or 0.0, finite(data.get("failed")) or 0.0
    return out + request_counts(completed, failed, labels)


def vllm_serve_text_measurements(text: str, *, extra_labels: Mapping[str, str] | None = None) -> list[Measurement]:
    """Measurements of the printed ``Serving Benchmark Result`` block (every vLLM version since 2024 prints
    ``"{:<40} {:<10}"`` lines; older ones have no ``Failed requests`` line, which then counts as 0)."""
    if "Serving Benchmark Result" not in text:
        raise ParseError(f"{_SERVE}: no '============ Serving Benchmark Result ============' block")
    labels = {"tool": _SERVE, **dict(extra_labels or {})}
    fields: dict[str, float] = {}
    out: list[Measurement] = []
    block = text.split("Serving Benchmark Result", 1)[1]
    for line_no, raw in enumerate(block.splitlines(), start=1):
        line = raw.strip()
        if m := _TEXT_LATENCY.match(line):
            value = finite(number(_SERVE, m.group(4), line_no, raw))
            if value is None:
                continue
            stat = "mean" if m.group(1) == "Mean" else "50" if m.group(1) == "Median" else percentile_text(m.group(2))
            out.append(_latency(_LATENCIES[m.group(3).lower()], stat, value, labels))
        elif m := _TEXT_FIELD.match(line):
            fields[m.group(1)] = number(_SERVE, m.group(2), line_no, raw)
        elif line.startswith("=" * 20) and fields:
            break
    if "Successful requests" not in fields:
        raise ParseError(f"{_SERVE}: the result block has no 'Successful requests:' line")
    if "Maximum request concurrency" in fields:
        labels["concurrency"] = f"{fields['Maximum request concurrency']:g}"
        out = [m.with_labels({"concurrency": labels["concurrency"]}) for m in out]
    for name, metric, unit in (
        ("Request throughput (req/s)", "requests_per_s", "req/s"),
        ("Output token throughput (tok/s)", "output_tokens_per_s", "tok/s"),
        ("Total Token throughput (tok/s)", "total_tokens_per_s", "tok/s"),
        ("Total token throughput (tok/s)", "total_tokens_per_s", "tok/s"),
        ("Request goodput (req/s)", "goodput", "req/s"),
    ):
        if name in fields:
            out.append(Measurement(metric=metric, value=fields[name], unit=unit, labels=labels))
    return out + request_counts(fields["Successful requests"], fields.get("Failed requests", 0.0), labels)


def vllm_throughput_measurements(text: str, *, extra_labels: Mapping[str, str] | None = None) -> list[Measurement]:
    """The offline throughput benchmark: its ``--output-json`` document or its ``Throughput:`` line."""
    labels = {"tool": _THROUGHPUT, "mode": "offline", **dict(extra_labels or {})}
    stripped = text.lstrip()
    if stripped.startswith("{"):
        data = json_document(text, _THROUGHPUT)
        if not is_vllm_throughput_result(data):
            raise ParseError(f"{_THROUGHPUT}: no 'elapsed_time', 'num_requests' and 'requests_per_second' keys")
        out = [
            Measurement(metric="requests_per_s", value=float(data["requests_per_second"]), unit="req/s", labels=labels)
        ]
        if (tps := finite(data.get("tokens_per_second"))) is not None:
            out.append(Measurement(metric="total_tokens_per_s", value=tps, unit="tok/s", labels=labels))
        return out
    matches = list(_THROUGHPUT_LINE.finditer(text))
    if not matches:
        raise ParseError(f"{_THROUGHPUT}: no 'Throughput: N requests/s, N total tokens/s' line")
    m = matches[-1]
    out = [
        Measurement(metric="requests_per_s", value=float(m.group(1)), unit="req/s", labels=labels),
        Measurement(metric="total_tokens_per_s", value=float(m.group(2)), unit="tok/s", labels=labels),
    ]
    if m.group(3) is not None:
        out.append(Measurement(metric="output_tokens_per_s", value=float(m.group(3)), unit="tok/s", labels=labels))
    return out
