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

from collections.abc import Mapping

__all__ = ["MODULES", "NO_PARSER"]

#: A workload whose output the harness does not parse (its test measures from the API, or from files it fetches).
NO_PARSER = "none"

#: ``workload.yaml``'s ``parser`` value -> the module that reads that workload's output. The catalog accepts exactly
#: these names (and :data:`NO_PARSER`); the catalog tests check that a suite running the workload imports this module,
#: so the declaration names the code that really reads the output.
MODULES: Mapping[str, str] = {
    "sentinel": "harness.parsers.sentinel",
    "fio": "harness.parsers.fio",
    "nccl": "harness.parsers.nccl",
    "cuda": "harness.parsers.cuda",
    "jax-tpu": "harness.parsers.jax_tpu",
    "iperf3": "harness.parsers.iperf",
    "perftest": "harness.parsers.perftest",
    "locust": "harness.parsers.locust",
    "nvidia-smi": "harness.parsers.nvidia_smi",
    "redis-benchmark": "harness.parsers.redis_benchmark",
    "stream-samples": "harness.parsers.stream_samples",
}
