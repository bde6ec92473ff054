"""The CLI answers --help in <= 0.5 s: heavy modules (kubernetes, pandas, the embedded target) load lazily."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def test_help_is_fast(benchmark) -> None:
    times: list[float] = []

    def once() -> None:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "harness.cli", "run", "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - start)

    benchmark.pedantic(once, rounds=7, iterations=1)
    median = statistics.median(times)
    benchmark.extra_info["median_s"] = round(median, 3)
    assert median <= 0.5, f"k8s-ai-bench run --help took {median:.2f}s (median) > 0.5 s"
