"""The node agents of this host: the kubelet of the host node and of every emulated node, plus kube-proxy.

Pods bound to the host node run as local processes, one :class:`~harness.node.podworker.PodWorker` thread each;
pods bound to emulated nodes follow a script (:mod:`harness.node.emulated`); Service ClusterIPs work through the pod
network's nftables DNAT (:mod:`harness.podnet`: each host pod in its own network namespace, NetworkPolicy enforced)
or, on hosts that cannot have one, a userspace kube-proxy on the host network (:mod:`harness.node.proxy`).

The control plane is reached only through :class:`~harness.node.api.NodeApi`: the embedded target wires in its store
(:class:`harness.embedded.nodeapi.StoreNodeApi`), the node agent a real kube-apiserver
(:class:`harness.node.restapi.RestNodeApi`). One event thread handles what the API reports (pods, Services,
ConfigMap and Secret changes) and the scripted pods' timers.
"""

from __future__ import annotations

import logging
import queue
import shutil
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.embedded.faults import FaultInjector
from harness.embedded.inventory import GPU_UUIDS_ANNOTATION
from harness.embedded.network import POD_NETWORK, AddressPool, Backend, hosts_entries, pick_subnet
from harness.embedded.podenv import container_env, host_base_env, service_links
from harness.embedded.podstate import pod_active
from harness.embedded.resources import ResourceType
from harness.embedded.runtime import ContainerProcess, ProcessRuntime
from harness.embedded.volumes import TokenSource, VolumeError, prepare_volume
from harness.embedded.workqueue import WorkQueue
from harness.node.api import PODS, NodeApi, ObjectEvent
from harness.node.containers import ContainerAccess
from harness.node.emulated import EmulatedNodes, ScriptedRuntime
from harness.node.podworker import PodWorker
from harness.node.proxy import ENDPOINTS, SERVICES, ServiceRouting
from harness.podnet.attachments import NAD_GROUP, NAD_PLURAL
from harness.podnet.dataplane import PodNetwork

__all__ = ["KubeletSet"]

log = logging.getLogger(__name__)

_CONFIGMAPS = ("", "configmaps")
_SECRETS = ("", "secrets")
_NETPOLS = ("networking.k8s.io", "networkpolicies")
_NAMESPACES = ("", "namespaces")
_NADS = (NAD_GROUP, NAD_PLURAL)
_LOOKUP_KEYS = {
    "ConfigMap": ("", "configmaps"),
    "Secret": ("", "secrets"),
    "PersistentVolumeClaim": ("", "persistentvolumeclaims"),
    "PersistentVolume": ("", "persistentvolumes"),
}


