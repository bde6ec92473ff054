"""batch/v1 CronJob controller: Jobs from ``jobTemplate`` on schedule, as kube's cronjob controller v2 does.

At each reconcile: the most recent schedule time at or before now that has no Job yet is due (older missed times
are skipped, as kube starts at most one Job per reconcile); with ``startingDeadlineSeconds`` a time later than that
is missed (a Warning event). ``concurrencyPolicy``: Allow starts regardless, Forbid skips while a Job is active,
Replace deletes the active Jobs first. Jobs are named ``<cronjob>-<scheduled time in minutes since the epoch>``
(kube's name, so a time is never started twice) and annotated with the scheduled timestamp. Finished Jobs beyond
``successfulJobsHistoryLimit``/``failedJobsHistoryLimit`` are deleted, oldest first. Status: ``active``,
``lastScheduleTime``, ``lastSuccessfulTime``. The next reconcile is timed for the next schedule time.

A CronJob without ``spec.timeZone`` runs in UTC (kube uses the controller manager's local zone, which is UTC in
most clusters).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from harness.embedded import apierrors
from harness.embedded.controllers.base import PrimaryController
from harness.embedded.cron import CronError
from harness.embedded.cron import parse as parse_schedule
from harness.embedded.objects import clone, condition, owner_reference, parse_time, rfc3339
from harness.embedded.store import Key

log = logging.getLogger(__name__)

CRONJOBS: Key = ("batch", "cronjobs")
JOBS: Key = ("batch", "jobs")
COMPONENT = "cronjob-controller"
SCHEDULED_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MAX_MISSED_LOOKBACK = 100  # kube warns "too many missed start times" past 100 and starts the latest


def _finished_as(job: dict[str, Any]) -> str | None:
    for ctype in ("Complete", "Failed"):
        cond = condition(job, ctype)
        if cond is not None and cond.get("status") == "True":
            return ctype
    return None


def _job_ref(job: dict[str, Any]) -> dict[str, Any]:
    meta = job["metadata"]
    return {
        "kind": "Job",
        "namespace": meta["namespace"],
        "name": meta["name"],
        "uid": meta["uid"],
        "apiVersion": "batch/v1",
        "resourceVersion": meta.get("resourceVersion", ""),
    }


def due_time(
    schedule_text: str, zone: str | None, since: datetime, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """(the latest schedule time in (since, now], the first one after now) in UTC; raises CronError."""
    schedule = parse_schedule(schedule_text)
    tz = ZoneInfo(zone) if zone else UTC
    latest: datetime | None = None
    cursor = since.astimezone(tz)
    local_now = now.astimezone(tz)
    for _ in range(MAX_MISSED_LOOKBACK * 1000):
        following = schedule.next_after(cursor)
        if following is None:
            return (latest.astimezone(UTC) if latest else None), None
        if following > local_now:
            return (latest.astimezone(UTC) if latest else None), following.astimezone(UTC)
        latest = cursor = following
    return (latest.astimezone(UTC) if latest else None), schedule.next_after(local_now)


class CronJobController(PrimaryController):
    name = "cronjob"
    primary: Key = CRONJOBS
    kind = "CronJob"
    watches: tuple[Key, ...] = (CRONJOBS, JOBS)

    def reconcile(self, namespace: str, name: str, *, now: datetime | None = None) -> float | None:
        """Get the CronJob and sync it as of ``now`` (the current time unless a caller such as a test steps a
        schedule minute by minute): the base's reconcile with a clock, so this one stands in for it whole."""
        store = self.ctx.store
        cronjob = store.find(CRONJOBS, namespace, name)
        if cronjob is None or cronjob["metadata"].get("deletionTimestamp"):
            return None
        spec = cronjob.get("spec") or {}
        status = cronjob.get("status") or {}
        current = now or datetime.now(UTC)
        jobs = self.ctx.owned(cronjob, "Job")
        active = [j for j in jobs if _finished_as(j) is None and not j["metadata"].get("deletionTimestamp")]
        last_success = status.get("lastSuccessfulTime")
        was_active = {ref.get("uid") for ref in status.get("active") or ()}
        for job in jobs:
            finished = _finished_as(job)
            if finished is not None and job["metadata"]["uid"] in was_active:
                self.ctx.event(
                    cronjob,
                    "SawCompletedJob",
                    f"Saw completed job: {job['metadata']['name']}, status: {finished}",
                    component=COMPONENT,
                )
            completed = ((job.get("status") or {}).get("completionTime")) or None
            if finished == "Complete" and completed and (last_success is None or completed > last_success):
                last_success = completed
        self._trim_history(cronjob, jobs)
        since_text = status.get("lastScheduleTime") or cronjob["metadata"].get("creationTimestamp")
        since = parse_time(since_text) if since_text else current
        try:
            due, following = due_time(spec.get("schedule", ""), spec.get("timeZone"), since, current)
        except CronError as exc:  # admission refuses these; a stored one (older server) gets an event
            self.ctx.event(cronjob, "UnparseableSchedule", str(exc), component=COMPONENT, type_="Warning")
            return None
        last_schedule = status.get("lastScheduleTime")
        if due is not None and not spec.get("suspend"):
            started = self._start(cronjob, due, active, current)
            if started is not None:
                active.append(started)
                last_schedule = rfc3339(due)
            elif started is None and self._missed(cronjob, due, current):
                last_schedule = rfc3339(due)
        self._write_status(cronjob, active, last_schedule, last_success)
        if following is None or spec.get("suspend"):
            return None
        return max(0.05, (following - current).total_seconds() + 0.05)

    def _missed(self, cronjob: dict[str, Any], due: datetime, now: datetime) -> bool:
        deadline = (cronjob.get("spec") or {}).get("startingDeadlineSeconds")
        return deadline is not None and now - due > timedelta(seconds=int(deadline))

    def _start(
        self, cronjob: dict[str, Any], due: datetime, active: list[dict[str, Any]], now: datetime
    ) -> dict[str, Any] | None:
        spec = cronjob.get("spec") or {}
        meta = cronjob["metadata"]
        job_name = f"{meta['name']}-{int(due.timestamp()) // 60}"
        if self.ctx.store.find(JOBS, meta["namespace"], job_name) is not None:
            return None  # this time was started already
        if self._missed(cronjob, due, now):
            self.ctx.event(
                cronjob,
                "MissSchedule",
                f"Missed scheduled time to start a job: {rfc3339(due)}",
                component=COMPONENT,
                type_="Warning",
            )
            return None
        policy = spec.get("concurrencyPolicy", "Allow")
        if policy == "Forbid" and active:
            self.ctx.event(
                cronjob,
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid",
                component=COMPONENT,
            )
            return None
        if policy == "Replace":
            for running in list(active):
                self._delete_job(cronjob, running)
                active.remove(running)
        template = spec.get("jobTemplate") or {}
        tmeta = template.get("metadata") or {}
        annotations = dict(tmeta.get("annotations") or {})
        annotations[SCHEDULED_ANNOTATION] = rfc3339(due)
        job: dict[str, Any] = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": job_name,
                "labels": dict(tmeta.get("labels") or {}),
                "annotations": annotations,
                "ownerReferences": [owner_reference(cronjob)],
            },
            "spec": clone(template.get("spec") or {}),
        }
        try:
            created = self.ctx.create(self.ctx.rtype(JOBS), meta["namespace"], job)
        except apierrors.ApiError as err:
            self.ctx.event(cronjob, "FailedCreate", f"Error creating job: {err.message}", component=COMPONENT,
                           type_="Warning")  # fmt: skip
            return None
        self.ctx.event(cronjob, "SuccessfulCreate", f"Created job {job_name}", component=COMPONENT)
        return created

    def _delete_job(self, cronjob: dict[str, Any], job: dict[str, Any]) -> None:
        meta = job["metadata"]
        try:
            self.ctx.store.delete(
                self.ctx.rtype(JOBS), meta["namespace"], meta["name"], propagation="Background",
                precondition_uid=meta["uid"],
            )  # fmt: skip
        except apierrors.ApiError as err:
            log.debug("cronjob: deleting job %s/%s: %s", meta["namespace"], meta["name"], err.message)
            return
        self.ctx.event(cronjob, "SuccessfulDelete", f"Deleted job {meta['name']}", component=COMPONENT)

    def _trim_history(self, cronjob: dict[str, Any], jobs: list[dict[str, Any]]) -> None:
        spec = cronjob.get("spec") or {}
        limits = (("Complete", "successfulJobsHistoryLimit", 3), ("Failed", "failedJobsHistoryLimit", 1))
        for outcome, key, default in limits:
            limit = spec.get(key)
            limit = default if limit is None else int(limit)
            done = [j for j in jobs if _finished_as(j) == outcome and not j["metadata"].get("deletionTimestamp")]
            # kube's byJobStartTime: start time, then name (which encodes the scheduled minute) on a tie
            done.sort(key=lambda j: ((j.get("status") or {}).get("startTime") or "", j["metadata"]["name"]))
            for job in done[: max(0, len(done) - limit)]:
                self._delete_job(cronjob, job)

    def _write_status(
        self,
        cronjob: dict[str, Any],
        active: list[dict[str, Any]],
        last_schedule: str | None,
        last_success: str | None,
    ) -> None:
        meta = cronjob["metadata"]
        new_status: dict[str, Any] = {}
        if active:
            new_status["active"] = sorted((_job_ref(j) for j in active), key=lambda r: r["name"])
        if last_schedule:
            new_status["lastScheduleTime"] = last_schedule
        if last_success:
            new_status["lastSuccessfulTime"] = last_success

        def comparable(status: dict[str, Any]) -> dict[str, Any]:
            out = dict(status)
            out["active"] = [(r.get("name"), r.get("uid")) for r in status.get("active") or ()]
            return out

        if comparable(cronjob.get("status") or {}) == comparable(new_status):
            return

        def change(obj: dict[str, Any]) -> bool:
            obj["status"] = new_status
            return True

        self.ctx.store.mutate(self.ctx.rtype(CRONJOBS), meta["namespace"], meta["name"], change, subresource="status")
