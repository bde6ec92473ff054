"""Parser speed on large real-shaped inputs: a 10,000-line nccl-tests log and a 64-job fio JSON, <= 50 ms each.

The inputs are synthesised from captured real outputs in tests/data (rows and jobs replicated), so the parsers see
the real layouts at a size a long sweep or a wide fio job file produces. The budget is on parsing (text -> typed
result) and is checked against the best of several runs in **thread CPU time**, which other processes on a shared
machine do not inflate; pytest-benchmark still reports wall time. Building Measurement objects from the 10,000-row
table (60,000 of them, each validated in ``Measurement.__post_init__``) is timed separately and not budgeted here.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from harness.parsers.fio import fio_measurements, parse_fio
from harness.parsers.nccl import nccl_measurements, parse_nccl_tests

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
BUDGET_S = 0.050


def nccl_log(lines: int = 10_000) -> str:
    """The PKB 2-node log with its 11 data rows repeated until the whole log has ``lines`` lines."""
    text = (DATA / "nccl-tests_allreduce_2node-2rank_k80_validation0_pkb.txt").read_text().splitlines()
    header_end = next(i for i, line in enumerate(text) if line.strip() and not line.startswith("#"))
    footer_start = next(i for i, line in enumerate(text) if line.startswith("# Out of bounds"))
    head, rows, foot = text[:header_end], text[header_end:footer_start], text[footer_start:]
    body = [rows[i % len(rows)] for i in range(lines - len(head) - len(foot))]
    return "\n".join(head + body + foot) + "\n"


def fio_json(jobs: int = 64) -> str:
    """The fio 3.33 two-job document with its jobs replicated (renamed) to ``jobs`` jobs."""
    doc = json.loads((DATA / "fio-3.33_2jobs-global-options_generated.json").read_text())
    real = doc["jobs"]
    doc["jobs"] = [{**real[i % len(real)], "jobname": f"job{i}"} for i in range(jobs)]
    return json.dumps(doc, indent=2)


def best_cpu_time(fn, text: str, rounds: int = 7) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.thread_time()
        fn(text)
        best = min(best, time.thread_time() - start)
    return best


def nccl_rows(text: str) -> int:
    return len(parse_nccl_tests(text).rows)


def fio_jobs(text: str) -> int:
    return len(parse_fio(text).jobs)


@pytest.mark.parametrize(
    ("name", "make", "fn", "expected"),
    [
        ("nccl-10k-lines", nccl_log, nccl_rows, 10_000 - 12),
        ("fio-64-jobs", fio_json, fio_jobs, 64),
    ],
)
def test_parser_speed(benchmark, name, make, fn, expected):
    text = make()
    assert benchmark(fn, text) == expected
    assert best_cpu_time(fn, text) <= BUDGET_S, f"{name}: parsing took more than {BUDGET_S * 1000:.0f} ms CPU"


def test_measurement_building_cost(benchmark):
    """Informational: text -> Measurements for the 10,000-line log (no budget; see the module docstring)."""
    result = parse_nccl_tests(nccl_log())
    assert len(benchmark.pedantic(nccl_measurements, args=(result,), rounds=3)) > 50_000
    assert len(fio_measurements(parse_fio(fio_json()))) > 64
