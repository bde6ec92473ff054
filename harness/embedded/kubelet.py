"""The embedded target's node agents: pods bound to the host node run as local processes, pods bound to emulated
nodes run through a scripted runtime (the workload emulations, plus what tests layer on top), and Service ClusterIPs
work through the pod network's nftables DNAT (:mod:`harness.podnet`: each host pod in its own network namespace,
NetworkPolicy enforced) or, on hosts that cannot have one, a userspace kube-proxy on the host network.

One :class:`PodWorker` thread per host pod drives its lifecycle like the kubelet's pod worker: volumes, init
containers in order, containers with restartPolicy and back-off, readiness/liveness/startup probes, graceful
termination, and a status written only when it changes. Container processes come from
:mod:`harness.embedded.runtime`, which reports what it can enforce; each pod is annotated with that, so no result
claims isolation or limits that were not there.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.embedded import securitycontext
from harness.embedded.deviceplugin import DEVICES_ANNOTATION, AllocationError, EmulatedDevicePlugin, ScriptContext
from harness.embedded.faults import FaultInjector
from harness.embedded.inventory import GPU_UUIDS_ANNOTATION
from harness.embedded.network import POD_NETWORK, AddressPool, Backend, ServiceProxy, hosts_entries, pick_subnet
from harness.embedded.objects import clone, rfc3339
from harness.embedded.podenv import ConfigError, container_env, expand, host_base_env, service_links
from harness.embedded.podlogs import follow_log, read_log
from harness.embedded.probes import ProbeState, run_probe
from harness.embedded.quantity import parse_quantity
from harness.embedded.resources import ResourceType
from harness.embedded.runtime import ContainerLaunch, ContainerProcess, ContainerResult, Mount, ProcessRuntime
from harness.embedded.volumes import TokenSource, VolumeError, prepare_volume
from harness.node.api import NodeApi, ObjectEvent
from harness.podnet.attachments import NAD_GROUP, NAD_PLURAL, AttachmentError
from harness.podnet.bandwidth import BandwidthError
from harness.podnet.commands import NetCommandError
from harness.podnet.dataplane import PodNetwork

log = logging.getLogger(__name__)

_PODS = ("", "pods")
_SERVICES = ("", "services")
_ENDPOINTS = ("", "endpoints")
_CONFIGMAPS = ("", "configmaps")
_SECRETS = ("", "secrets")
_NETPOLS = ("networking.k8s.io", "networkpolicies")
_NAMESPACES = ("", "namespaces")
_NADS = (NAD_GROUP, NAD_PLURAL)
EMULATED_ANNOTATION = "aibench.io/emulated"
RUNTIME_ANNOTATION = "aibench.io/runtime"
_LOOKUP_KEYS = {
    "ConfigMap": ("", "configmaps"),
    "Secret": ("", "secrets"),
    "PersistentVolumeClaim": ("", "persistentvolumeclaims"),
    "PersistentVolume": ("", "persistentvolumes"),
}
MAX_BACKOFF_S = 300.0


# ----------------------------------------------------------------------------- scripted runtime (emulated nodes)
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
        meta = pod.get("metadata") or {}
        name = meta.get("name", "")
        with self._lock:
            for prefix, script in self._rules:
                if name.startswith(prefix):
                    return script
            workloads = self._workloads
        chosen = workloads(meta.get("labels") or {}) if workloads is not None else None
        return chosen if chosen is not None else Script()


# ----------------------------------------------------------------------------- pod status helpers
def _waiting(
    name: str, image: str, reason: str, message: str = "", restarts: int = 0, last: dict[str, Any] | None = None
) -> dict[str, Any]:
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


def _terminated_state(result: ContainerResult, started_at: str, container_id: str) -> dict[str, Any]:
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


def _pod_conditions(status: dict[str, Any], *, initialized: bool, ready: bool, scheduled_since: str) -> None:
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


# ----------------------------------------------------------------------------- one container of a host pod
class _Container:
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

    def status(self) -> dict[str, Any]:
        if self.waiting is not None and (self.proc is None or self.result is not None):
            return _waiting(self.name, self.image, *self.waiting, restarts=self.restarts, last=self.last_state)
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
                "state": _terminated_state(self.result, self.started_at, self.container_id),
            }
        return {**base, "ready": self.ready, "started": True, "state": {"running": {"startedAt": self.started_at}}}


class PodWorker:
    """Runs one pod bound to the host node, from volumes to termination."""

    def __init__(self, kubelets: KubeletSet, pod: dict[str, Any]) -> None:
        self.kubelets = kubelets
        self.api = kubelets.api
        self.namespace: str = pod["metadata"]["namespace"]
        self.name: str = pod["metadata"]["name"]
        self.uid: str = pod["metadata"]["uid"]
        self.dir: Path = kubelets.pods_dir / self.uid
        self.wake = threading.Event()
        self.killed = threading.Event()
        self.hosts_path = self.dir / "hosts"
        self.pod_ip = ""
        self.netns: Path | None = None  # the pod's network namespace (harness.podnet), None: host network
        self.network_annotations: dict[str, str] = {}
        self.gpus: list[int] = []
        self.live = True
        self._thread = threading.Thread(target=self._run, name=f"pod-{self.namespace}-{self.name}", daemon=True)
        self._init = [_Container(c, init=True) for c in pod["spec"].get("initContainers") or []]
        self._main = [_Container(c, init=False) for c in pod["spec"].get("containers") or []]
        self._mount_failures: set[str] = set()

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def container(self, name: str) -> _Container | None:
        return next((c for c in self._init + self._main if c.name == name), None)

    def running(self, name: str) -> bool:
        c = self.container(name)
        return c is not None and c.proc is not None and c.result is None and self.live

    def has_live_processes(self) -> bool:
        return any(c.proc is not None and c.result is None for c in self._init + self._main)

    def log_path(self, name: str, previous: bool = False) -> Path:
        return self.dir / "logs" / (f"{name}.previous.log" if previous else f"{name}.log")

    # ------------------------------------------------------------------ lifecycle
    def _pod(self) -> dict[str, Any] | None:
        pod = self.api.find(_PODS, self.namespace, self.name)
        return pod if pod is not None and pod["metadata"]["uid"] == self.uid else None

    def _run(self) -> None:
        try:
            self._lifecycle()
        except Exception:
            log.exception("pod worker %s/%s crashed", self.namespace, self.name)
        finally:
            self._stop_all(0)
            self.live = False
            self.kubelets.worker_finished(self)

    def _lifecycle(self) -> None:
        pod = self._pod()
        if pod is None:
            return
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        if not self._attach_network(pod):
            return
        self.gpus = self.kubelets.allocate_gpus(self.uid, pod)
        self.refresh_hosts()
        self._write_status(first=True)
        mounts = self._prepare_volumes()
        if mounts is None:
            return
        started_mono = time.monotonic()
        deadline_s = pod["spec"].get("activeDeadlineSeconds")
        policy = pod["spec"].get("restartPolicy", "Always")
        # init containers, in order
        for c in self._init:
            while not c.done:
                if self._terminating():
                    return
                if deadline_s and time.monotonic() - started_mono > deadline_s:
                    self._fail_deadline(deadline_s)
                    return
                self._step(c, mounts, "OnFailure" if policy == "Always" else policy)
                if c.done and c.result is not None and c.result.exit_code != 0:
                    self._finish("Failed")
                    return
                self._write_status()
                self.wake.wait(self._tick(c))
                self.wake.clear()
        for c in self._main:
            c.waiting = ("ContainerCreating", "")
        while True:
            if self._terminating():
                return
            if deadline_s and time.monotonic() - started_mono > deadline_s:
                self._fail_deadline(deadline_s)
                return
            for c in self._main:
                if not c.done:
                    self._step(c, mounts, policy)
            if all(c.done for c in self._main):
                failed = any(c.result is not None and c.result.exit_code != 0 for c in self._main)
                self._finish("Failed" if failed else "Succeeded")
                return
            self._write_status()
            self.wake.wait(min(self._tick(c) for c in self._main))
            self.wake.clear()

    # ------------------------------------------------------------------ pod network hook (harness.podnet)
    def _attach_network(self, pod: dict[str, Any]) -> bool:
        """Address the pod: host network, today's loopback pool, or its own namespace from the pod network. An
        attachment that cannot be made (a missing NetworkAttachmentDefinition...) keeps the pod Pending with a
        Warning event and is retried, as the kubelet retries a failed sandbox."""
        podnet = self.kubelets.podnet
        if pod["spec"].get("hostNetwork") or podnet is None:
            is_host = bool(pod["spec"].get("hostNetwork"))
            self.pod_ip = self.kubelets.host_ip if is_host else self.kubelets.pod_ips.allocate()
            return True
        reported: set[str] = set()
        while True:
            try:
                attachment = podnet.attach(pod, self.kubelets.lookup_nad)
            except (AttachmentError, BandwidthError, NetCommandError) as exc:
                message = f"Failed to create pod sandbox: {exc}"
                if not reported:
                    self._write_status(first=True)  # Pending, containers ContainerCreating
                if message not in reported:
                    reported.add(message)
                    self.api.event(pod, type_="Warning", reason="FailedCreatePodSandBox", message=message)
                if self.wake.wait(1.0):
                    self.wake.clear()
                current = self._pod()
                if current is None or self.killed.is_set() or current["metadata"].get("deletionTimestamp"):
                    if current is not None and current["metadata"].get("deletionTimestamp"):
                        self.kubelets.finish_pod_delete(current)
                    return False
                pod = current
                continue
            self.pod_ip, self.netns = attachment.ip, attachment.netns_path
            self.network_annotations = dict(attachment.annotations)
            return True

    def _tick(self, c: _Container) -> float:
        """Poll fast right after a start (short jobs finish in milliseconds), slower for long runners."""
        if c.proc is None and c.restart_at is not None:  # waiting out a creation back-off
            return min(max(0.05, c.restart_at - time.monotonic()), 1.0)
        if c.proc is None or not c.started_at:
            return 0.05
        age = time.monotonic() - c.started_mono
        return 0.005 if age < 0.5 else 0.05 if age < 5 else 0.2

    def _terminating(self) -> bool:
        pod = self._pod()
        if pod is None or self.killed.is_set():
            self._stop_all(0)
            return True
        if pod["metadata"].get("deletionTimestamp"):
            grace = pod["metadata"].get("deletionGracePeriodSeconds")
            grace_s = min(float(grace if grace is not None else 30), 30.0)
            self._stop_all(grace_s)
            self._write_status()
            self.kubelets.finish_pod_delete(pod)
            return True
        return False

    def _stop_all(self, grace_s: float) -> None:
        for c in self._init + self._main:
            if c.proc is not None and c.result is None:
                c.result = c.proc.terminate(grace_s)
                c.waiting = None

    def _fail_deadline(self, deadline_s: int) -> None:
        self._stop_all(0)
        self._finish(
            "Failed",
            reason="DeadlineExceeded",
            message=f"Pod was active on the node longer than the specified deadline ({deadline_s}s)",
        )

    # ------------------------------------------------------------------ volumes
    def _prepare_volumes(self) -> dict[str, Path] | None:
        while True:
            pod = self._pod()
            if pod is None or pod["metadata"].get("deletionTimestamp"):
                if pod is not None:
                    self.kubelets.finish_pod_delete(pod)
                return None
            try:
                return {
                    v["name"]: prepare_volume(pod, v, self.dir, self.kubelets.lookup, self.kubelets.token_source)
                    for v in pod["spec"].get("volumes") or []
                }
            except VolumeError as exc:
                message = f"MountVolume.SetUp failed: {exc}"
                if message not in self._mount_failures:
                    self._mount_failures.add(message)
                    self.api.event(pod, type_="Warning", reason="FailedMount", message=message)
                if self.wake.wait(0.5):
                    self.wake.clear()

    # ------------------------------------------------------------------ containers
    def _launch(self, c: _Container, mounts: dict[str, Path]) -> None:
        pod = self._pod()
        if pod is None:
            return
        try:
            env = self.kubelets.container_env(pod, c.spec, self.gpus)
            security = securitycontext.resolve(pod, c.spec, mount_namespace=self.kubelets.runtime.isolation != "none")
        except ConfigError as exc:
            if c.waiting != ("CreateContainerConfigError", str(exc)):
                self.api.event(pod, type_="Warning", reason="Failed", message=f"Error: {exc}")
            c.waiting = ("CreateContainerConfigError", str(exc))
            c.restart_at = time.monotonic() + 1.0
            return
        argv = tuple(expand(str(a), env) for a in (c.spec.get("command") or []) + (c.spec.get("args") or []))
        fault = self.kubelets.faults.container_faults.get(c.name)
        if fault == "fail":
            argv = ("sh", "-c", "echo 'aibench: injected container failure' >&2; exit 1")
        elif fault == "hang":
            argv = ("sleep", "infinity")
        if not argv:
            # kube keeps such a pod Pending and retries with back-off; a Failed pod here made ReplicaSets and
            # DaemonSets replace it in a tight loop (a pod storm), which no real cluster does.
            message = (
                f'the node runs container commands on the host and cannot pull images: container "{c.name}" '
                f'(image "{c.image}") has no command'
            )
            backoff = min(self.kubelets.restart_backoff_s * (2**c.create_failures), MAX_BACKOFF_S)
            c.create_failures += 1
            c.waiting = ("CreateContainerError", message)
            c.restart_at = time.monotonic() + backoff
            self.api.event(pod, type_="Warning", reason="Failed", message=f"Error: {message}")
            return
        container_mounts = tuple(
            Mount(
                source=mounts[m["name"]] / m["subPath"] if m.get("subPath") else mounts[m["name"]],
                target=m["mountPath"],
                read_only=bool(m.get("readOnly")),
            )
            for m in c.spec.get("volumeMounts") or []
            if m.get("name") in mounts
        )
        log_path = self.log_path(c.name)
        if c.restarts and log_path.exists():
            log_path.replace(self.log_path(c.name, previous=True))
        limits = (c.spec.get("resources") or {}).get("limits") or {}
        memory = int(parse_quantity(str(limits["memory"]))) if "memory" in limits else None
        cpu = int(parse_quantity(str(limits["cpu"])) * 1000) if "cpu" in limits else None
        launch = ContainerLaunch(
            argv=argv,
            env=env,
            working_dir=c.spec.get("workingDir"),
            mounts=container_mounts,
            hosts_file=self.hosts_path,
            log_path=log_path,
            memory_limit_bytes=memory,
            cpu_limit_millis=cpu,
            cgroup_name=f"{self.uid}_{c.name}_{c.restarts}",
            security=security,
            netns=self.netns,
        )
        c.proc = self.kubelets.runtime.start(launch)
        c.started_at = rfc3339()
        c.started_mono = time.monotonic()
        c.container_id = f"aibench://{self.uid[:8]}-{c.name}-{c.restarts}"
        c.result = c.proc.poll()
        c.waiting = None
        c.ready = False
        c.probes = {
            kind: ProbeState(c.spec[f"{kind}Probe"], kind=kind, started_at=time.monotonic())
            for kind in ("readiness", "liveness", "startup")
            if c.spec.get(f"{kind}Probe")
        }
        if c.result is not None and c.result.reason == "ContainerCannotRun":
            self.api.event(
                pod,
                type_="Warning",
                reason="Failed",
                message=f'Error: failed to start container "{c.name}": {c.result.message}',
            )
        else:
            self.api.event(pod, type_="Normal", reason="Started", message=f"Started container {c.name}")

    def _step(self, c: _Container, mounts: dict[str, Path], policy: str) -> None:
        now = time.monotonic()
        if c.proc is None or (c.result is not None and c.restart_at is not None):
            if c.restart_at is None or now >= c.restart_at:
                if c.result is not None:
                    c.restarts += 1
                    c.last_state = _terminated_state(c.result, c.started_at, c.container_id)
                    c.result = None
                c.restart_at = None
                self._launch(c, mounts)
            return
        if c.result is None:
            c.result = c.proc.poll()
            if c.result is None:
                self._probe(c, now)
        if c.result is not None and c.restart_at is None and not c.done:
            restart = policy == "Always" or (policy == "OnFailure" and c.result.exit_code != 0)
            if c.init and c.result.exit_code == 0:
                restart = False
            if not restart:
                c.done = True
                return
            backoff = min(self.kubelets.restart_backoff_s * (2**c.restarts), MAX_BACKOFF_S)
            c.restart_at = now + backoff
            c.waiting = (
                "CrashLoopBackOff",
                f"back-off {backoff:g}s restarting failed container={c.name} "
                f"pod={self.name}_{self.namespace}({self.uid})",
            )
            pod = self._pod()
            if pod is not None:
                self.api.event(
                    pod,
                    type_="Warning",
                    reason="BackOff",
                    message=f"Back-off restarting failed container {c.name} in pod {self.name}",
                )

    def _probe(self, c: _Container, now: float) -> None:
        if not c.probes:
            c.ready = True
            return
        startup = c.probes.get("startup")
        ports = {p["name"]: p["containerPort"] for p in c.spec.get("ports") or [] if p.get("name")}
        for kind in ("startup", "liveness", "readiness"):
            state = c.probes.get(kind)
            if state is None or not state.due(now):
                continue
            if kind != "startup" and startup is not None and startup.state != "ready":
                continue
            assert c.proc is not None
            result = run_probe(
                c.spec[f"{kind}Probe"],
                pod_ip=self.pod_ip,
                env={},
                exec_runner=c.proc.exec_runner,
                timeout_s=state.timeout_s,
                ports=ports,
            )
            transition = state.record(result, time.monotonic())
            if kind == "readiness" and not result.success and (pod := self._pod()) is not None:
                # the kubelet's event for every failed readiness probe (aggregated into one Event with a count)
                self.api.event(
                    pod, type_="Warning", reason="Unhealthy", message=f"Readiness probe failed: {result.message}"
                )
            if transition == "failed":
                pod = self._pod()
                if pod is not None:
                    self.api.event(
                        pod,
                        type_="Warning",
                        reason="Unhealthy",
                        message=f"{kind.capitalize()} probe failed: {result.message}",
                    )
                c.result = c.proc.terminate(float(c.spec.get("terminationGracePeriodSeconds") or 1))
                c.restart_at = None
            elif transition in ("ready", "unready") and kind == "readiness":
                c.ready = transition == "ready"
        if "readiness" not in c.probes:
            c.ready = startup is None or startup.state == "ready"

    # ------------------------------------------------------------------ status
    def _status(self, pod: dict[str, Any], phase: str | None = None) -> dict[str, Any]:
        status: dict[str, Any] = clone(pod.get("status") or {})
        initialized = all(c.done and c.result is not None and c.result.exit_code == 0 for c in self._init)
        ready = initialized and all(c.ready and c.result is None and c.proc is not None for c in self._main)
        _pod_conditions(
            status,
            initialized=initialized,
            ready=ready,
            scheduled_since=pod["metadata"].get("creationTimestamp", rfc3339()),
        )
        if phase is None:
            running = initialized and any(c.proc is not None for c in self._main)
            phase = "Running" if running else "Pending"
        status["phase"] = phase
        status["hostIP"] = self.kubelets.host_ip
        status["hostIPs"] = [{"ip": self.kubelets.host_ip}]
        if self.pod_ip:
            status["podIP"] = self.pod_ip
            status["podIPs"] = [{"ip": self.pod_ip}]
        status.setdefault("startTime", rfc3339())
        if self._init:
            status["initContainerStatuses"] = [c.status() for c in self._init]
        status["containerStatuses"] = [c.status() for c in self._main]
        return status

    def _write_status(
        self, *, first: bool = False, phase: str | None = None, reason: str = "", message: str = ""
    ) -> None:
        def change(p: dict[str, Any]) -> bool:
            new = self._status(p, phase)
            if reason:
                new["reason"], new["message"] = reason, message
            if first:
                annotations = p["metadata"].setdefault("annotations", {})
                annotations[RUNTIME_ANNOTATION] = self.kubelets.runtime_description
                annotations.update(self.network_annotations)
            if new == p.get("status") and not first:
                return False
            p["status"] = new
            return True

        self.api.update_pod(self.namespace, self.name, change, with_metadata=first)

    def _finish(self, phase: str, reason: str = "", message: str = "") -> None:
        for c in self._main:
            c.ready = False
        self._write_status(phase=phase, reason=reason, message=message)
        pod = self._pod()
        if pod is not None and pod["metadata"].get("deletionTimestamp"):
            self.kubelets.finish_pod_delete(pod)

    def refresh_hosts(self) -> None:
        pod = self._pod()
        if pod is None:
            return
        if self.pod_ip:
            pod = dict(pod, status=dict(pod.get("status") or {}, podIP=self.pod_ip))
        text = self.kubelets.hosts_for(pod)
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.hosts_path, "w") as handle:  # same inode: bind mounts see the update
            handle.write(text)


# ----------------------------------------------------------------------------- the node agents
class KubeletSet:
    """The kubelets of all nodes plus kube-proxy; also the log source of the API server."""

    def __init__(
        self,
        api: NodeApi,
        *,
        state_dir: Path,
        faults: FaultInjector,
        restart_backoff_s: float = 1.0,
        podnet: PodNetwork | None = None,
        network_fallback: str = "",
    ) -> None:
        self.api = api
        # where pods reach the API server, and the kubelet's TokenRequest for projected ServiceAccount tokens: set
        # by whoever knows them (the embedded cluster once it serves; the node agent from its kubeconfig)
        self.master_env: dict[str, str] = {}
        self.token_source: TokenSource | None = None
        self.apiserver: Backend | None = None  # the `kubernetes` Service's endpoint, when pods reach it through it
        # the pod network (harness.podnet) when this host can have one; else the host network, and why
        self.podnet = podnet
        self.network_fallback = network_fallback
        self.faults = faults
        self.restart_backoff_s = restart_backoff_s
        self.pods_dir = state_dir / "pods"
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        self.scripted = ScriptedRuntime()
        self.devices = EmulatedDevicePlugin()
        self.pod_ips = AddressPool(pick_subnet(POD_NETWORK))
        self.host_ip = "127.0.0.1"
        self._runtime: ProcessRuntime | None = None
        self._process_nodes: dict[str, dict[str, Any]] = {}
        self._emulated_nodes: dict[str, dict[str, Any]] = {}
        self._workers: dict[str, PodWorker] = {}
        self._gpu_owner: dict[int, str] = {}
        self._lock = threading.RLock()
        self._queue: queue.SimpleQueue[tuple[str, Any] | None] = queue.SimpleQueue()
        self._timers: list[tuple[float, int, str, str, str, Script]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._proxy: ServiceProxy | PodNetwork | None = None
        self._base_env = host_base_env()
        api.subscribe(self._on_event)

    # ------------------------------------------------------------------ registration and lifecycle
    @property
    def runtime(self) -> ProcessRuntime:
        if self._runtime is None:
            self._runtime = ProcessRuntime()
        return self._runtime

    @property
    def runtime_description(self) -> str:
        d = self.runtime.describe()
        network = "pod-netns" if self.podnet is not None else f"host ({self.network_fallback or 'no pod network'})"
        return (
            f"process; isolation={d['isolation']}; limits={d['limits']}; cpu={d['cpu']}; gpu=env-only; "
            f"network={network}"
        )

    @property
    def has_process_node(self) -> bool:
        """True when pods can run as real processes (the host node is part of the cluster)."""
        return bool(self._process_nodes)

    @property
    def emulated_node_names(self) -> list[str]:
        return list(self._emulated_nodes)

    def register(self, node: dict[str, Any]) -> None:
        name = node["metadata"]["name"]
        if (node["metadata"].get("annotations") or {}).get(EMULATED_ANNOTATION) == "true":
            self._emulated_nodes[name] = node
            self.devices.register(node)
        else:
            self._process_nodes[name] = node

    def start(self) -> None:
        if self.podnet is not None:  # pod network hook: host side, Service DNAT instead of the userspace proxy
            self.podnet.start()
            self.podnet.start_policy_agent(self._policy_snapshot, self._policy_problems)
            self._proxy = self.podnet
        else:
            self._proxy = ServiceProxy()
        self._thread = threading.Thread(target=self._run, name="aibench-kubelets", daemon=True)
        self._thread.start()
        for svc in self.api.iter(_SERVICES):
            self._queue.put(("service", (svc["metadata"]["namespace"], svc["metadata"]["name"])))

    def stop(self) -> None:
        """Stop every pod process (SIGTERM, then SIGKILL after a short grace) and every helper thread."""
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.killed.set()
            worker.wake.set()
        for worker in workers:
            worker.join(timeout=15)
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None
        if self._proxy is not None:
            self._proxy.stop()
        if self._runtime is not None:
            self._runtime.close()

    # ------------------------------------------------------------------ API server hooks
    def graceful_delete(self, rtype: ResourceType, obj: dict[str, Any], grace_period_s: int | None) -> bool:
        """A pod with live processes is deleted gracefully: the worker stops them, then removes the object."""
        if rtype.key != _PODS or grace_period_s == 0:
            return False
        with self._lock:
            worker = self._workers.get(obj["metadata"]["uid"])
        return worker is not None and worker.has_live_processes()

    def running_container(self, pod: dict[str, Any], container: str) -> ContainerProcess:
        """The running process of a container, for ``pods/exec`` (its mount namespace, cgroups and env)."""
        from harness.embedded import apierrors

        name = pod["metadata"]["name"]
        if pod["spec"].get("nodeName") in self._emulated_nodes:
            raise apierrors.bad_request(f"pod {name} runs on an emulated node: there is no process to exec into")
        with self._lock:
            worker = self._workers.get(pod["metadata"]["uid"])
        target = worker.container(container) if worker is not None else None
        if target is None or target.proc is None or target.result is not None:
            raise apierrors.bad_request(
                f"unable to upgrade connection: container {container} not found or not running in pod {name}"
            )
        return target.proc

    def _container_log(self, pod: dict[str, Any], container: str, previous: bool) -> Path:
        return (
            self.pods_dir
            / str(pod["metadata"]["uid"])
            / "logs"
            / (f"{container}.previous.log" if previous else f"{container}.log")
        )

    def read(self, pod: dict[str, Any], container: str, query: Mapping[str, str]) -> bytes:
        path = self._container_log(pod, container, query.get("previous") in ("true", "1"))
        if not path.exists():
            from harness.embedded import apierrors

            statuses = (pod.get("status", {}).get("containerStatuses") or []) + (
                pod.get("status", {}).get("initContainerStatuses") or []
            )
            waiting = next(
                (s["state"]["waiting"] for s in statuses if s["name"] == container and "waiting" in s.get("state", {})),
                None,
            )
            if waiting is not None or not statuses:
                reason = (waiting or {}).get("reason", "ContainerCreating")
                raise apierrors.bad_request(
                    f'container "{container}" in pod "{pod["metadata"]["name"]}" is waiting to start: {reason}'
                )
            return b""
        return read_log(
            path,
            tail_lines=_opt_int(query, "tailLines"),
            limit_bytes=_opt_int(query, "limitBytes"),
            since_seconds=_opt_int(query, "sinceSeconds"),
        )

    def stream(self, pod: dict[str, Any], container: str, query: Mapping[str, str]) -> Iterator[bytes]:
        uid = pod["metadata"]["uid"]
        path = self._container_log(pod, container, False)

        def stop() -> bool:
            with self._lock:
                worker = self._workers.get(uid)
            return worker is None or not worker.running(container)

        return follow_log(
            path, stop, tail_lines=_opt_int(query, "tailLines"), limit_bytes=_opt_int(query, "limitBytes")
        )

    # ------------------------------------------------------------------ pod network hooks (harness.podnet)
    def lookup_nad(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.api.find(_NADS, namespace, name)

    def _policy_snapshot(self) -> tuple[list[Any], list[Any], list[Any]]:
        return list(self.api.iter(_NETPOLS)), list(self.api.iter(_PODS)), list(self.api.iter(_NAMESPACES))

    def _policy_problems(self, key: tuple[str, str], problems: tuple[str, ...]) -> None:
        """What a NetworkPolicy asks that is not enforced: a Warning event on the policy (never a silent allow)."""
        policy = self.api.find(_NETPOLS, *key)
        if policy is not None:
            message = "not enforced: " + "; ".join(problems)
            self.api.event(
                policy, type_="Warning", reason="PolicyNotEnforced", message=message, component="aibench-netpol"
            )

    def route_apiserver(self, backend: Backend) -> None:
        """Route the ``default/kubernetes`` Service's ClusterIP to the API server at ``backend`` (as kube-proxy
        does with the endpoints the API server reconciles for itself): pods in their own network namespaces reach
        it there, since the host's loopback is not theirs."""
        self.apiserver = backend
        self._queue.put(("service", ("default", "kubernetes")))

    # ------------------------------------------------------------------ pod helpers used by workers
    def lookup(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.api.find(_LOOKUP_KEYS[kind], namespace, name)

    def container_env(self, pod: dict[str, Any], container: dict[str, Any], gpus: list[int]) -> dict[str, str]:
        node = self._process_nodes.get(pod["spec"].get("nodeName", ""), {})
        services = list(self.api.iter(_SERVICES, pod["metadata"]["namespace"]))
        env = container_env(
            pod,
            container,
            lookup=self.lookup,
            base=self._base_env,
            service_env={**service_links(services), **self.master_env},
            node_allocatable=node.get("status", {}).get("allocatable", {}),
        )
        uuids = (node.get("metadata", {}).get("annotations") or {}).get(GPU_UUIDS_ANNOTATION, "")
        uuid_list = [u for u in uuids.split(",") if u]
        wanted = _gpu_request(container)
        mine = gpus[:wanted] if wanted else []
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in mine)
        env["NVIDIA_VISIBLE_DEVICES"] = ",".join(uuid_list[i] for i in mine if i < len(uuid_list)) or "void"
        return env

    def allocate_gpus(self, uid: str, pod: dict[str, Any]) -> list[int]:
        wanted = sum(_gpu_request(c) for c in pod["spec"].get("containers") or [])
        if not wanted:
            return []
        node = self._process_nodes.get(pod["spec"].get("nodeName", ""), {})
        total = int(node.get("status", {}).get("allocatable", {}).get("nvidia.com/gpu", "0"))
        with self._lock:
            free = [i for i in range(total) if i not in self._gpu_owner]
            mine = free[:wanted]
            for index in mine:
                self._gpu_owner[index] = uid
        return mine

    def hosts_for(self, pod: dict[str, Any]) -> str:
        return hosts_entries(pod, self.api.iter(_SERVICES), self.api.iter(_ENDPOINTS))

    def finish_pod_delete(self, pod: dict[str, Any]) -> None:
        self.api.finish_pod_delete(pod)

    def worker_finished(self, worker: PodWorker) -> None:
        with self._lock:
            for index in [i for i, owner in self._gpu_owner.items() if owner == worker.uid]:
                del self._gpu_owner[index]
        if worker.netns is not None and self.podnet is not None:  # pod network hook: namespace and address go
            self.podnet.detach(worker.uid)
        elif worker.pod_ip and worker.pod_ip != self.host_ip:
            self.pod_ips.release(worker.pod_ip)

    # ------------------------------------------------------------------ events
    def _on_event(self, event: ObjectEvent) -> None:
        policy = self.podnet.policy if self.podnet is not None else None
        if policy is not None:  # pod network hook: NetworkPolicy follows policies, pods and namespaces
            if event.key == _PODS:
                policy.pod_changed(event.obj, deleted=event.type == "DELETED")
            elif event.key in (_NETPOLS, _NAMESPACES):
                policy.changed()
        if event.key == _PODS:
            node = event.obj["spec"].get("nodeName")
            if node and (node in self._process_nodes or node in self._emulated_nodes):
                self._queue.put(("pod", event))
        elif event.key in (_CONFIGMAPS, _SECRETS) and event.type == "MODIFIED":
            self._queue.put(
                ("volume-source", (event.key, event.obj["metadata"]["namespace"], event.obj["metadata"]["name"]))
            )
        elif event.key in (_SERVICES, _ENDPOINTS):
            self._queue.put(("service", (event.obj["metadata"]["namespace"], event.obj["metadata"]["name"])))
            if event.key == _SERVICES and event.type == "DELETED":
                self._queue.put(("service-gone", event.obj))

    def _run(self) -> None:
        while True:
            timeout = None
            if self._timers:
                timeout = max(0.0, self._timers[0][0] - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = ("timer", None)
            if item is None:
                return
            try:
                self._handle(*item)
            except Exception:
                log.exception("kubelet event %s failed", item[0])

    def _handle(self, kind: str, payload: Any) -> None:
        if kind == "pod":
            self._pod_event(payload)
        elif kind == "service":
            self._sync_service(*payload)
            self._refresh_all_hosts()
        elif kind == "volume-source":
            self._refresh_volumes(*payload)
        elif kind == "service-gone":
            ip = payload.get("spec", {}).get("clusterIP")
            if ip and ip != "None" and self._proxy is not None:
                self._proxy.remove(ip)
        elif kind == "timer":
            now = time.monotonic()
            while self._timers and self._timers[0][0] <= now:
                _, _, namespace, name, uid, script = heapq.heappop(self._timers)
                self._finish_scripted(namespace, name, uid, script)

    def _refresh_volumes(self, key: tuple[str, str], namespace: str, name: str) -> None:
        """A changed ConfigMap or Secret reaches the pods that mount it, as kubelet's periodic sync does (files are
        replaced atomically; subPath mounts, as in kube, keep the old content)."""
        field, ref = ("configMap", "name") if key == _CONFIGMAPS else ("secret", "secretName")
        with self._lock:
            workers = [w for w in self._workers.values() if w.live and w.namespace == namespace]
        for worker in workers:
            pod = self.api.find(_PODS, worker.namespace, worker.name)
            if pod is None or pod["metadata"]["uid"] != worker.uid:
                continue
            for volume in pod["spec"].get("volumes") or []:
                direct = (volume.get(field) or {}).get(ref) == name
                projected = any(
                    (source.get(field) or {}).get("name") == name
                    for source in (volume.get("projected") or {}).get("sources") or []
                )
                if direct or projected:
                    try:
                        prepare_volume(pod, volume, worker.dir, self.lookup, self.token_source)
                    except VolumeError as exc:
                        log.info("pod %s/%s: volume %s not refreshed: %s", namespace, worker.name, volume["name"], exc)

    def _pod_event(self, event: ObjectEvent) -> None:
        pod = event.obj
        uid = pod["metadata"]["uid"]
        node = pod["spec"]["nodeName"]
        if node in self._emulated_nodes:
            self._emulated_pod(event)
            return
        with self._lock:
            worker = self._workers.get(uid)
        if event.type == "DELETED":
            if worker is not None:
                worker.killed.set()
                worker.wake.set()
            shutil.rmtree(self.pods_dir / uid, ignore_errors=True)
            return
        if worker is None:
            if pod.get("status", {}).get("phase") in ("Succeeded", "Failed") or pod["metadata"].get(
                "deletionTimestamp"
            ):
                if pod["metadata"].get("deletionTimestamp"):
                    self.finish_pod_delete(pod)
                return
            worker = PodWorker(self, pod)
            with self._lock:
                self._workers[uid] = worker
            worker.start()
        else:
            worker.wake.set()

    def _refresh_all_hosts(self) -> None:
        with self._lock:
            workers = [w for w in self._workers.values() if w.live]
        for worker in workers:
            worker.refresh_hosts()

    def _sync_service(self, namespace: str, name: str) -> None:
        if self._proxy is None:
            return
        svc = self.api.find(_SERVICES, namespace, name)
        if svc is None:
            return
        cluster_ip = svc.get("spec", {}).get("clusterIP")
        if not cluster_ip or cluster_ip == "None":
            return
        if (namespace, name) == ("default", "kubernetes"):  # the API server itself, where the cluster says it is
            if self.apiserver is not None:
                for port in svc["spec"].get("ports") or []:
                    self._proxy.sync(cluster_ip, int(port["port"]), [self.apiserver])
            return
        endpoints = self.api.find(_ENDPOINTS, namespace, name) or {}
        for port in svc["spec"].get("ports") or []:
            backends: list[Backend] = []
            for subset in endpoints.get("subsets") or []:
                ep_port = next(
                    (p["port"] for p in subset.get("ports") or [] if p.get("name", "") == port.get("name", "")), None
                )
                if ep_port is None:
                    continue
                for address in subset.get("addresses") or []:
                    if address.get("nodeName") in self._process_nodes:
                        backends.append(Backend(address["ip"], int(ep_port)))
            self._proxy.sync(cluster_ip, int(port["port"]), backends)

    # ------------------------------------------------------------------ emulated nodes
    def _emulated_pod(self, event: ObjectEvent) -> None:
        pod = event.obj
        if event.type == "DELETED":
            self.devices.release(pod["metadata"].get("uid", ""))
            if pod["metadata"].get("uid") and pod.get("status", {}).get("podIP"):
                self.pod_ips.release(pod["status"]["podIP"])
            return
        if pod["metadata"].get("deletionTimestamp"):
            self.finish_pod_delete(pod)
            return
        if pod.get("status", {}).get("podIP") or pod.get("status", {}).get("phase") in ("Failed", "Succeeded"):
            return  # already started (or rejected at admission)
        script = self.scripted.for_pod(pod)
        try:
            devices = self.devices.allocate(pod)
        except AllocationError as exc:
            self._reject_emulated(pod, "UnexpectedAdmissionError", str(exc))
            return
        ip = self.pod_ips.allocate() if script.waiting is None else ""
        node = self._emulated_nodes[pod["spec"]["nodeName"]]
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
            if script.waiting is not None:
                status = p.setdefault("status", {})
                if status.get("containerStatuses"):
                    return False  # already reported waiting
                changed.append(True)
                status.update(phase="Pending", hostIP=host_ip, hostIPs=[{"ip": host_ip}], startTime=now)
                status["containerStatuses"] = [
                    _waiting(c["name"], c.get("image", ""), *script.waiting) for c in p["spec"].get("containers") or []
                ]
                _pod_conditions(status, initialized=True, ready=False, scheduled_since=now)
                return True
            status = p.setdefault("status", {})
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
            _pod_conditions(status, initialized=True, ready=script.ready, scheduled_since=now)
            return True

        self.api.update_pod(pod["metadata"]["namespace"], pod["metadata"]["name"], start, with_metadata=True)
        if script.event is not None and (changed or script.waiting is None):
            self.api.event(pod, type_="Warning", reason=script.event[0], message=script.event[1])
        if script.waiting is not None:
            return
        text = script.log
        if script.render is not None:
            node_meta = node.get("metadata") or {}
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
            path = self._container_log(pod, pod["spec"]["containers"][0]["name"], False)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        if script.exit_code is not None:
            heapq.heappush(
                self._timers,
                (
                    time.monotonic() + script.after_s,
                    next(self._seq),
                    pod["metadata"]["namespace"],
                    pod["metadata"]["name"],
                    pod["metadata"]["uid"],
                    script,
                ),
            )

    def _reject_emulated(self, pod: dict[str, Any], reason: str, message: str) -> None:
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

    def _finish_scripted(self, namespace: str, name: str, uid: str, script: Script) -> None:
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
            _pod_conditions(status, initialized=True, ready=False, scheduled_since=now)
            return True

        self.api.update_pod(namespace, name, finish)


def _gpu_request(container: dict[str, Any]) -> int:
    resources = container.get("resources") or {}
    value = (resources.get("limits") or {}).get("nvidia.com/gpu") or (resources.get("requests") or {}).get(
        "nvidia.com/gpu"
    )
    return int(value) if value else 0


def _opt_int(query: Mapping[str, str], name: str) -> int | None:
    text = query.get(name)
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        from harness.embedded import apierrors

        raise apierrors.bad_request(f"invalid value for {name}: {text!r}") from None
