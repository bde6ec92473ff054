"""Collective results as evidence: where the ranks ran, and the transport NCCL used, as labelled measurements.

Why these live apart from the parsers: a parser reads one tool's text; these combine a parsed result with where the
pods ran and what the cluster offers (RDMA present or not), which is what lets the verdict rules in
:mod:`harness.thresholds.verdicts` turn "busbw 12 GB/s" into "NCCL fell back to TCP sockets although the nodes have
InfiniBand". The judging itself (corruption, transport) lives there, not here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.measurement import Measurement
from harness.parsers.nccl import NcclResult, nccl_measurements, parse_nccl_tests, transports

__all__ = [
    "NcclRun",
    "largest_busbw",
    "nccl_run",
    "scope_of",
    "transport_measurements",
    "with_labels",
]


def scope_of(nodes: Iterable[str]) -> str:
    """``intra-node`` when every rank ran on one node, else ``inter-node`` (the profiles' ``scope`` label)."""
    distinct = {n for n in nodes if n}
    if not distinct:
        raise ValueError("no node is known for any rank")
    return "intra-node" if len(distinct) == 1 else "inter-node"


def with_labels(measurements: Iterable[Measurement], *, emulated: bool = False, **labels: str) -> list[Measurement]:
    """The measurements with ``labels`` added (and marked emulated when the run was)."""
    return [
        dataclasses.replace(m, labels={**m.labels, **labels}, emulated=m.emulated or emulated) for m in measurements
    ]


def transport_measurements(
    found: Iterable[str], *, scope: str, rdma_available: bool, emulated: bool = False, **labels: str
) -> list[Measurement]:
    """One ``transport`` measurement per transport NCCL named, labelled with the ``scope`` of the run and whether the
    nodes offer RDMA (``rdma``): the evidence the ``rdma-transport`` verdict rule reads
    (:mod:`harness.thresholds.verdicts`), kept in the record so the verdict can be re-judged from it."""
    context = {"scope": scope, "rdma": "true" if rdma_available else "false", **labels}
    return [
        Measurement(metric="transport", value=1, unit="count", labels={"transport": t, **context}, emulated=emulated)
        for t in sorted(set(found))
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class NcclRun:
    """One nccl-tests log read: the table, its measurements (with the caller's labels) and the transports."""

    result: NcclResult
    measurements: list[Measurement]
    transports: frozenset[str]


def nccl_run(text: str, *, program: str, emulated: bool = False, **labels: str) -> NcclRun:
    """Parse a pod's nccl-tests output (table plus NCCL_DEBUG=INFO lines) into labelled measurements."""
    result = parse_nccl_tests(text, program=program)
    measurements = with_labels(nccl_measurements(result, extra_labels=labels), emulated=emulated)
    return NcclRun(result=result, measurements=measurements, transports=frozenset(transports(text)))


def largest_busbw(measurements: Sequence[Measurement], *, placement: str = "out-of-place") -> float | None:
    """busbw at the largest message size measured (None when the sweep has no busbw): the per-node number that
    attribution compares, never the sweep average."""
    rows = [m for m in measurements if m.metric == "busbw" and m.labels.get("placement") == placement]
    if not rows:
        return None
    return max(rows, key=lambda m: int(m.labels.get("size", "0"))).value
