"""batch/v1 Job controller, following kube 1.31's observable behaviour.

Pods come from ``spec.template`` up to ``parallelism`` at a time until ``completions`` succeeded (NonIndexed: a
count; Indexed: every index once; no completions: work-queue mode, done when one pod succeeded and none is
active). Failed pods count toward ``backoffLimit`` and are replaced after an exponential delay; exceeding it, or
running past ``activeDeadlineSeconds``, fails the Job and deletes its active pods. Terminal conditions come in
pairs as in 1.31: ``SuccessCriteriaMet`` then ``Complete``, ``FailureTarget`` then ``Failed``; the second of each
waits until no pod of the Job is still terminating.

Approximation: kube tracks finished pods with a ``batch.kubernetes.io/job-tracking`` finalizer so that deleting
a finished pod cannot lose a count. Here finished pods are counted once by uid (in memory) and the status counters
only grow, which gives the same numbers unless the control plane restarts while pods are being deleted; a pod
deleted while still running is replaced but not counted as failed.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from harness.embedded.controllers.base import PODS, ControllerContext, PrimaryController
from harness.embedded.objects import condition, rfc3339, set_condition
from harness.embedded.podstate import pod_active, pod_phase, pod_ready, pod_terminating
from harness.embedded.store import Key, WatchEvent

log = logging.getLogger(__name__)

JOBS: Key = ("batch", "jobs")
COMPONENT = "job-controller"
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
_MAX_BACKOFF_S = 360.0


@dataclass(slots=True)
class _Tracking:
    """Per-Job memory: which finished pods were already counted, and timers kept on the monotonic clock."""

    succeeded: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    last_failure: float = 0.0
    started_mono: float | None = None
    started_at: str | None = None


def format_indexes(indexes: Iterable[int]) -> str:
    """Kube's compressed interval text: ``0-2,4``."""
    ordered = sorted(set(indexes))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def parse_indexes(text: str | None) -> set[int]:
    out: set[int] = set()
    for raw in (text or "").split(","):
        part = raw.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            out.update(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            continue
    return out


def _pod_index(pod: dict[str, Any]) -> int | None:
    text = (pod["metadata"].get("annotations") or {}).get(INDEX_KEY)
    if text is None:
        text = (pod["metadata"].get("labels") or {}).get(INDEX_KEY)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _finished(job: dict[str, Any]) -> bool:
    for ctype in ("Complete", "Failed"):
        cond = condition(job, ctype)
        if cond is not None and cond.get("status") == "True":
            return True
    return False


class JobController(PrimaryController):
    name = "job"
    primary: Key = JOBS
    kind = "Job"
    watches: tuple[Key, ...] = (JOBS, PODS)

    def __init__(self, ctx: ControllerContext, *, backoff_base_s: float = 10.0) -> None:
        super().__init__(ctx)
        self.backoff_base_s = backoff_base_s
        self._tracking: dict[str, _Tracking] = {}

    def work_for(self, event: WatchEvent) -> list[tuple[str, str]]:
        if event.key == JOBS and event.type == "DELETED":
            self._tracking.pop(event.obj["metadata"].get("uid", ""), None)
            return []
        return super().work_for(event)

    # ------------------------------------------------------------------ reconcile
    def sync(self, namespace: str, name: str, job: dict[str, Any]) -> float | None:
        if job["metadata"].get("deletionTimestamp"):
            return None
        spec = job.get("spec") or {}
        uid = job["metadata"]["uid"]
        track = self._tracking.setdefault(uid, _Tracking())
        pods = self.ctx.owned(job, "Pod")
        status = job.get("status") or {}
        finished = _finished(job)

        # Count newly finished pods once (by uid) into monotonically growing counters.
        succeeded_n = int(status.get("succeeded") or 0)
        failed_n = int(status.get("failed") or 0)
        if not track.succeeded and not track.failed and (succeeded_n or failed_n):
            # First look after a (re)start: what the status already holds was counted before.
            track.succeeded = {p["metadata"]["uid"] for p in pods if pod_phase(p) == "Succeeded"}
            track.failed = {p["metadata"]["uid"] for p in pods if pod_phase(p) == "Failed"}
        for pod in pods:
            puid = pod["metadata"]["uid"]
            phase = pod_phase(pod)
            if phase == "Succeeded" and puid not in track.succeeded:
                track.succeeded.add(puid)
                succeeded_n += 1
            elif phase == "Failed" and puid not in track.failed:
                track.failed.add(puid)
                failed_n += 1
                track.last_failure = time.monotonic()
        indexed = spec.get("completionMode") == "Indexed"
        completions = spec.get("completions")
        parallelism = int(spec["parallelism"] if spec.get("parallelism") is not None else 1)
        completed_idx = parse_indexes(status.get("completedIndexes")) if indexed else set()
        if indexed:
            for pod in pods:
                idx = _pod_index(pod)
                if pod_phase(pod) == "Succeeded" and idx is not None and idx < int(completions or 0):
                    completed_idx.add(idx)

        active = [p for p in pods if pod_active(p)]
        terminating = [p for p in pods if pod_terminating(p)]
        requeue: float | None = None
        new_status: dict[str, Any] = {
            "conditions": [dict(c) for c in status.get("conditions") or ()],
        }
        if status.get("startTime"):
            new_status["startTime"] = status["startTime"]
        if status.get("completionTime"):
            new_status["completionTime"] = status["completionTime"]

        failure: tuple[str, str] | None = None
        success = False
        suspended = bool(spec.get("suspend"))
        if finished:
            for pod in active:
                self.ctx.delete_pod(job, pod, component=COMPONENT)
            active = []
        elif (target := condition(job, "FailureTarget")) is not None and target.get("status") == "True":
            failure = (target.get("reason", ""), target.get("message", ""))
        elif (criteria := condition(job, "SuccessCriteriaMet")) is not None:
            success = criteria.get("status") == "True"
        if not finished and failure is None and not success:
            if suspended:
                for pod in active:
                    self.ctx.delete_pod(job, pod, component=COMPONENT)
                active = []
                if set_condition(new_status, "Suspended", "True", "JobSuspended", "Job suspended"):
                    self.ctx.event(job, "Suspended", "Job suspended", component=COMPONENT)
                new_status.pop("startTime", None)
                track.started_mono = None
            else:
                cond = condition(job, "Suspended")
                if cond is not None and cond.get("status") == "True":
                    set_condition(new_status, "Suspended", "False", "JobResumed", "Job resumed")
                    self.ctx.event(job, "Resumed", "Job resumed", component=COMPONENT)
                if not new_status.get("startTime"):
                    new_status["startTime"] = rfc3339()
                if track.started_at != new_status["startTime"] or track.started_mono is None:
                    track.started_at = new_status["startTime"]
                    track.started_mono = time.monotonic()
                backoff_limit = int(spec["backoffLimit"] if spec.get("backoffLimit") is not None else 6)
                deadline = spec.get("activeDeadlineSeconds")
                elapsed = time.monotonic() - track.started_mono
                if completions is None:
                    success = succeeded_n > 0 and not active
                elif indexed:
                    success = len(completed_idx) >= int(completions)
                else:
                    success = succeeded_n >= int(completions)
                if not success and failed_n > backoff_limit:
                    failure = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
                elif not success and deadline is not None and elapsed >= float(deadline):
                    failure = ("DeadlineExceeded", "Job was active longer than specified deadline")
                elif not success:
                    if deadline is not None:
                        requeue = max(0.0, float(deadline) - elapsed)
                    wait = self._backoff_remaining(track, failed_n)
                    if wait > 0:
                        requeue = wait if requeue is None else min(requeue, wait)
                    else:
                        active = self._scale(
                            job,
                            active,
                            completions=completions,
                            parallelism=parallelism,
                            succeeded_n=succeeded_n,
                            completed_idx=completed_idx,
                            indexed=indexed,
                        )
                if failure is not None:
                    set_condition(new_status, "FailureTarget", "True", failure[0], failure[1])
                    self.ctx.event(job, failure[0], failure[1], component=COMPONENT, type_="Warning")
                elif success:
                    set_condition(
                        new_status,
                        "SuccessCriteriaMet",
                        "True",
                        "CompletionsReached",
                        "Reached expected number of succeeded pods",
                    )
        if failure is not None or success:
            # Whatever still runs is no longer wanted; the terminal condition waits for it to be gone.
            for pod in active:
                self.ctx.delete_pod(job, pod, component=COMPONENT)
            if active:
                pods = self.ctx.owned(job, "Pod")
                terminating = [p for p in pods if pod_terminating(p)]
                active = []
            if not terminating and not finished:
                if failure is not None:
                    set_condition(new_status, "Failed", "True", failure[0], failure[1])
                else:
                    set_condition(
                        new_status,
                        "Complete",
                        "True",
                        "CompletionsReached",
                        "Reached expected number of succeeded pods",
                    )
                    new_status["completionTime"] = rfc3339()
                    self.ctx.event(job, "Completed", "Job completed", component=COMPONENT)

        if succeeded_n:
            new_status["succeeded"] = succeeded_n
        if failed_n:
            new_status["failed"] = failed_n
        if active:
            new_status["active"] = len(active)
        new_status["ready"] = sum(1 for p in active if pod_ready(p))
        new_status["terminating"] = len(terminating)
        if indexed and completed_idx:
            new_status["completedIndexes"] = format_indexes(completed_idx)
        new_status["uncountedTerminatedPods"] = {}
        if not new_status["conditions"]:
            del new_status["conditions"]
        self._write_status(job, new_status)
        return requeue

    def _backoff_remaining(self, track: _Tracking, failed_n: int) -> float:
        if failed_n <= 0 or self.backoff_base_s <= 0 or not track.last_failure:
            return 0.0
        delay = min(_MAX_BACKOFF_S, self.backoff_base_s * 2.0 ** (failed_n - 1))
        return max(0.0, track.last_failure + delay - time.monotonic())

    def _scale(
        self,
        job: dict[str, Any],
        active: list[dict[str, Any]],
        *,
        completions: int | None,
        parallelism: int,
        succeeded_n: int,
        completed_idx: set[int],
        indexed: bool,
    ) -> list[dict[str, Any]]:
        """Create or delete pods so that the right number is active; returns the active pods afterwards."""
        pod: dict[str, Any] | None
        if completions is None:
            # Work queue: after the first success nothing new starts, but the running pods finish their work.
            wanted = min(len(active), parallelism) if succeeded_n > 0 else parallelism
        elif indexed:
            wanted = min(parallelism, int(completions) - len(completed_idx))
        else:
            wanted = min(parallelism, int(completions) - succeeded_n)
        wanted = max(0, wanted)
        active = list(active)
        if len(active) > wanted:
            # Kube removes the least advanced pods first: not ready, then the newest.
            victims = sorted(active, key=lambda p: (pod_ready(p), p["metadata"].get("creationTimestamp", "")))
            for pod in victims[: len(active) - wanted]:
                if self.ctx.delete_pod(job, pod, component=COMPONENT):
                    active.remove(pod)
            return active
        missing = wanted - len(active)
        if missing <= 0:
            return active
        name = job["metadata"]["name"]
        template = (job.get("spec") or {}).get("template") or {}
        if not indexed:
            for _ in range(missing):
                pod = self.ctx.create_pod(job, template, component=COMPONENT, generate_name=f"{name}-")
                if pod is None:
                    break
                active.append(pod)
            return active
        busy = {idx for idx in (_pod_index(p) for p in active) if idx is not None}
        todo = [i for i in range(int(completions or 0)) if i not in completed_idx and i not in busy]
        for idx in todo[:missing]:
            pod = self.ctx.create_pod(
                job,
                template,
                component=COMPONENT,
                generate_name=f"{name}-{idx}-",
                extra_labels={INDEX_KEY: str(idx)},
                extra_annotations={INDEX_KEY: str(idx)},
                customize=functools.partial(_indexed_pod, job_name=name, index=idx),
            )
            if pod is None:
                break
            active.append(pod)
        return active

    def _write_status(self, job: dict[str, Any], new_status: dict[str, Any]) -> None:
        if (job.get("status") or {}) == new_status:
            return
        meta = job["metadata"]

        def change(obj: dict[str, Any]) -> bool:
            if obj["metadata"]["uid"] != meta["uid"] or obj.get("status") == new_status:
                return False
            obj["status"] = new_status
            return True

        self.ctx.store.mutate(self.ctx.rtype(JOBS), meta["namespace"], meta["name"], change, subresource="status")


def _indexed_pod(pod: dict[str, Any], job_name: str, index: int) -> None:
    """What kube adds to an Indexed Job's pod: the index env var (downward API) and a stable hostname."""
    spec = pod["spec"]
    spec.setdefault("hostname", f"{job_name}-{index}")
    env_var = {
        "name": "JOB_COMPLETION_INDEX",
        "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{INDEX_KEY}']"}},
    }
    for group in ("initContainers", "containers"):
        for container in spec.get(group) or []:
            env = container.setdefault("env", [])
            if not any(e.get("name") == "JOB_COMPLETION_INDEX" for e in env):
                env.append(dict(env_var))
