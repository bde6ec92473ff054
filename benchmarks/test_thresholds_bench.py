"""Threshold evaluation speed: 100,000 measurements x 200 thresholds in at most 1 s.

A fleet run produces one measurement per node x GPU x message size; evaluation must not be the slow part of a
report. The set below is shaped like one: 100 nodes x 8 GPUs x 25 metrics x 5 sizes, thresholds with label
selectors that each match a slice (one size, one dtype), a quarter of them ``each`` (one check per node x GPU).
Measured here: index build + selection + aggregation + Check creation, not message formatting (built on demand),
as CPU time of this process so that other load on a shared CI machine does not fail it (about 0.35 s here).
"""

from __future__ import annotations

import time

import pytest

from harness.measurement import Measurement
from harness.thresholds import Aggregate, Comparison, LabelSelector, Profile, Threshold, evaluate

N_NODES, N_GPUS, N_METRICS, N_SIZES = 100, 8, 25, 5
N_THRESHOLDS = 200
MAX_SECONDS = 1.0


def measurements() -> list[Measurement]:
    out = []
    for metric in range(N_METRICS):
        for node in range(N_NODES):
            for gpu in range(N_GPUS):
                for size in range(N_SIZES):
                    out.append(
                        Measurement(
                            metric=f"metric{metric}",
                            value=100.0 + size + gpu,
                            unit="GB/s",
                            labels={
                                "node": f"node-{node:03d}",
                                "gpu": str(gpu),
                                "size": str(2 ** (20 + size)),
                                "dtype": "bf16" if gpu % 2 else "fp16",
                                "op": "all_reduce",
                            },
                        )
                    )
    assert len(out) == N_NODES * N_GPUS * N_METRICS * N_SIZES == 100_000
    return out


def thresholds() -> list[Threshold]:
    aggregates = [Aggregate.MIN, Aggregate.MAX, Aggregate.MEAN, Aggregate.EACH]
    out = []
    for i in range(N_THRESHOLDS):
        out.append(
            Threshold(
                id=f"t{i}",
                workload="nccl-allreduce",
                metric=f"metric{i % N_METRICS}",
                source="bench",
                labels=LabelSelector.parse(
                    {"op": "all_reduce", "size": str(2 ** (20 + i % N_SIZES)), "dtype": ["bf16", "fp16"][i % 2]}
                ),
                comparison=Comparison.GE,
                value=100.0 if i % 3 else 1e5,
                unit="MB/s" if i % 2 else "GB/s",
                aggregate=aggregates[i % 4],
            )
        )
    return out


@pytest.mark.benchmark(timer=time.process_time)  # CPU time: a busy CI machine must not turn this red
def test_evaluate_100k_measurements_200_thresholds(benchmark):
    data = measurements()
    profile = Profile(name="bench", description="bench", thresholds={"nccl-allreduce": tuple(thresholds())})

    def run() -> int:
        return len(evaluate(profile, "nccl-allreduce", data))

    n_checks = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    assert n_checks == 150 + 50 * N_NODES * N_GPUS // 2  # 150 aggregated + 50 'each' x 400 matching GPUs
    assert benchmark.stats.stats.median <= MAX_SECONDS, f"median {benchmark.stats.stats.median:.3f} s"


def test_evaluate_unselective_thresholds_stay_fast():
    """Worst case: every threshold matches every measurement of its metric (no label selector)."""
    data = measurements()
    ts = [
        Threshold(
            id=f"u{i}",
            workload="nccl-allreduce",
            metric=f"metric{i % N_METRICS}",
            source="bench",
            comparison=Comparison.GE,
            value=1.0,
            unit="GB/s",
            aggregate=Aggregate.MIN,
        )
        for i in range(N_THRESHOLDS)
    ]
    profile = Profile(name="bench", description="bench", thresholds={"nccl-allreduce": tuple(ts)})
    start = time.process_time()
    checks = evaluate(profile, "nccl-allreduce", data)
    elapsed = time.process_time() - start
    assert len(checks) == N_THRESHOLDS
    assert elapsed <= 2 * MAX_SECONDS, f"{elapsed:.3f} s"
