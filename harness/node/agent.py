"""This machine as a node of a real Kubernetes API server.

``NodeAgent`` does what a kubelet does at the API level, using the kubelet of the embedded target unchanged (one
kubelet, not two): it registers the host Node (the same inventory as the embedded target: CPUs, memory, disks,
NVML GPUs and their labels), keeps its Lease in ``kube-node-lease`` renewed (the node lifecycle controller marks a
node NotReady without it), refreshes the Node's conditions, runs the pods the scheduler binds to it as local
processes, and serves the kubelet endpoints the API server proxies to (:mod:`harness.node.server`).

What it is not: a CRI kubelet. Images are not pulled (containers run their command on the host, as on the embedded
target; an image-only container waits in CreateContainerError), exec/attach/port-forward through the API server are
not served (SPDY), and it authenticates to the API server with the kubeconfig it is given (not a node identity
under the Node authorizer; ``deploy/`` does not grant a ServiceAccount this).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from harness.embedded.faults import FaultInjector
from harness.embedded.inventory import host_node
from harness.embedded.lifecycle import Lifecycle
from harness.embedded.network import Backend
from harness.embedded.podenv import master_service_env
from harness.embedded.tls import make_serving_cert
from harness.errors import ConfigError
from harness.node.api import PODS
from harness.node.kubelet import KubeletSet
from harness.node.restapi import RestNodeApi
from harness.node.server import KubeletServer
from harness.podnet.dataplane import POD_NETWORK_ANNOTATION, PodNetwork, unavailable_reason

log = logging.getLogger(__name__)

LEASE_DURATION_S = 40
LEASE_RENEW_S = 10.0
STATUS_REFRESH_S = 40.0
AGENT_LABEL = "aibench.io/node-agent"


@dataclass(slots=True, kw_only=True)
class NodeAgentOptions:
    """How to join: which API server (a kubeconfig and context), under which name, with which address."""

    kubeconfig: Path | None  # None: the client's default ($KUBECONFIG, then ~/.kube/config)
    context: str | None = None
    node_name: str | None = None  # None: the sanitised hostname, as the embedded target names it
    node_ip: str = "127.0.0.1"  # where the API server reaches the kubelet endpoints
    state_dir: Path | None = None  # pod directories and logs; None: a private temporary directory
    client_ca: Path | None = None  # the API server's kubelet-client CA: required of every caller when given
    customize: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # e.g. a cluster spec's host labels/taints
    restart_backoff_s: float = 1.0
    pod_network: bool = True  # pods in network namespaces (harness.podnet) where this host can have them
    pod_cidr: str | None = None  # this node's podCIDR (default: the Node's, as the controller-manager set it)
    service_cidr: str | None = None  # the cluster's Service CIDR (default: its ServiceCIDR object `kubernetes`)


def _micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class NodeAgent(Lifecycle):
    """One running node. Use as a context manager or call :meth:`start` / :meth:`stop`
    (:class:`~harness.embedded.lifecycle.Lifecycle`: a failed start stops what it started; stop is idempotent)."""

    def __init__(self, options: NodeAgentOptions) -> None:
        self.options = options
        self._owns_state_dir = options.state_dir is None
        self.state_dir = options.state_dir or Path(tempfile.mkdtemp(prefix="aibench-node-"))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.api_client: client.ApiClient = config.new_client_from_config(
                config_file=None if options.kubeconfig is None else str(options.kubeconfig), context=options.context
            )
        except (config.ConfigException, OSError, ValueError) as exc:
            raise ConfigError(f"--kubeconfig {options.kubeconfig or '(default)'}: {exc}") from exc
        try:
            self.node = host_node(options.node_name, data_dir=self.state_dir)
        except ValueError as exc:
            raise ConfigError(f"--node-name: {exc}") from exc
        if options.customize is not None:
            self.node = options.customize(self.node)
        if options.pod_cidr is not None:
            self.node.setdefault("spec", {}).update(podCIDR=options.pod_cidr, podCIDRs=[options.pod_cidr])
        self.name: str = self.node["metadata"]["name"]
        self.rest = RestNodeApi(self.api_client, self.name)
        self.kubelets = KubeletSet(
            self.rest, state_dir=self.state_dir, faults=FaultInjector(), restart_backoff_s=options.restart_backoff_s
        )
        self.kubelets.token_source = self.rest.pod_token
        server = urlsplit(str(self.api_client.configuration.host))
        if server.hostname and server.port:  # where in-cluster clients in pods find the API server
            self.kubelets.master_env = master_service_env(server.hostname, server.port)
        self._server: KubeletServer | None = None
        self._created_node = False
        self._stopping = threading.Event()
        self._heartbeat: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def _start(self) -> None:
        """Serve the kubelet endpoints, register the Node and its Lease, then run the pods bound to it."""
        try:
            cert = make_serving_cert(self.state_dir / "pki")
            self._server = KubeletServer(
                address=self.options.node_ip,
                port=0,
                cert=cert.cert_path,
                key=cert.key_path,
                client_ca=self.options.client_ca,
                logs=self.kubelets.containers,
                find_pod=self._own_pod,
                node_pods=lambda: [p for p in self.rest.iter(PODS) if p["spec"].get("nodeName") == self.name],
            )
            self._server.start()
            self._register()
            self._renew_lease()
            self._pod_network()
            self.kubelets.register(self.node)  # before the informers: the pods already bound here are the node's
            self.rest.start()
            self.kubelets.start()
            self._heartbeat = threading.Thread(target=self._beat, name="node-heartbeat", daemon=True)
            self._heartbeat.start()
        except (ApiException, HTTPError, OSError, TimeoutError) as exc:
            raise ConfigError(f"node {self.name}: cannot join the API server: {_reason(exc)}") from exc
        log.info("node %s joined (kubelet endpoints on %s:%d)", self.name, self.options.node_ip, self.kubelet_port)

    def _own_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        pod = self.rest.find(PODS, namespace, name)
        return pod if pod is not None and pod["spec"].get("nodeName") == self.name else None

    @property
    def kubelet_port(self) -> int:
        return self._server.port if self._server is not None else 0

    def _stop(self) -> None:
        """Stop every pod process, the Lease and the server; remove the Node (and its Lease) if this agent made it."""
        self._stopping.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)
        self.kubelets.stop()
        self.rest.stop()
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._created_node:
            for path in (
                f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.name}",
                f"/api/v1/nodes/{self.name}",
            ):
                try:
                    self.rest.request("DELETE", path)
                except (ApiException, HTTPError, OSError) as exc:
                    log.info("removing %s: %s", path, _reason(exc))
        self.api_client.close()
        if self._owns_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    # ------------------------------------------------------------------ registration
    def _node_status(self) -> dict[str, Any]:
        status: dict[str, Any] = dict(self.node.get("status") or {})
        status["addresses"] = [
            {"type": "InternalIP", "address": self.options.node_ip},
            {"type": "Hostname", "address": self.name},
        ]
        status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": self.kubelet_port}}
        now = _time()
        for condition in status.get("conditions") or []:
            condition["lastHeartbeatTime"] = now
        return status

    def _register(self) -> None:
        meta = self.node["metadata"]
        labels = dict(meta.get("labels") or {})
        labels[AGENT_LABEL] = "true"
        meta["labels"] = labels
        body = {"apiVersion": "v1", "kind": "Node", "metadata": meta, "spec": self.node.get("spec") or {}}
        try:
            self.rest.request("POST", "/api/v1/nodes", body=body)
            self._created_node = True
        except ApiException as exc:
            if exc.status != 409:
                raise
            existing = self.rest.request("GET", f"/api/v1/nodes/{self.name}")
            if (existing["metadata"].get("labels") or {}).get(AGENT_LABEL) != "true":
                raise ConfigError(
                    f"--node-name {self.name}: a Node of that name exists and is not a k8s-ai-bench node agent's "
                    "(choose another name)"
                ) from exc
            self.rest.request(
                "PATCH",
                f"/api/v1/nodes/{self.name}",
                body={"metadata": {"labels": labels}},
                content_type="application/merge-patch+json",
            )
        self.node = self.rest.request(
            "PATCH",
            f"/api/v1/nodes/{self.name}/status",
            body={"status": self._node_status()},
            content_type="application/merge-patch+json",
        )

    def _pod_network(self) -> None:
        """Give pods their own network namespaces on this node's podCIDR, Services routed for the cluster's Service
        CIDR, or say why they share the host network (the reason reaches every pod's runtime annotation)."""
        reason = unavailable_reason() if self.options.pod_network else "disabled (--host-network)"
        pod_cidr = self.options.pod_cidr or (self.node.get("spec") or {}).get("podCIDR")
        service_cidr = self.options.service_cidr or self._discover_service_cidr()
        if reason is None and service_cidr is None:
            reason = "the cluster's Service CIDR is unknown (no ServiceCIDR `kubernetes`; pass --service-cidr)"
        if reason is not None:
            self.kubelets.network_fallback = reason
            log.info("node %s: pods share the host network: %s", self.name, reason)
            self._annotate(json.dumps({"mode": "host", "reason": reason, "provider": "none"}))
            return
        try:
            network = PodNetwork(
                pod_subnet=ipaddress.IPv4Network(pod_cidr) if pod_cidr else None,
                service_subnet=ipaddress.IPv4Network(service_cidr),
            )
        except ValueError as exc:
            raise ConfigError(
                f"node {self.name}: pod network: {exc} (another node of this cluster on this machine? "
                "--host-network, or --pod-cidr and --service-cidr)"
            ) from None
        self.kubelets.podnet = network
        self._annotate(network.node_annotation())
        self._route_apiserver()

    def _annotate(self, pod_network: str) -> None:
        """What the node offers as a network, where capability discovery reads it (as on the embedded target)."""
        self.node = self.rest.request(
            "PATCH",
            f"/api/v1/nodes/{self.name}",
            body={"metadata": {"annotations": {POD_NETWORK_ANNOTATION: pod_network}}},
            content_type="application/merge-patch+json",
        )

    def _discover_service_cidr(self) -> str | None:
        try:
            found = self.rest.request("GET", "/apis/networking.k8s.io/v1/servicecidrs/kubernetes")
        except ApiException:
            return None
        cidrs = [c for c in (found.get("spec") or {}).get("cidrs") or [] if ":" not in c]
        return cidrs[0] if cidrs else None

    def _route_apiserver(self) -> None:
        """Pods in their own namespaces reach an API server on this machine's loopback by the ``kubernetes``
        Service, as kube's pods do (its ClusterIP must be in the API server's certificate, as kubeadm makes it)."""
        server = urlsplit(str(self.api_client.configuration.host))
        if server.hostname is None or server.port is None or not ipaddress.ip_address(server.hostname).is_loopback:
            return  # an API server elsewhere is not reachable from the pod network (it never leaves 198.18.0.0/15)
        try:
            service = self.rest.request("GET", "/api/v1/namespaces/default/services/kubernetes")
        except ApiException:
            return
        cluster_ip = (service.get("spec") or {}).get("clusterIP")
        if cluster_ip:
            self.kubelets.route_apiserver(Backend(server.hostname, server.port))
            self.kubelets.master_env = master_service_env(cluster_ip, 443)

    def _renew_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.name}"
        spec = {"holderIdentity": self.name, "leaseDurationSeconds": LEASE_DURATION_S, "renewTime": _micro_time()}
        try:
            self.rest.request("PATCH", path, body={"spec": spec}, content_type="application/merge-patch+json")
        except ApiException as exc:
            if exc.status != 404:
                raise
            owner = {
                "apiVersion": "v1",
                "kind": "Node",
                "name": self.name,
                "uid": self.node["metadata"]["uid"],
            }
            self.rest.request(
                "POST",
                "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                body={
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": "kube-node-lease", "ownerReferences": [owner]},
                    "spec": spec,
                },
            )

    def _beat(self) -> None:
        """Renew the Lease every 10 s and the Node's conditions every 40 s, as the kubelet does (errors retried)."""
        since_status = 0.0
        while not self._stopping.wait(LEASE_RENEW_S):
            since_status += LEASE_RENEW_S
            try:
                self._renew_lease()
                if since_status >= STATUS_REFRESH_S:
                    since_status = 0.0
                    self.rest.request(
                        "PATCH",
                        f"/api/v1/nodes/{self.name}/status",
                        body={"status": {"conditions": self._node_status().get("conditions") or []}},
                        content_type="application/merge-patch+json",
                    )
            except (ApiException, HTTPError, OSError) as exc:
                log.warning("node %s heartbeat: %s", self.name, _reason(exc))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"{exc.status} {exc.reason}"
    return str(exc) or type(exc).__name__
