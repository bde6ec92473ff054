"""CPU collective baseline: an all-reduce across pods over the pod network (the TCP/gloo baseline, never NCCL).

It runs wherever pods run (a cluster without GPUs, the embedded target), so every target gets a measured
pod-to-pod collective bandwidth with nccl-tests' algbw/busbw math, and the exact-sum check catches a network path
that corrupts data. Bars judge the largest message size only (DESIGN.md section 6).
"""

from __future__ import annotations

import pytest

from harness.collectives import scope_of, with_labels
from harness.fixture_types import Capabilities, Profile, RunWorkload, TestRecord
from harness.parsers.sentinel import BEGIN, parse_sentinel
from harness.thresholds.assertions import assert_passed
from harness.thresholds.evaluate import evaluate
from harness.thresholds.model import RuleKind
from harness.thresholds.verdicts import judge

WORKLOAD = "collective-allreduce"
MIN_RANKS, MAX_RANKS = 2, 4


def _ranks(capabilities: Capabilities) -> int:
    """One rank per ready real node, within [MIN_RANKS, MAX_RANKS]: two ranks even on one node, so the ring always
    carries traffic between pods."""
    real = sum(1 for n in capabilities.nodes if n.ready and not n.emulated)
    return max(MIN_RANKS, min(MAX_RANKS, real))


@pytest.mark.network
@pytest.mark.perf
def test_cpu_collective_baseline(
    run_workload: RunWorkload, capabilities: Capabilities, profile: Profile, record: TestRecord
) -> None:
    """A ring all-reduce across pods (TCP/gloo baseline, backend tcp-ring) returns the exact sum at every message
    size, and its large-message bus bandwidth clears the profile's bar."""
    run = run_workload(WORKLOAD, ranks=_ranks(capabilities), backend="tcp-ring")
    outputs = [text for text in run.logs.values() if BEGIN in text]
    assert len(outputs) == 1, f"expected rank 0's result block, found {len(outputs)} (pods: {sorted(run.logs)})"
    result = parse_sentinel(outputs[0])
    nodes = run.node_of("rank").split(",")
    measurements = with_labels(
        result.measurements, emulated=run.emulated, scope=scope_of(nodes), nodes=str(len(set(nodes)))
    )
    verdicts = judge(profile, WORKLOAD, RuleKind.NO_CORRUPTION, measurements)
    checks = evaluate(profile, WORKLOAD, measurements)
    record.add(measurements=measurements, checks=[*verdicts, *checks])
    assert_passed(checks, verdicts=verdicts)
