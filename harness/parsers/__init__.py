"""Pure parsers: a tool's text output in, typed results and :class:`~harness.measurement.Measurement` s out.

Every parser takes the text a run produced (no files, no subprocesses, no clocks), so that a run record can be
re-parsed offline and every parser can be tested on captured real output (``tests/data/``). Malformed input raises
:class:`~harness.errors.ParseError` with the line number and the offending line, which reports show as a
"parse" failure, distinct from "measured, and below the bar".

Modules (import the one you need; nothing heavy is imported here):

- :mod:`harness.parsers.sentinel`: the ``===AIBENCH-RESULT-BEGIN===`` / ``===AIBENCH-RESULT-END===`` JSON block
  that our own workload scripts print.
- :mod:`harness.parsers.fio`: fio ``--output-format=json`` / ``json+`` (fio 2.x usec era and 3.x nsec era).
- :mod:`harness.parsers.nccl`: nccl-tests ``*_perf`` stdout tables (2019-2025 formats), their ``-J`` JSON file,
  and the transports named by ``NCCL_DEBUG=INFO`` lines.
- :mod:`harness.parsers.locust`: locust ``--csv`` stats files and our raw per-request JSON-lines samples.
- :mod:`harness.parsers.nvidia_smi`: ``nvidia-smi --query-gpu=... --format=csv`` and ``nvidia-smi -L``.
- :mod:`harness.parsers.redis_benchmark`: ``redis-benchmark --csv`` (Redis 7 with latency columns, and older).
- :mod:`harness.parsers.stream_samples`: raw per-request samples of streamed completions (TTFT, TPOT, ITL,
  goodput) written by ``workloads/inference-load/locustfile.py``.
"""

from __future__ import annotations

__all__ = ["MODULES"]

MODULES: tuple[str, ...] = (
    "harness.parsers.sentinel",
    "harness.parsers.fio",
    "harness.parsers.nccl",
    "harness.parsers.locust",
    "harness.parsers.nvidia_smi",
    "harness.parsers.redis_benchmark",
    "harness.parsers.stream_samples",
)
