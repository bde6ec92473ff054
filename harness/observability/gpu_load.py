"""Watch GPU utilisation in Prometheus while a GPU workload runs: is it attributed to the pod, does it rise under
load and fall afterwards (the accelerator_metrics checks that need a live load)?

The workload runs in a background thread (the Job runner blocks until completion) while this module polls
``DCGM_FI_DEV_GPU_UTIL`` once per scrape interval; polls are bounded by the workload's own timeout. The GPUs under
load are identified by the series that name the test pod; when no series does, the GPUs whose utilisation rose
are still reported, so the failure says "metrics exist but are not attributed" rather than "no metrics".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.cluster.prometheus import FIRST_SAMPLE_S, Prometheus, Series
from harness.observability.gpu_metrics import ATTRIBUTION_HINT, UTIL, node_of, pod_labels

POLL_S = 5.0
UTIL_QUERY = UTIL


@dataclass(slots=True, kw_only=True)
class LoadObservation:
    """What Prometheus showed of the test pod's GPUs before, during and after the load."""

    pod: str = ""
    container: str = ""
    node: str = ""
    gpus: set[str] = field(default_factory=set)  # UUIDs attributed to the pod
    idle_before: float | None = None
    under_load: float = 0.0
    idle_after: float | None = None
    unattributed_rise: list[str] = field(default_factory=list)  # GPUs that got busy without naming the pod
    polls: int = 0

    def attribution_problems(self, *, container: str) -> list[str]:
        if self.gpus:
            if self.container and self.container != container:
                return [f"{UTIL} of pod {self.pod} names container {self.container}, expected {container}"]
            return []
        if self.unattributed_rise:
            return [
                f"{UTIL} rose on {', '.join(self.unattributed_rise)} while the test pod ran, but no series carries "
                f"the pod's labels; {ATTRIBUTION_HINT}"
            ]
        return [f"no {UTIL} series named the test pod or rose during the load ({self.polls} polls)"]


def _gpu(series: Series) -> str:
    return series.labels.get("UUID") or f"{node_of(series)}/gpu{series.labels.get('gpu', '?')}"


def observe_gpu_load(
    prometheus: Prometheus,
    run: Callable[[], Any],
    *,
    namespace: str,
    pod_prefix: str,
    poll_s: float = POLL_S,
    settle_s: float = FIRST_SAMPLE_S,
) -> tuple[Any, LoadObservation]:
    """Run ``run()`` (a blocking workload run) in a thread, watch utilisation; return its result and what was
    seen. Exceptions of the run are re-raised after the watch stops."""
    baseline = {_gpu(s): s.value for s in prometheus.query(UTIL_QUERY).series}
    seen = LoadObservation()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = run()
        except Exception as exc:  # handed to the caller's thread, re-raised there as is
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="gpu-load", daemon=True)
    thread.start()
    peaks: dict[str, float] = {}
    while thread.is_alive():
        seen.polls += 1
        for series in prometheus.query(UTIL_QUERY).series:
            gpu = _gpu(series)
            ident = pod_labels(series)
            if ident["namespace"] == namespace and ident["pod"].startswith(pod_prefix):
                seen.pod, seen.container, seen.node = ident["pod"], ident["container"], node_of(series)
                seen.gpus.add(gpu)
                seen.under_load = max(seen.under_load, series.value)
            peaks[gpu] = max(peaks.get(gpu, 0.0), series.value)
        thread.join(timeout=poll_s)
    if "error" in outcome:
        raise outcome["error"]
    seen.unattributed_rise = sorted(g for g, peak in peaks.items() if peak - baseline.get(g, 0.0) >= 20.0)
    if seen.gpus:
        seen.idle_before = max(baseline.get(g, 0.0) for g in seen.gpus)
        time.sleep(min(settle_s, 2 * poll_s))  # the next scrapes must come from after the load
        after = [s.value for s in prometheus.query(UTIL_QUERY).series if _gpu(s) in seen.gpus]
        seen.idle_after = max(after) if after else None
    return outcome.get("result"), seen


__all__ = ["LoadObservation", "observe_gpu_load"]
