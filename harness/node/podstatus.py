"""The pod status a kubelet writes: container states (waiting, running, terminated) and the pod's conditions.

Shared by the host node's pod workers and the emulated nodes' scripted pods, so that both report the same shapes
(and ``lastTransitionTime`` only moves when a condition really changes, as kube's status manager keeps it).
"""

from __future__ import annotations

from typing import Any

from harness.embedded.objects import rfc3339
from harness.embedded.probes import ProbeState
from harness.embedded.runtime import ContainerProcess, ContainerResult

__all__ = ["ContainerState", "pod_conditions", "terminated_state", "waiting_status"]


def waiting_status(
    name: str, image: str, reason: str, message: str = "", restarts: int = 0, last: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A ``containerStatuses`` entry for a container that has not started (or waits to restart)."""
    state: dict[str, Any] = {"reason": reason}
    if message:
        state["message"] = message
    return {
        "name": name,
        "image": image,
        "imageID": "",
        "ready": False,
        "started": False,
        "restartCount": restarts,
        "state": {"waiting": state},
        "lastState": last or {},
    }


def terminated_state(result: ContainerResult, started_at: str, container_id: str) -> dict[str, Any]:
    """The ``state`` (or ``lastState``) of a container process that ended."""
    state: dict[str, Any] = {
        "exitCode": result.exit_code,
        "reason": result.reason,
        "startedAt": started_at,
        "finishedAt": rfc3339(result.finished_at),
        "containerID": container_id,
    }
    if result.signal:
        state["signal"] = result.signal
    if result.message:
        state["message"] = result.message
    return {"terminated": state}


def pod_conditions(status: dict[str, Any], *, initialized: bool, ready: bool, scheduled_since: str) -> None:
    """Set the pod's conditions in ``status``, keeping each one's transition time unless its value changed."""
    now = rfc3339()
    previous = {c["type"]: c for c in status.get("conditions") or []}

    def cond(ctype: str, value: bool, reason: str = "") -> dict[str, Any]:
        text = "True" if value else "False"
        old = previous.get(ctype)
        since = old["lastTransitionTime"] if old and old.get("status") == text else now
        entry: dict[str, Any] = {"type": ctype, "status": text, "lastTransitionTime": since}
        if reason and not value:
            entry["reason"] = reason
        return entry

    scheduled = previous.get("PodScheduled") or {
        "type": "PodScheduled",
        "status": "True",
        "lastTransitionTime": scheduled_since,
    }
    status["conditions"] = [
        cond("PodReadyToStartContainers", True),
        cond("Initialized", initialized, "ContainersNotInitialized"),
        cond("Ready", ready, "ContainersNotReady"),
        cond("ContainersReady", ready, "ContainersNotReady"),
        scheduled,
    ]


class ContainerState:
    """One container of a host pod as its worker tracks it: process, restarts, back-off, probes, readiness."""

    def __init__(self, spec: dict[str, Any], *, init: bool) -> None:
        self.spec = spec
        self.name: str = spec["name"]
        self.image: str = spec.get("image", "")
        self.init = init
        self.proc: ContainerProcess | None = None
        self.started_at = ""
        self.started_mono = 0.0
        self.restarts = 0
        self.result: ContainerResult | None = None
        self.last_state: dict[str, Any] = {}
        self.restart_at: float | None = None
        self.waiting: tuple[str, str] | None = ("ContainerCreating", "")
        self.ready = False
        self.probes: dict[str, ProbeState] = {}
        self.done = False  # finished for good (no restart will follow)
        self.container_id = ""
        self.create_failures = 0  # consecutive CreateContainerError attempts (their back-off doubles)

    @property
    def live(self) -> bool:
        """A process was started and has not ended."""
        return self.proc is not None and self.result is None

    def status(self) -> dict[str, Any]:
        """The container's ``containerStatuses`` entry."""
        if self.waiting is not None and (self.proc is None or self.result is not None):
            return waiting_status(self.name, self.image, *self.waiting, restarts=self.restarts, last=self.last_state)
        base = {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "containerID": self.container_id,
            "restartCount": self.restarts,
            "lastState": self.last_state,
        }
        if self.result is not None:
            return {
                **base,
                "ready": False,
                "started": False,
                "state": terminated_state(self.result, self.started_at, self.container_id),
            }
        return {**base, "ready": self.ready, "started": True, "state": {"running": {"startedAt": self.started_at}}}
