"""The embedded target assembled: API server, controllers, scheduler, kubelets, nodes, kubeconfig.

``EmbeddedCluster`` is what ``k8s-ai-bench cluster up`` runs in the foreground and what the pytest fixture starts
in-process. Start-up writes a kubeconfig (mode 0600) with a fresh random bearer token; stop ends every watch,
stops every pod process it started and removes what it wrote under its state directory.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from harness.embedded import apierrors, system_services
from harness.embedded.admission import AdmissionContext, create_admitted
from harness.embedded.apiserver import ApiServer
from harness.embedded.binder import Binder
from harness.embedded.clusterspec import ClusterSpec, apply_host_overrides, emulated_nodes, load_cluster_spec
from harness.embedded.controllers import ControllerManager
from harness.embedded.emulated_workloads import emulated_workloads, script_for
from harness.embedded.faults import FaultInjector
from harness.embedded.httpserver import EmbeddedHTTPServer
from harness.embedded.inventory import host_node
from harness.embedded.lifecycle import Lifecycle
from harness.embedded.network import SERVICE_NETWORK, AddressPool, Backend, PortPool, pick_subnet
from harness.embedded.nodeapi import StoreNodeApi
from harness.embedded.podenv import master_service_env
from harness.embedded.provisioner import LocalPathProvisioner
from harness.embedded.resources import Registry
from harness.embedded.serverthread import ServerThread
from harness.embedded.store import Store
from harness.embedded.tls import ServingCert, make_serving_cert
from harness.kubeconfig import refuse_foreign, write_kubeconfig
from harness.labels import SYSTEM_SERVICE_LABEL
from harness.node.kubelet import KubeletSet
from harness.podnet.attachments import nad_crd
from harness.podnet.dataplane import POD_NETWORK_ANNOTATION, PodNetwork, unavailable_reason

log = logging.getLogger(__name__)

LOCAL_PATH_CLASS = "local-path"
LOCAL_MEMORY_CLASS = "local-memory"
LOCAL_PATH_PROVISIONER = "aibench.io/local-path"
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@dataclass(slots=True, kw_only=True)
class EmbeddedOptions:
    """How to start the embedded target."""

    state_dir: Path | None = None  # None: a private temporary directory, removed on stop
    kubeconfig_path: Path | None = None  # None: <state_dir>/kubeconfig
    spec_path: Path | None = None  # cluster spec with emulated nodes
    include_host: bool = True  # mirror this machine as a node that runs pods as local processes
    system_services: bool = True  # run installed host servers (S3, Redis...) as kube-system pods
    system_services_ready_s: float = 30.0  # "ready" is printed only once they answer (or this passes)
    bookmark_interval_s: float = 10.0
    # Base of the exponential back-off for container restarts and Job pod replacement. kube uses 10 s; one
    # machine running short benchmark jobs is better served by 1 s (the doubling and the 5 min cap are kept).
    backoff_s: float = 1.0
    event_window: int = 20_000
    # pods in their own network namespaces (harness.podnet) when this host allows it (root, ip, nft); False keeps
    # every pod on the host network with loopback addresses, as hosts without root get anyway
    pod_network: bool = True
    faults: FaultInjector = field(default_factory=FaultInjector)


class EmbeddedCluster(Lifecycle):
    """One running embedded target. Use as a context manager or call :meth:`start` / :meth:`stop`
    (:class:`~harness.embedded.lifecycle.Lifecycle`: a failed start stops what it started; stop is idempotent)."""

    def __init__(self, options: EmbeddedOptions | None = None) -> None:
        self.options = options or EmbeddedOptions()
        self.faults = self.options.faults
        self.spec: ClusterSpec | None = (
            load_cluster_spec(self.options.spec_path) if self.options.spec_path is not None else None
        )
        self._owns_state_dir = self.options.state_dir is None
        self.state_dir = self.options.state_dir or Path(tempfile.mkdtemp(prefix="aibench-embedded-"))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.kubeconfig_path = self.options.kubeconfig_path or self.state_dir / "kubeconfig"
        self.token = secrets.token_urlsafe(32)
        self.registry = Registry.with_builtins()
        self.store = Store(self.registry, event_window=self.options.event_window)
        # pod network hook: its own Service range (198.19.0.0/17) when pods get network namespaces
        host_node_runs = self.options.include_host and (self.spec is None or self.spec.host.include)
        if not host_node_runs:
            self.network_fallback: str | None = "no host node: emulated pods need no network"
        elif not self.options.pod_network:
            self.network_fallback = "disabled (--host-network)"
        else:
            self.network_fallback = unavailable_reason()
        self.podnet = PodNetwork() if self.network_fallback is None else None
        if self.podnet is None:
            log.info("pods share the host network: %s", self.network_fallback)
        self.service_network = self.podnet.service_subnet if self.podnet else pick_subnet(SERVICE_NETWORK)
        self.service_ips = AddressPool(self.service_network)
        self.node_ports = PortPool()
        self.admission = AdmissionContext(
            allocate_cluster_ip=self.service_ips.allocate,
            allocate_node_port=self.node_ports.allocate,
            default_storage_class=self._default_storage_class,
            service_account=lambda namespace, name: self.store.find(("", "serviceaccounts"), namespace, name),
        )
        shm = Path("/dev/shm")
        memory_root = shm / f"aibench-{uuid.uuid4().hex[:12]}" if shm.is_dir() and os.access(shm, os.W_OK) else None
        self.provisioner = LocalPathProvisioner(self.store, self.admission, self.state_dir / "volumes", memory_root)
        self.kubelets = KubeletSet(
            StoreNodeApi(self.store),
            state_dir=self.state_dir,
            faults=self.faults,
            restart_backoff_s=self.options.backoff_s,
            podnet=self.podnet,
            network_fallback=self.network_fallback or "",
        )
        self.api = ApiServer(
            self.store,
            self.admission,
            logs=self.kubelets.containers,
            graceful_delete=self.kubelets.graceful_delete,
            exec_hook=self.kubelets.containers.running_container,
        )
        self.kubernetes_service_ip = str(self.service_network.network_address + 1)
        # in-cluster clients dial the `kubernetes` Service's ClusterIP and check it against the certificate
        self.tls: ServingCert = make_serving_cert(self.state_dir / "pki", extra_ips=(self.kubernetes_service_ip,))
        self.controllers = ControllerManager(
            self.store,
            self.admission,
            graceful_delete=self.kubelets.graceful_delete,
            job_backoff_s=self.options.backoff_s,
            root_ca_pem=self.tls.ca_pem.decode(),
        )
        self.binder = Binder(self.store, faults=self.faults)
        self._http: EmbeddedHTTPServer | None = None
        self._http_serving: ServerThread[EmbeddedHTTPServer] | None = None
        self._kubeconfig_written = False
        self._state_metrics: Any = None  # StateMetricsServer once started

    # ------------------------------------------------------------------ lifecycle
    @property
    def server_url(self) -> str:
        if self._http is None:
            raise RuntimeError("the embedded cluster is not started")
        return f"https://{self._http.address}"

    def _start(self) -> None:
        """Serve (on any failure, Ctrl-C during start-up included, nothing half-started is left behind)."""
        self._check_kubeconfig_path()  # here, not earlier: a refusal still removes the private state made so far
        self._seed()
        if self.kubelets.emulated_node_names:  # workload pods there finish with their emulated output
            self.kubelets.scripted.emulate(partial(script_for, table=emulated_workloads()))
        self.controllers.start()
        self.binder.start()
        self.provisioner.start()
        self.kubelets.start()
        if self.options.system_services and self.kubelets.has_process_node:
            self._offer_state_metrics()
        self._http = EmbeddedHTTPServer(
            self.api, self.token, self.faults, self.options.bookmark_interval_s, tls=self.tls.server_context()
        )
        self._http_serving = ServerThread(self._http, name="aibench-apiserver", poll_interval=0.2)
        self._http_serving.start()
        host, port = self._http.address.rsplit(":", 1)
        self.kubelets.token_source = self.api.pod_token
        if self.podnet is not None:  # pods have their own loopback: they reach the API server by its Service
            self.kubelets.route_apiserver(Backend(host, int(port)))
            self.kubelets.master_env = master_service_env(self.kubernetes_service_ip, 443)
        else:
            self.kubelets.master_env = master_service_env(host, int(port))
        self._await_system_services(self.options.system_services_ready_s)
        self._write_kubeconfig()
        log.info("embedded cluster serving at %s (kubeconfig %s)", self.server_url, self.kubeconfig_path)

    def _stop(self) -> None:
        """Stop serving, stop every pod process, remove the private state directory."""
        if self._http is not None:
            self._http.stopping.set()
            self.store.close_all_watches()
        if self._http_serving is not None:
            self._http_serving.stop()
        if self._state_metrics is not None:
            self._state_metrics.stop()
            self._state_metrics = None
        self.kubelets.stop()
        self.provisioner.stop()
        self.binder.stop()
        self.controllers.stop()
        if self._kubeconfig_written and self.kubeconfig_path.exists():
            self.kubeconfig_path.unlink()
        if self._owns_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """True once controllers and the scheduler have nothing queued (for tests; never a sleep)."""
        return self.controllers.wait_idle(timeout_s) and self.binder.wait_idle(timeout_s)

    # ------------------------------------------------------------------ helpers for in-process users
    def create(self, obj: dict[str, Any], namespace: str = "") -> dict[str, Any]:
        """Create an object as a client would (admission included), without HTTP."""
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        rtype = self.registry.for_kind(api_version, kind)
        if rtype is None:
            raise apierrors.bad_request(f"no resource serves {api_version} {kind}")
        own_namespace = namespace or obj.get("metadata", {}).get("namespace") or "default"
        namespace = own_namespace if rtype.namespaced else ""
        return create_admitted(self.store, self.admission, rtype, namespace, obj)

    # ------------------------------------------------------------------ internals
    def _default_storage_class(self) -> str | None:
        for sc in self.store.iter(("storage.k8s.io", "storageclasses")):
            annotations = sc["metadata"].get("annotations") or {}
            if annotations.get("storageclass.kubernetes.io/is-default-class") == "true":
                return str(sc["metadata"]["name"])
        return None

    def _seed(self) -> None:
        for name in SYSTEM_NAMESPACES:
            self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        self.create(
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {
                    "name": LOCAL_PATH_CLASS,
                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                },
                "provisioner": LOCAL_PATH_PROVISIONER,
                "reclaimPolicy": "Delete",
                "volumeBindingMode": "Immediate",
                "allowVolumeExpansion": False,
            }
        )
        # A second, faster tier: tmpfs (RAM) volumes, as a node-local model cache would use.
        self.create(
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {
                    "name": LOCAL_MEMORY_CLASS,
                    "annotations": {"aibench.io/description": "tmpfs (RAM) directories on this machine"},
                },
                "provisioner": LOCAL_PATH_PROVISIONER,
                "parameters": {"medium": "Memory"},
                "reclaimPolicy": "Delete",
                "volumeBindingMode": "Immediate",
                "allowVolumeExpansion": False,
            }
        )
        if self.podnet is not None:  # pod network hook: NetworkAttachmentDefinitions are served, as with Multus
            self.create(nad_crd())
        nodes: list[dict[str, Any]] = []
        if self.options.include_host and (self.spec is None or self.spec.host.include):
            host = host_node(data_dir=self.state_dir)
            host["metadata"].setdefault("annotations", {})[POD_NETWORK_ANNOTATION] = self._pod_network_annotation()
            nodes.append(apply_host_overrides(host, self.spec) if self.spec is not None else host)
        if self.spec is not None:
            nodes.extend(emulated_nodes(self.spec))
        for node in nodes:
            created = self.create(node)
            self.kubelets.register(created)
        self.service_ips.reserve(self.kubernetes_service_ip)
        self.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": "kubernetes",
                    "namespace": "default",
                    "labels": {"component": "apiserver", "provider": "kubernetes"},
                },
                "spec": {
                    "ports": [{"name": "https", "port": 443, "targetPort": 6443}],
                    "clusterIP": self.kubernetes_service_ip,
                },
            }
        )
        if self.options.system_services and self.kubelets.has_process_node:
            for service, command in system_services.available():
                for manifest in service.manifests(command):
                    self.create(manifest)

    def _offer_state_metrics(self) -> None:
        """kube-state-metrics' families, served by this process, as the Service kube-system/kube-state-metrics
        (no selector: its Endpoints point at the server on 127.0.0.1, as for any service outside the pod network)."""
        from harness.embedded.state_metrics import StateMetricsServer

        # reachable from pods' own network namespaces through the bridge gateway, and from the host
        self._state_metrics = StateMetricsServer(self.store, self.podnet.gateway if self.podnet else "127.0.0.1")
        self._state_metrics.start()
        name, namespace = "kube-state-metrics", system_services.SYSTEM_NAMESPACE
        labels = {"app.kubernetes.io/name": name, SYSTEM_SERVICE_LABEL: name}
        self.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": labels,
                    "annotations": {
                        "aibench.io/description": "kube-state-metrics families served by the embedded control plane",
                        "prometheus.io/scrape": "true",
                    },
                },
                "spec": {"ports": [{"name": "http-metrics", "port": 8080, "targetPort": self._state_metrics.port}]},
            }
        )
        self.create(
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "subsets": [
                    {
                        "addresses": [{"ip": self._state_metrics.host}],
                        "ports": [{"name": "http-metrics", "port": self._state_metrics.port}],
                    }
                ],
            }
        )

    def _pod_network_annotation(self) -> str:
        """What the host node offers as a network (read by capability discovery and recorded with the run)."""
        if self.podnet is not None:
            return self.podnet.node_annotation()
        return json.dumps({"mode": "host", "reason": self.network_fallback or "", "provider": "none"})

    def _await_system_services(self, timeout_s: float) -> None:
        """Wait until every system service has a ready endpoint, so the first test can use it; one that does not
        come up in time is logged and left to the tests (they fail with its events)."""
        deadline = time.monotonic() + timeout_s
        services = [
            s
            for s in self.store.iter(("", "services"), system_services.SYSTEM_NAMESPACE)
            if SYSTEM_SERVICE_LABEL in (s["metadata"].get("labels") or {})
        ]
        for svc in services:
            name = svc["metadata"]["name"]
            while True:
                endpoints = self.store.find(("", "endpoints"), system_services.SYSTEM_NAMESPACE, name) or {}
                if any(subset.get("addresses") for subset in endpoints.get("subsets") or []):
                    break
                if time.monotonic() >= deadline:
                    log.warning("system service %s is not ready after %.0fs", name, timeout_s)
                    return
                time.sleep(0.02)

    def _check_kubeconfig_path(self) -> None:
        """Never overwrite a kubeconfig the user made: only our own (context aibench-embedded) may be replaced."""
        refuse_foreign(self.kubeconfig_path, "aibench-embedded")

    def _write_kubeconfig(self) -> None:
        write_kubeconfig(
            self.kubeconfig_path,
            server=self.server_url,
            ca_pem=self.tls.ca_pem,
            context="aibench-embedded",
            user={"token": self.token},
        )
        self._kubeconfig_written = True
