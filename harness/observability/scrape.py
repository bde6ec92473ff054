"""Is an exporter really scraped? Problems found in Prometheus' active targets and in per-node series.

Kept apart from the client so the rules read in one place and are tested on plain values: a job that has no
target at all, targets that are down (with Prometheus' own last error), and nodes that no series names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from harness.cluster.prometheus import QueryResult, ScrapeTarget

#: labels that name a node in node-exporter / kube-state-metrics series, in the order they are trusted
NODE_LABELS = ("nodename", "node", "kubernetes_node", "instance")


def job_problems(targets: Sequence[ScrapeTarget], *, job_pattern: str, what: str) -> list[str]:
    """No target whose job matches ``job_pattern`` is a problem; so is each target that is not up."""
    pattern = re.compile(job_pattern)
    mine = [t for t in targets if pattern.fullmatch(t.job)]
    if not mine:
        jobs = sorted({t.job for t in targets})
        return [f"Prometheus has no {what} scrape target (jobs: {', '.join(jobs) or 'none'})"]
    return [
        f"{what} target {t.instance} (job {t.job}) is {t.health}: {t.last_error or 'no error reported'}"
        for t in mine
        if t.health != "up"
    ]


def node_coverage_problems(result: QueryResult, nodes: Sequence[str], *, label: str = "") -> list[str]:
    """Every node in ``nodes`` must be named by some series of ``result`` (through ``label``, or the usual
    node labels; an ``instance`` matches by its host part)."""
    if not result.series:
        return [f"query {result.query!r} returned no series"]
    named: set[str] = set()
    for series in result.series:
        for key in (label,) if label else NODE_LABELS:
            value = series.labels.get(key, "")
            if value:
                named.add(value.rsplit(":", 1)[0] if key == "instance" else value)
    missing = [n for n in nodes if n not in named]
    if missing:
        seen = ", ".join(sorted(named)) or "none"
        return [f"query {result.query!r} names no series for node(s) {', '.join(missing)} (it names {seen})"]
    return []


__all__ = ["NODE_LABELS", "job_problems", "node_coverage_problems"]
