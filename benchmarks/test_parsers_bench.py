"""Parser speed on large real-shaped inputs: a 10,000-line nccl-tests log and a 64-job fio JSON, <= 50 ms each.

The inputs are synthesised from captured real outputs in tests/data (rows and jobs replicated), so the parsers see
the real layouts at a size a long sweep or a wide fio job file produces.
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


def best_of(fn, text: str, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn(text)
        best = min(best, time.perf_counter() - start)
    return best


def parse_nccl_all(text: str) -> int:
    return len(nccl_measurements(parse_nccl_tests(text)))


def parse_fio_all(text: str) -> int:
    return len(fio_measurements(parse_fio(text)))


@pytest.mark.parametrize(("name", "make", "fn", "expect_units"), [
    ("nccl-10k-lines", nccl_log, parse_nccl_all, 10_000 - 14),
    ("fio-64-jobs", fio_json, parse_fio_all, 64),
])
def test_parser_speed(benchmark, name, make, fn, expect_units):
    text = make()
    result = benchmark(fn, text)
    assert result > expect_units
    assert best_of(fn, text) <= BUDGET_S, f"{name}: slower than {BUDGET_S * 1000:.0f} ms"
