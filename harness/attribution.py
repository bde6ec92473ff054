"""Per-node attribution: which node makes a collective or an RDMA link slow.

A multi-node all-reduce runs at the speed of its slowest link, so one bad node (a down-trained port, a missing
GPUDirect module, a flapping cable) drags down every job it joins, and the job-level number cannot say which node it
was. The remedy used by production health checks (gcm ``check-nccl`` pairwise, Azure NHC per-node checks) is to
test nodes alone, in pairs, or each against a known-good reference, and attribute:

- ``single``: each node on its own (intra-node NCCL, IB loopback, per-HCA perftest): the node's number is its own;
- ``pairs``: disjoint pairs (an odd node out joins the first pair's first node); a slow pair implicates both nodes,
  and a node is named slow only when every test it took part in was slow, "suspect" when some were;
- ``reference``: every node paired with one known-good node, so a slow pair names the other node alone.

The bar is the profile's threshold when there is one, else the median of the results times (1 - tolerance): a
cluster-relative outlier test, as SuperBench's variance rules do.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Mode", "NodeVerdict", "Verdict", "attribute", "plan"]


class Mode(StrEnum):
    SINGLE = "single"
    PAIRS = "pairs"
    REFERENCE = "reference"


class Verdict(StrEnum):
    OK = "ok"
    SLOW = "slow"
    SUSPECT = "suspect"  # in a slow pair and in a good one (or only paired with another suspect)


def plan(nodes: Sequence[str], mode: Mode, *, reference: str = "") -> list[tuple[str, ...]]:
    """The groups of nodes to test, in order. ``reference`` mode uses ``reference`` (default: the first node)."""
    names = list(dict.fromkeys(nodes))
    if mode is Mode.SINGLE:
        return [(n,) for n in names]
    if len(names) < 2:
        raise ValueError(f"{mode} mode needs at least 2 nodes, got {len(names)}")
    if mode is Mode.REFERENCE:
        ref = reference or names[0]
        if ref not in names:
            raise ValueError(f"reference node {ref!r} is not among the nodes")
        return [(ref, n) for n in names if n != ref]
    groups: list[tuple[str, ...]] = [(names[i], names[i + 1]) for i in range(0, len(names) - 1, 2)]
    if len(names) % 2:
        groups.append((names[0], names[-1]))
    return groups


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeVerdict:
    """One row of the per-node table."""

    node: str
    verdict: Verdict
    tests: int
    slow_tests: int
    worst: float
    best: float
    partners: tuple[str, ...]


def attribute(
    results: Mapping[tuple[str, ...], float],
    *,
    mode: Mode,
    bar: float | None = None,
    tolerance: float = 0.1,
    higher_is_better: bool = True,
    reference: str = "",
) -> tuple[float, list[NodeVerdict]]:
    """(the bar used, one verdict per node) from group -> measured value.

    ``reference`` mode never blames the reference node for a slow pair (it is known good) unless every pair is
    slow, which points at the reference itself.
    """
    if not results:
        raise ValueError("no results to attribute")
    values = list(results.values())
    median = statistics.median(values)
    used = bar if bar is not None else median * (1 - tolerance if higher_is_better else 1 + tolerance)

    def slow(value: float) -> bool:
        return value < used if higher_is_better else value > used

    ref = reference or (next(iter(results))[0] if mode is Mode.REFERENCE else "")
    all_slow = all(slow(v) for v in values)
    per_node: dict[str, list[tuple[float, tuple[str, ...]]]] = {}
    for group, value in results.items():
        for node in group:
            if mode is Mode.REFERENCE and node == ref and not all_slow:
                continue
            per_node.setdefault(node, []).append((value, tuple(n for n in group if n != node)))
    rows = []
    for node, seen in per_node.items():
        slow_count = sum(1 for value, _ in seen if slow(value))
        if slow_count == 0:
            verdict = Verdict.OK
        elif slow_count == len(seen) and (
            mode is not Mode.PAIRS or len(seen) > 1 or _partner_clean(seen, per_node, slow)
        ):
            verdict = Verdict.SLOW
        else:
            verdict = Verdict.SUSPECT
        ordered = sorted(v for v, _ in seen)
        worst, best = (ordered[0], ordered[-1]) if higher_is_better else (ordered[-1], ordered[0])
        partners = tuple(sorted({p for _, group in seen for p in group}))
        rows.append(
            NodeVerdict(
                node=node, verdict=verdict, tests=len(seen), slow_tests=slow_count, worst=worst, best=best,
                partners=partners,
            )
        )  # fmt: skip
    rows.sort(key=lambda r: ({Verdict.SLOW: 0, Verdict.SUSPECT: 1, Verdict.OK: 2}[r.verdict], r.node))
    return used, rows


def _partner_clean(
    seen: Sequence[tuple[float, tuple[str, ...]]],
    per_node: Mapping[str, Sequence[tuple[float, tuple[str, ...]]]],
    slow: Callable[[float], bool],
) -> bool:
    """In pairs mode, a node tested once in a slow pair is SLOW only when its partner was cleared elsewhere."""
    return any(
        any(not slow(value) for value, _ in per_node.get(partner, ())) for _, partners in seen for partner in partners
    )
