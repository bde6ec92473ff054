"""Verdict rules applied the way the suites apply them, for tests that check a parsed log's verdict in one line."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from harness.collectives import transport_measurements
from harness.measurement import Measurement
from harness.thresholds.model import Check, RuleKind, Status
from harness.thresholds.verdicts import judge


def transport(found: Iterable[str], *, scope: str, rdma_available: bool) -> Check:
    """The built-in ``rdma-transport`` verdict on the transports NCCL named."""
    evidence = transport_measurements(found, scope=scope, rdma_available=rdma_available)
    (check,) = judge(None, "nccl-allreduce", RuleKind.RDMA_TRANSPORT, evidence)
    return check


def corruption(measurements: Sequence[Measurement]) -> str | None:
    """The ``no-corruption`` verdict's sentence when it fails, None when it passes (AssertionError on no data)."""
    (check,) = judge(None, "nccl-allreduce", RuleKind.NO_CORRUPTION, measurements)
    assert check.status is not Status.NO_DATA, check.message
    return check.detail if check.status is Status.FAILED else None
