"""One Prometheus sample (an instant-vector element): what the query client returns and the exposition parser reads.

Why a module of its own: :mod:`harness.cluster.prometheus` (talks to a Prometheus through the cluster) and
:mod:`harness.parsers.exposition` (reads ``/metrics`` text) both produce it, and neither layer may import the other
(the import-graph test forbids ``parsers -> cluster`` and ``cluster -> parsers``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Series"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Series:
    """One instant-vector element: its labels (``__name__`` included when Prometheus returns it) and value."""

    labels: Mapping[str, str]
    value: float

    @property
    def name(self) -> str:
        return self.labels.get("__name__", "")
