"""One pod bound to the host node, driven from volumes to termination as the kubelet's pod worker drives it.

Its own thread per pod: the pod network attachment (:mod:`harness.podnet`), volumes, init containers in order,
containers with restartPolicy and back-off, readiness/liveness/startup probes, graceful termination, and a status
written only when it changes. Container processes come from :mod:`harness.embedded.runtime`, which reports what it
can enforce; each pod is annotated with that, so no result claims isolation or limits that were not there.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.embedded import securitycontext
from harness.embedded.objects import clone, rfc3339
from harness.embedded.podenv import ConfigError, expand
from harness.embedded.probes import ProbeState, run_probe
from harness.embedded.runtime import ContainerLaunch, ContainerProcess, Mount
from harness.embedded.volumes import VolumeError, prepare_volume
from harness.node.api import PODS
from harness.node.containers import container_log_path
from harness.node.podstatus import ContainerState, pod_conditions, terminated_state
from harness.podnet.attachments import AttachmentError
from harness.podnet.bandwidth import BandwidthError
from harness.podnet.commands import NetCommandError
from harness.quantity import parse_quantity, to_millis

if TYPE_CHECKING:
    from harness.node.kubelet import KubeletSet

__all__ = ["MAX_BACKOFF_S", "RUNTIME_ANNOTATION", "PodWorker"]

log = logging.getLogger(__name__)

RUNTIME_ANNOTATION = "aibench.io/runtime"
MAX_BACKOFF_S = 300.0


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
        self._init = [ContainerState(c, init=True) for c in pod["spec"].get("initContainers") or []]
        self._main = [ContainerState(c, init=False) for c in pod["spec"].get("containers") or []]
        self._mount_failures: set[str] = set()

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def container(self, name: str) -> ContainerState | None:
        return next((c for c in self._init + self._main if c.name == name), None)

    def live_process(self, name: str) -> ContainerProcess | None:
        """The process of container ``name`` while it runs (exec enters it, a followed log ends with it)."""
        c = self.container(name)
        return c.proc if c is not None and c.live else None

    def has_live_processes(self) -> bool:
        return any(c.live for c in self._init + self._main)

    def log_path(self, name: str, previous: bool = False) -> Path:
        return container_log_path(self.dir, name, previous)

    # ------------------------------------------------------------------ lifecycle
    def _pod(self) -> dict[str, Any] | None:
        pod = self.api.find(PODS, self.namespace, self.name)
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

    def _tick(self, c: ContainerState) -> float:
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
    def _launch(self, c: ContainerState, mounts: dict[str, Path]) -> None:
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
        cpu = to_millis(str(limits["cpu"])) if "cpu" in limits else None
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

    def _step(self, c: ContainerState, mounts: dict[str, Path], policy: str) -> None:
        now = time.monotonic()
        if c.proc is None or (c.result is not None and c.restart_at is not None):
            if c.restart_at is None or now >= c.restart_at:
                if c.result is not None:
                    c.restarts += 1
                    c.last_state = terminated_state(c.result, c.started_at, c.container_id)
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
            self._warn("BackOff", f"Back-off restarting failed container {c.name} in pod {self.name}")

    def _probe(self, c: ContainerState, now: float) -> None:
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
            if kind == "readiness" and not result.success:
                # the kubelet's event for every failed readiness probe (aggregated into one Event with a count)
                self._warn("Unhealthy", f"Readiness probe failed: {result.message}")
            if transition == "failed":
                self._warn("Unhealthy", f"{kind.capitalize()} probe failed: {result.message}")
                c.result = c.proc.terminate(float(c.spec.get("terminationGracePeriodSeconds") or 1))
                c.restart_at = None
            elif transition in ("ready", "unready") and kind == "readiness":
                c.ready = transition == "ready"
        if "readiness" not in c.probes:
            c.ready = startup is None or startup.state == "ready"

    def _warn(self, reason: str, message: str) -> None:
        """A Warning Event on the pod as it is now (none once it is gone)."""
        pod = self._pod()
        if pod is not None:
            self.api.event(pod, type_="Warning", reason=reason, message=message)

    # ------------------------------------------------------------------ status
    def _status(self, pod: dict[str, Any], phase: str | None = None) -> dict[str, Any]:
        status: dict[str, Any] = clone(pod.get("status") or {})
        initialized = all(c.done and c.result is not None and c.result.exit_code == 0 for c in self._init)
        ready = initialized and all(c.ready and c.result is None and c.proc is not None for c in self._main)
        pod_conditions(
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