class KubeletSet:
    """The kubelets of all nodes plus kube-proxy; ``containers`` is the log and exec source of the API server."""

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
        # the pod network (harness.podnet) when this host can have one; else the host network, and why
        self.podnet = podnet
        self.network_fallback = network_fallback
        self.faults = faults
        self.restart_backoff_s = restart_backoff_s
        self.pods_dir = state_dir / "pods"
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        self.pod_ips = AddressPool(pick_subnet(POD_NETWORK))
        self.host_ip = "127.0.0.1"
        self.containers = ContainerAccess(
            self.pods_dir, live_process=self._live_process, emulated_node=lambda name: name in self.emulated
        )
        self.emulated = EmulatedNodes(api, pod_ips=self.pod_ips, log_path=self.containers.log_path)
        self._runtime: ProcessRuntime | None = None
        self._process_nodes: dict[str, dict[str, Any]] = {}
        self._services = ServiceRouting(api, self._process_nodes)
        self._workers: dict[str, PodWorker] = {}
        self._gpu_owner: dict[int, str] = {}
        self._lock = threading.RLock()
        self._queue: WorkQueue[tuple[str, Any]] = WorkQueue("aibench-kubelets")
        self._base_env = host_base_env()
        api.subscribe(self._on_event)

    # ------------------------------------------------------------------ registration and lifecycle
    @property
    def scripted(self) -> ScriptedRuntime:
        """Which script each emulated pod follows (tests and the workload emulations set it)."""
        return self.emulated.scripted

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
        return self.emulated.names

    def register(self, node: dict[str, Any]) -> None:
        if EmulatedNodes.is_emulated(node):
            self.emulated.register(node)
        else:
            self._process_nodes[node["metadata"]["name"]] = node

    def start(self) -> None:
        if self.podnet is not None:  # pod network hook: host side, Service DNAT instead of the userspace proxy
            self.podnet.start()
            self.podnet.start_policy_agent(self._policy_snapshot, self._policy_problems)
        self._services.start(self.podnet)
        self._queue.start(self._run)
        for svc in self.api.iter(SERVICES):
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
        self._queue.stop()
        self._services.stop()
        if self._runtime is not None:
            self._runtime.close()

    # ------------------------------------------------------------------ API server hooks
    def graceful_delete(self, rtype: ResourceType, obj: dict[str, Any], grace_period_s: int | None) -> bool:
        """A pod with live processes is deleted gracefully: the worker stops them, then removes the object."""
        if rtype.key != PODS or grace_period_s == 0:
            return False
        with self._lock:
            worker = self._workers.get(obj["metadata"]["uid"])
        return worker is not None and worker.has_live_processes()

    def _live_process(self, uid: str, container: str) -> ContainerProcess | None:
        with self._lock:
            worker = self._workers.get(uid)
        return worker.live_process(container) if worker is not None else None

    # ------------------------------------------------------------------ pod network hooks (harness.podnet)
    def lookup_nad(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.api.find(_NADS, namespace, name)

    def _policy_snapshot(self) -> tuple[list[Any], list[Any], list[Any]]:
        return list(self.api.iter(_NETPOLS)), list(self.api.iter(PODS)), list(self.api.iter(_NAMESPACES))

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
        self._services.apiserver = backend
        self._queue.put(("service", ("default", "kubernetes")))

    # ------------------------------------------------------------------ pod helpers used by workers
    def lookup(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.api.find(_LOOKUP_KEYS[kind], namespace, name)

    def container_env(self, pod: dict[str, Any], container: dict[str, Any], gpus: list[int]) -> dict[str, str]:
        node = self._process_nodes.get(pod["spec"].get("nodeName", ""), {})
        services = list(self.api.iter(SERVICES, pod["metadata"]["namespace"]))
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
        return hosts_entries(pod, self.api.iter(SERVICES), self.api.iter(ENDPOINTS))

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
            if event.key == PODS:
                policy.pod_changed(event.obj, deleted=event.type == "DELETED")
            elif event.key in (_NETPOLS, _NAMESPACES):
                policy.changed()
        if event.key == PODS:
            node = event.obj["spec"].get("nodeName")
            if node and (node in self._process_nodes or node in self.emulated):
                self._queue.put(("pod", event))
        elif event.key in (_CONFIGMAPS, _SECRETS) and event.type == "MODIFIED":
            self._queue.put(
                ("volume-source", (event.key, event.obj["metadata"]["namespace"], event.obj["metadata"]["name"]))
            )
        elif event.key in (SERVICES, ENDPOINTS):
            self._queue.put(("service", (event.obj["metadata"]["namespace"], event.obj["metadata"]["name"])))
            if event.key == SERVICES and event.type == "DELETED":
                self._queue.put(("service-gone", event.obj))

    def _run(self) -> None:
        while True:
            due = self.emulated.next_due()
            timeout = None if due is None else max(0.0, due - time.monotonic())
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
            self._services.sync(*payload)
            self._refresh_all_hosts()
        elif kind == "volume-source":
            self._refresh_volumes(*payload)
        elif kind == "service-gone":
            self._services.remove(payload)
        elif kind == "timer":
            self.emulated.fire_due(time.monotonic())

    def _refresh_volumes(self, key: tuple[str, str], namespace: str, name: str) -> None:
        """A changed ConfigMap or Secret reaches the pods that mount it, as kubelet's periodic sync does (files are
        replaced atomically; subPath mounts, as in kube, keep the old content)."""
        field, ref = ("configMap", "name") if key == _CONFIGMAPS else ("secret", "secretName")
        with self._lock:
            workers = [w for w in self._workers.values() if w.live and w.namespace == namespace]
        for worker in workers:
            pod = self.api.find(PODS, worker.namespace, worker.name)
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
        if pod["spec"]["nodeName"] in self.emulated:
            self.emulated.pod_event(event, time.monotonic())
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
            if not pod_active(pod):
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


def _gpu_request(container: Mapping[str, Any]) -> int:
    resources = container.get("resources") or {}
    value = (resources.get("limits") or {}).get("nvidia.com/gpu") or (resources.get("requests") or {}).get(
        "nvidia.com/gpu"
    )
    return int(value) if value else 0
