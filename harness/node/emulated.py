"""Pods bound to emulated nodes: no process runs, a :class:`Script` says what each pod does.

The embedded target's emulated GPU nodes (kwok-style) get their pods started, given devices by the emulated device
plugin, logged and finished here; the workload emulations (:mod:`harness.embedded.emulated_workloads`) and tests
choose the script. Every such pod carries ``aibench.io/emulated: "true"`` so no result passes it off as real.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.embedded.deviceplugin import (
    DEVICES_ANNOTATION,
    AllocationError,
    EmulatedDevice,
    EmulatedDevicePlugin,
    ScriptContext,
)
from harness.embedded.network import AddressPool
from harness.embedded.objects import rfc3339
from harness.node.api import NodeApi, ObjectEvent
from harness.node.podstatus import pod_conditions, waiting_status

__all__ = ["EMULATED_ANNOTATION", "EmulatedNodes", "Script", "ScriptedRuntime"]

EMULATED_ANNOTATION = "aibench.io/emulated"


@dataclass(frozen=True, slots=True, kw_only=True)
class Script:
    """What an emulated pod does: stay running, or finish with ``exit_code`` after ``after_s``, writing ``log``.

    ``render`` (when given) writes the log instead, from the pod's :class:`ScriptContext` (its node and the devices
    the emulated device plugin gave each container), so a scripted pod can print ``nvidia-smi -L`` lines for exactly
    its devices. ``waiting`` keeps the containers waiting (e.g. ``("ContainerCreating", "")``) with a Warning
    ``event`` (reason, message) recorded by the kubelet, as a node whose device plugin or runtime hook fails does.
    ``message`` goes into the terminated state, as a container's termination message does.
    """

    exit_code: int | None = None
    after_s: float = 0.0
    log: str = ""
    ready: bool = True
    render: Callable[[ScriptContext], str] | None = None
    waiting: tuple[str, str] | None = None
    event: tuple[str, str] | None = None
    message: str = ""  # the terminated containers' message (why a scripted pod failed)


class ScriptedRuntime:
    """Which :class:`Script` each emulated pod follows.

    Rules by pod-name prefix come first (first match wins; later rules go first): tests set them, fault scenarios
    included. Then the workload emulations installed with :meth:`emulate` (the embedded cluster installs
    :mod:`harness.embedded.emulated_workloads` whenever it has emulated nodes, so a suite run completes there).
    Otherwise the pod stays Running and Ready, as a kwok node's pods do.
    """

    def __init__(self) -> None:
        self._rules: list[tuple[str, Script]] = []
        self._workloads: Callable[[Mapping[str, str]], Script | None] | None = None
        self._lock = threading.Lock()

    def script(self, name_prefix: str, script: Script) -> None:
        """Pods whose name starts with ``name_prefix`` follow ``script`` (ahead of every earlier rule)."""
        with self._lock:
            self._rules.insert(0, (name_prefix, script))

    def clear(self) -> None:
        """Drop the prefix rules (the workload emulations stay)."""
        with self._lock:
            self._rules.clear()

    def emulate(self, workloads: Callable[[Mapping[str, str]], Script | None] | None) -> None:
        """Install (or with None remove) the workload emulations: pod labels -> script, None for no opinion."""
        with self._lock:
            self._workloads = workloads

    def for_pod(self, pod: Mapping[str, Any]) -> Script:
        """The script ``pod`` follows."""
        meta = pod.get("metadata") or {}
        name = meta.get("name", "")
        with self._lock:
            for prefix, script in self._rules:
                if name.startswith(prefix):
                    return script
            workloads = self._workloads
        chosen = workloads(meta.get("labels") or {}) if workloads is not None else None
        return chosen if chosen is not None else Script()


class EmulatedNodes:
    """The kubelet of every emulated node: admission (devices), start, log, and the scripted finish.

    Driven from the kubelet's one event thread (:meth:`pod_event` and :meth:`fire_due`), so its timers need no lock.
    """

    def __init__(
        self,
        api: NodeApi,
        *,
        pod_ips: AddressPool,
        log_path: Callable[[Mapping[str, Any], str], Path],
    ) -> None:
        self.api = api
        self.scripted = ScriptedRuntime()
        self.devices = EmulatedDevicePlugin()
        self._pod_ips = pod_ips
        self._log_path = log_path
        self._nodes: dict[str, dict[str, Any]] = {}
        self._timers: list[tuple[float, int, str, str, str, Script]] = []
        self._seq = itertools.count()

    @staticmethod
    def is_emulated(node: Mapping[str, Any]) -> bool:
        """The Node says it is emulated (its annotation), so its pods run no process."""
        return (node["metadata"].get("annotations") or {}).get(EMULATED_ANNOTATION) == "true"

    def register(self, node: dict[str, Any]) -> None:
        self._nodes[node["metadata"]["name"]] = node
        self.devices.register(node)

    def __contains__(self, node_name: object) -> bool:
        return node_name in self._nodes

    @property
    def names(self) -> list[str]:
        return list(self._nodes)

    def next_due(self) -> float | None:
        """The monotonic time the next scripted pod finishes, None when none is pending."""
        return self._timers[0][0] if self._timers else None

    def fire_due(self, now: float) -> None:
        """Finish every scripted pod whose time has come."""
        while self._timers and self._timers[0][0] <= now:
            _, _, namespace, name, uid, script = heapq.heappop(self._timers)
            self._finish(namespace, name, uid, script)

    def pod_event(self, event: ObjectEvent, now: float) -> None:
        """Start (or release) a pod bound to an emulated node, following its script."""
        pod = event.obj
        if event.type == "DELETED":
            self.devices.release(pod["metadata"].get("uid", ""))
            if pod["metadata"].get("uid") and pod.get("status", {}).get("podIP"):
                self._pod_ips.release(pod["status"]["podIP"])
            return
        if pod["metadata"].get("deletionTimestamp"):
            self.api.finish_pod_delete(pod)
            return
        if pod.get("status", {}).get("podIP") or pod.get("status", {}).get("phase") in ("Failed", "Succeeded"):
            return  # already started (or rejected at admission)
        script = self.scripted.for_pod(pod)
        try:
            devices = self.devices.allocate(pod)
        except AllocationError as exc:
            self._reject(pod, "UnexpectedAdmissionError", str(exc))
            return
        changed = self._start(pod, script, devices)
        if script.event is not None and (changed or script.waiting is None):
            self.api.event(pod, type_="Warning", reason=script.event[0], message=script.event[1])
        if script.waiting is not None:
            return
        self._write_log(pod, script, devices)
        if script.exit_code is not None:
            meta = pod["metadata"]
            entry = (now + script.after_s, next(self._seq), meta["namespace"], meta["name"], meta["uid"], script)
            heapq.heappush(self._timers, entry)

    def _start(self, pod: dict[str, Any], script: Script, devices: Mapping[str, tuple[EmulatedDevice, ...]]) -> bool:
        """Write the started (or waiting) status; True when this call changed it."""
        ip = self._pod_ips.allocate() if script.waiting is None else ""
        node = self._nodes[pod["spec"]["nodeName"]]
        host_ip = next(
            (a["address"] for a in node.get("status", {}).get("addresses", []) if a.get("type") == "InternalIP"),
            "127.1.0.1",
        )
        now = rfc3339()
        changed: list[bool] = []

        def start(p: dict[str, Any]) -> bool:
            if p.get("status", {}).get("podIP"):
                return False
            p["metadata"].setdefault("annotations", {})[EMULATED_ANNOTATION] = "true"
            if any(devices.values()):
                p["metadata"]["annotations"][DEVICES_ANNOTATION] = EmulatedDevicePlugin.annotation(devices)
            status = p.setdefault("status", {})
            if script.waiting is not None:
                if status.get("containerStatuses"):
                    return False  # already reported waiting
                changed.append(True)
                status.update(phase="Pending", hostIP=host_ip, hostIPs=[{"ip": host_ip}], startTime=now)
                status["containerStatuses"] = [
                    waiting_status(c["name"], c.get("image", ""), *script.waiting)
                    for c in p["spec"].get("containers") or []
                ]
                pod_conditions(status, initialized=True, ready=False, scheduled_since=now)
                return True
            status.update(
                phase="Running", hostIP=host_ip, hostIPs=[{"ip": host_ip}], podIP=ip, podIPs=[{"ip": ip}], startTime=now
            )
            status["containerStatuses"] = [
                {
                    "name": c["name"],
                    "image": c.get("image", ""),
                    "imageID": "",
                    "containerID": f"emulated://{c['name']}",
                    "ready": script.ready,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": now}},
                }
                for c in p["spec"].get("containers") or []
            ]
            pod_conditions(status, initialized=True, ready=script.ready, scheduled_since=now)
            return True

        self.api.update_pod(pod["metadata"]["namespace"], pod["metadata"]["name"], start, with_metadata=True)
        return bool(changed)

    def _write_log(
        self, pod: dict[str, Any], script: Script, devices: Mapping[str, tuple[EmulatedDevice, ...]]
    ) -> None:
        """The first container's log: the script's text, or what its ``render`` makes of the pod's context."""
        text = script.log
        if script.render is not None:
            node_meta = self._nodes[pod["spec"]["nodeName"]].get("metadata") or {}
            context = ScriptContext(
                namespace=pod["metadata"]["namespace"],
                pod=pod["metadata"]["name"],
                node=pod["spec"]["nodeName"],
                node_labels=dict(node_meta.get("labels") or {}),
                devices=devices,
                annotations=dict(pod["metadata"].get("annotations") or {}),
                env={
                    e["name"]: str(e.get("value", ""))
                    for e in (pod["spec"]["containers"][0].get("env") or [])
                    if "value" in e
                },
            )
            text = script.render(context)
        if text:
            path = self._log_path(pod, pod["spec"]["containers"][0]["name"])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def _reject(self, pod: dict[str, Any], reason: str, message: str) -> None:
        """Fail a pod at admission, as the kubelet does when its device manager cannot allocate."""

        def reject(p: dict[str, Any]) -> bool:
            status = p.setdefault("status", {})
            if status.get("phase") == "Failed":
                return False
            p["metadata"].setdefault("annotations", {})[EMULATED_ANNOTATION] = "true"
            status.update(phase="Failed", reason=reason, message=message, startTime=rfc3339())
            return True

        meta = pod["metadata"]
        self.api.update_pod(meta["namespace"], meta["name"], reject, with_metadata=True)
        self.api.event(pod, type_="Warning", reason=reason, message=message)

    def _finish(self, namespace: str, name: str, uid: str, script: Script) -> None:
        self.devices.release(uid)
        code = script.exit_code or 0
        now = rfc3339()

        def finish(p: dict[str, Any]) -> bool:
            if p["metadata"]["uid"] != uid:
                return False
            status = p["status"]
            status["phase"] = "Succeeded" if code == 0 else "Failed"
            for cs in status.get("containerStatuses") or []:
                started = cs["state"].get("running", {}).get("startedAt", now)
                terminated = {
                    "exitCode": code,
                    "reason": "Completed" if code == 0 else "Error",
                    "startedAt": started,
                    "finishedAt": now,
                }
                if script.message:
                    terminated["message"] = script.message
                cs["state"] = {"terminated": terminated}
                cs["ready"] = False
                cs["started"] = False
            pod_conditions(status, initialized=True, ready=False, scheduled_since=now)
            return True

        self.api.update_pod(namespace, name, finish)
