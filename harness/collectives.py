"""Judging collective results beyond bars: where the ranks ran, data corruption, and the transport NCCL used.

Why these live apart from the parsers: a parser reads one tool's text; these combine a parsed result with where the
pods ran and what the cluster offers (RDMA present or not), which is what turns "busbw 12 GB/s" into "NCCL fell
back to TCP sockets although the nodes have InfiniBand".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.measurement import Measurement
from harness.parsers.nccl import NcclResult, Transport, nccl_measurements, parse_nccl_tests, transports

__all__ = [
    "NcclRun",
    "TransportVerdict",
    "corruption",
    "largest_busbw",
    "nccl_run",
    "scope_of",
    "transport_verdict",
    "with_labels",
]

#: Transports that mean "the traffic between nodes went through RDMA" (InfiniBand or RoCE verbs, or AWS EFA through
#: the aws-ofi-nccl plugin, which NCCL names "AWS Libfabric").
RDMA_TRANSPORTS = frozenset(
    {Transport.NET_IB, Transport.NET_IB_GDRDMA, Transport.NET_LIBFABRIC, Transport.NET_LIBFABRIC_GDRDMA}
)
#: Transports that stay inside one node.
INTRA_NODE_TRANSPORTS = frozenset(
    {Transport.NVLS, Transport.P2P_IPC, Transport.P2P_CUMEM, Transport.P2P_DIRECT, Transport.SHM}
)


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


def corruption(measurements: Sequence[Measurement]) -> str | None:
    """A sentence naming every size with wrong elements (nccl-tests' ``#wrong``) and the footer's out-of-bounds
    count, or None when all are exact.

    Wrong results are data corruption: a failure whatever the bandwidth, so callers check this before any bar.
    The footer (``Out of bounds values : N FAILED``, measurement ``oob_values``) counts on its own: logs before ~2021
    have an ``error`` column (a max error, not a count) and no ``#wrong``, and a multi-process run can print 0 in
    every ``#wrong`` its rank 0 saw while the footer sums every process's errors.
    """
    bad = [m for m in measurements if m.metric == "wrong" and m.value > 0]
    parts = [
        f"{int(m.value)} wrong element(s) at size {m.labels.get('size', '?')} B"
        + (f" ({m.labels['placement']})" if "placement" in m.labels else "")
        for m in bad
    ]
    oob = sum(int(m.value) for m in measurements if m.metric == "oob_values" and m.value > 0)
    if oob:
        parts.append(f"nccl-tests reported {oob} out-of-bounds value(s) (FAILED)")
    if not parts:
        return None
    return "data corruption: " + "; ".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportVerdict:
    """What NCCL used between nodes and whether that is acceptable for this cluster."""

    transports: frozenset[str]
    ok: bool
    message: str


def transport_verdict(found: Iterable[str], *, scope: str, rdma_available: bool) -> TransportVerdict:
    """Judge the transports parsed from ``NCCL_DEBUG=INFO`` (see :func:`harness.parsers.nccl.transports`).

    - no transport line at all: not judgeable (NCCL_DEBUG was not INFO, or the log was cut) -> not ok;
    - inter-node on a cluster with RDMA resources: NET/IB is required; NET/Socket is the silent fallback that costs
      an order of magnitude, so it fails with the usual causes as a hint. NET/IB without GDRDMA passes, noted;
    - intra-node: NET/* between GPUs of one node means P2P/SHM were unavailable; reported, not failed here (the
      intra-node busbw bar catches the cost).
    """
    transports = frozenset(found)
    names = ", ".join(sorted(transports)) or "none"
    if not transports:
        return TransportVerdict(
            transports=transports,
            ok=False,
            message="no NCCL transport lines in the log (run with NCCL_DEBUG=INFO to see which path NCCL used)",
        )
    if scope == "inter-node":
        if rdma_available and not transports & RDMA_TRANSPORTS:
            hint = (
                "NCCL fell back to TCP sockets although the nodes have RDMA resources: check the pods requested the "
                "rdma/*, SR-IOV or vpc.amazonaws.com/efa resource, IPC_LOCK and a large memlock limit, "
                "NCCL_IB_HCA names existing HCAs, "
                "NCCL_IB_GID_INDEX suits RoCE, and that no NCCL_IB_DISABLE=1 or NCCL_NET=Socket is set"
            )
            return TransportVerdict(transports=transports, ok=False, message=f"transports {names}: {hint}")
        if transports & RDMA_TRANSPORTS and not transports & {Transport.NET_IB_GDRDMA, Transport.NET_LIBFABRIC_GDRDMA}:
            return TransportVerdict(
                transports=transports,
                ok=True,
                message=f"transports {names}: RDMA without GPUDirect (GDRDMA): check nvidia-peermem / dmabuf",
            )
        return TransportVerdict(transports=transports, ok=True, message=f"transports {names}")
    net = sorted(t for t in transports if t.startswith("NET/"))
    note = f"; inter-GPU traffic inside the node went over {', '.join(net)}" if net else ""
    return TransportVerdict(transports=transports, ok=True, message=f"transports {names}{note}")


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
