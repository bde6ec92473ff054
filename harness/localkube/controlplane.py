"""The real control plane assembled: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, the operators
with their real CRDs and webhooks, kwok and its nodes — all on 127.0.0.1, all stopped with it.

``LocalKube`` is what ``k8s-ai-bench cluster up --control-plane real`` runs and what ``--target local-kube`` starts
for a suite run. Addresses the API hands out (Service ClusterIPs, kwok's pod IPs) come from 198.18.0.0/15, the
benchmarking range, behind a blackhole route installed first, so that nothing the API server or a client dials for
them can leave the machine.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.embedded.clusterspec import ClusterSpec, apply_host_overrides, load_cluster_spec
from harness.embedded.lifecycle import Lifecycle
from harness.errors import ConfigError, TargetUnavailable
from harness.kubeconfig import refuse_foreign, write_kubeconfig
from harness.localkube.assets import Assets, find_assets
from harness.localkube.emulation import KwokLogEmulator
from harness.localkube.kwok import EMULATED_POD_STAGE, default_spec, kwok_nodes
from harness.localkube.netns import LoopbackNamespace
from harness.localkube.operators import OPERATORS, Operator, webhook_configurations
from harness.localkube.pki import ClusterPki, make_pki
from harness.localkube.processes import Process, Supervisor
from harness.localkube.rest import AdminRest, ApiError
from harness.localkube.storage import MANIFEST, apply_local_path, provisioner_argv
from harness.node.agent import NodeAgent, NodeAgentOptions
from harness.runners.custom import condition

__all__ = ["BENCHMARK_RANGE", "CONTEXT_ADMIN", "POD_CIDR", "SERVICE_CIDR", "LocalKube", "LocalKubeOptions"]

log = logging.getLogger(__name__)

BENCHMARK_RANGE = "198.18.0.0/15"
SERVICE_CIDR = "198.19.128.0/17"
POD_CIDR = "198.18.64.0/19"  # kwok's pod IPs: API data only, no interface carries them
HOST_POD_CIDR = "198.18.96.0/20"  # this machine's node: its pods' network namespaces (harness.podnet)
FIRST_SERVICE_IP = "198.19.128.1"
CONTEXT_ADMIN = "aibench-local-kube"


@dataclass(slots=True, kw_only=True)
class LocalKubeOptions:
    """How to start the real control plane."""

    state_dir: Path | None = None  # None: a private temporary directory, removed on stop
    kubeconfig_path: Path | None = None  # None: <state_dir>/kubeconfig
    spec_path: Path | None = None  # None: kwok.DEFAULT_SPEC
    operators: tuple[str, ...] = tuple(OPERATORS)
    ready_timeout_s: float = 120.0
    env: dict[str, str] | None = None  # where AIBENCH_KUBE_ASSETS is read (None: os.environ)
    include_host: bool = True  # False: leave this machine out even where the spec includes it (--no-host-node)


@dataclass(slots=True, kw_only=True)
class Timings:
    """Seconds from start to each milestone, for the record and the readiness benchmark."""

    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, name: str, since: float) -> None:
        self.marks[name] = round(time.monotonic() - since, 3)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_blackhole_route() -> None:
    """Install (root) or require (otherwise) a blackhole route for 198.18.0.0/15 before any address is handed out."""
    shown = subprocess.run(["ip", "route", "show", BENCHMARK_RANGE], capture_output=True, text=True, check=False)
    if shown.returncode == 0 and "blackhole" in shown.stdout:
        return
    if os.geteuid() != 0:
        raise ConfigError(
            f"real control plane: no blackhole route for {BENCHMARK_RANGE}; as root run "
            f"`ip route add blackhole {BENCHMARK_RANGE}` (so that no address the API hands out can leave the machine)"
        )
    added = subprocess.run(
        ["ip", "route", "replace", "blackhole", BENCHMARK_RANGE], capture_output=True, text=True, check=False
    )
    if added.returncode != 0:
        raise TargetUnavailable(f"real control plane: cannot add the blackhole route: {added.stderr.strip()}")


class LocalKube(Lifecycle):
    """One running real control plane. Use as a context manager or call :meth:`start` / :meth:`stop`.

    The start/stop contract (one start for two calls, a failed start, Ctrl-C included, stops what it started, an
    idempotent stop) is :class:`~harness.embedded.lifecycle.Lifecycle`'s, shared with the embedded cluster and the
    node agent.
    """

    def __init__(self, options: LocalKubeOptions | None = None) -> None:
        self.options = options or LocalKubeOptions()
        unknown = sorted(set(self.options.operators) - set(OPERATORS))
        if unknown:
            raise ConfigError(f"--operators: unknown {', '.join(unknown)} (known: {', '.join(OPERATORS)})")
        self.spec: ClusterSpec = (
            load_cluster_spec(self.options.spec_path) if self.options.spec_path is not None else default_spec()
        )
        if not self.options.include_host:
            self.spec = dataclasses.replace(self.spec, host=dataclasses.replace(self.spec.host, include=False))
        self._nodes = kwok_nodes(self.spec)  # registered, and given devices by the log emulator
        self.assets: Assets = find_assets(self.options.env)
        self._owns_state_dir = self.options.state_dir is None
        self.state_dir = self.options.state_dir or Path(tempfile.mkdtemp(prefix="aibench-local-kube-"))
        self.kubeconfig_path = self.options.kubeconfig_path or self.state_dir / "kubeconfig"
        self.supervisor = Supervisor(self.state_dir / "logs", cwd=self.state_dir)
        self.timings = Timings()
        self.pki: ClusterPki | None = None
        self.port = 0
        self.rest: AdminRest | None = None
        self.node_names: list[str] = []
        self._operator_ports: dict[str, dict[str, int]] = {}
        self._created_paths: list[Path] = []
        self.emulator: KwokLogEmulator | None = None
        self._namespaces: list[LoopbackNamespace] = []
        self.agent: NodeAgent | None = None  # this machine as a node (spec host.include)
        self._kubeconfig_written = False

    @property
    def server_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def describe_nodes(self) -> str:
        """Which nodes are real and which emulated, for the ready line."""
        kwok = f"{len(self._nodes)} kwok: emulated"
        return f"{self.agent.name}: this machine, node agent; {kwok}" if self.agent is not None else kwok

    # ------------------------------------------------------------------------------------------------ start / stop
    def _start(self) -> None:
        """Bring everything up, in dependency order (Lifecycle stops what was started when this raises)."""
        began = time.monotonic()
        ensure_blackhole_route()
        self._check_kubeconfig_path()
        self.pki = make_pki(self.state_dir / "pki", service_ip=FIRST_SERVICE_IP)
        etcd_url = self._start_etcd()
        self.timings.mark("etcd", began)
        self._start_apiserver(etcd_url)
        self.timings.mark("kube-apiserver", began)
        self._write_kubeconfig(self.kubeconfig_path, "admin", CONTEXT_ADMIN)
        self._kubeconfig_written = True
        self._start_controller_manager()
        self._start_scheduler()
        self._install_crds()
        self.timings.mark("crds-established", began)
        self._start_operators()
        self._start_kwok()
        self._register_nodes()
        self._start_log_emulator()
        self._await_nodes_ready()
        self._start_node_agent()
        self._start_local_path()
        self.timings.mark("nodes-ready", began)
        self._await_operators()
        self._await_system()
        self.timings.mark("ready", began)
        log.info("real control plane ready in %.1f s: %s", self.timings.marks["ready"], self.timings.marks)

    def stop(self) -> None:
        """Stop what was started, then remove a private state directory (made in ``__init__``, so also unstarted)."""
        super().stop()
        if self._owns_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def _stop(self) -> None:
        """Stop every process, newest first."""
        if self.agent is not None:  # its pod processes first, while the API server can still hear about them
            self.agent.stop()
            self.agent = None
        if self.emulator is not None:
            self.emulator.stop()
        self.supervisor.stop()
        for namespace in self._namespaces:
            namespace.stop()
        self._namespaces.clear()
        for path in self._created_paths:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        self._created_paths.clear()
        if self._kubeconfig_written:  # its credentials die with this start; a stale file would only mislead
            self.kubeconfig_path.unlink(missing_ok=True)
            self._kubeconfig_written = False

    # ------------------------------------------------------------------------------------------------ components
    def _program(self, name: str) -> str:
        return str(self.assets.program(name))

    def _wait(self, what: str, probe: Any, process: Process | None, timeout_s: float | None = None) -> None:
        """Poll ``probe`` (truthy = ready) while the processes live; a dead process ends the wait with its log."""
        deadline = time.monotonic() + (timeout_s or self.options.ready_timeout_s)
        last = ""
        while time.monotonic() < deadline:
            self.supervisor.check_alive()
            try:
                if probe():
                    return
            except (OSError, ApiError, ssl.SSLError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.1)
        tail = f"; {process.name} log: {process.tail(4)}" if process is not None else ""
        raise TargetUnavailable(
            f"real control plane: {what} not ready in {timeout_s or self.options.ready_timeout_s:.0f} s ({last}){tail}"
        )

    def _start_etcd(self) -> str:
        client, peer = _free_port(), _free_port()
        url = f"http://127.0.0.1:{client}"
        process = self.supervisor.start(
            "etcd",
            [
                self._program("etcd"),
                "--name=aibench",
                f"--data-dir={self.state_dir / 'etcd'}",
                f"--listen-client-urls={url}",
                f"--advertise-client-urls={url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=aibench=http://127.0.0.1:{peer}",
                # A throw-away test cluster: fsync would only measure this machine's disk, not Kubernetes.
                "--unsafe-no-fsync=true",
                "--quota-backend-bytes=4294967296",
                "--log-level=warn",
            ],
        )

        def healthy() -> bool:
            with urllib.request.urlopen(f"{url}/health", timeout=2.0) as response:
                return b'"true"' in response.read()

        self._wait("etcd", healthy, process, 60.0)
        return url

    def _start_apiserver(self, etcd_url: str) -> None:
        assert self.pki is not None
        self.port = _free_port()
        pki = self.pki
        process = self.supervisor.start(
            "kube-apiserver",
            [
                self._program("kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.port}",
                f"--tls-cert-file={pki.apiserver.cert}",
                f"--tls-private-key-file={pki.apiserver.key}",
                f"--client-ca-file={pki.ca}",
                f"--kubelet-client-certificate={pki.clients['kubelet-client'].cert}",
                f"--kubelet-client-key={pki.clients['kubelet-client'].key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki.sa_public}",
                f"--service-account-signing-key-file={pki.sa_private}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                "--allow-privileged=true",
                # The "kubernetes" Service's endpoints would be 127.0.0.1, which Endpoints validation refuses.
                "--endpoint-reconciler-type=none",
                # kwok's nodes all name 127.0.0.1 as InternalIP, where kwok serves their kubelet API.
                "--kubelet-preferred-address-types=InternalIP",
                "--profiling=false",
                "--v=1",
            ],
        )
        context = ssl.create_default_context(cafile=str(pki.ca))
        admin = pki.clients["admin"]
        context.load_cert_chain(str(admin.cert), str(admin.key))
        self.rest = AdminRest("127.0.0.1", self.port, context)
        rest = self.rest
        self._wait("kube-apiserver /readyz", lambda: rest.get("/readyz") == "ok", process)

    def _component_kubeconfig(self, role: str) -> Path:
        path = self.state_dir / f"{role}.kubeconfig"
        self._write_kubeconfig(path, role, f"aibench-{role}")
        return path

    def _start_controller_manager(self) -> None:
        assert self.pki is not None
        kubeconfig = self._component_kubeconfig("controller-manager")
        self.supervisor.start(
            "kube-controller-manager",
            [
                self._program("kube-controller-manager"),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--secure-port=0",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={self.pki.sa_private}",
                f"--root-ca-file={self.pki.ca}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--controllers=*",
                # kwok nodes answer nothing: without this their pods would be evicted as soon as a lease lags.
                "--node-monitor-grace-period=60s",
                "--v=1",
            ],
        )

    def _start_scheduler(self) -> None:
        kubeconfig = self._component_kubeconfig("scheduler")
        self.supervisor.start(
            "kube-scheduler",
            [
                self._program("kube-scheduler"),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--secure-port=0",
                "--v=1",
            ],
        )

    def _install_crds(self) -> None:
        """Every CRD the build copied (operators', Gateway API, GIE, ServiceMonitor, Istio, Multus, kwok's).

        9 MB of YAML: parsed with libyaml where PyYAML has it (about 5x faster than the pure-Python loader) and
        applied four at a time, which keeps the start within its 30 s budget on two cores."""
        assert self.rest is not None
        rest = self.rest
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        crds: list[tuple[str, dict[str, Any]]] = []
        for path in sorted(self.assets.crd_dir.glob("*.yaml")):
            for doc in yaml.load_all(path.read_text(), Loader=loader):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    doc.get("metadata", {}).pop("creationTimestamp", None)
                    doc.pop("status", None)
                    crds.append((path.name, doc))

        def apply(item: tuple[str, dict[str, Any]]) -> str:
            source, doc = item
            try:
                rest.apply(doc)
            except ApiError as exc:
                raise TargetUnavailable(
                    f"real control plane: CRD {doc['metadata']['name']} from {source}: {exc}"
                ) from None
            return str(doc["metadata"]["name"])

        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="crd-apply") as pool:
            names = list(pool.map(apply, crds))

        def established() -> bool:
            items = rest.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]
            return set(names) <= {item["metadata"]["name"] for item in items if condition(item, "Established")}

        self._wait(f"{len(names)} CRDs established", established, None)

    def _start_operators(self) -> None:
        assert self.rest is not None and self.pki is not None
        kubeconfig = self._component_kubeconfig("operator")
        cert_dir = self.state_dir / "webhook-certs"
        cert_dir.mkdir(exist_ok=True)
        shutil.copyfile(self.pki.webhook.cert, cert_dir / "tls.crt")
        shutil.copyfile(self.pki.webhook.key, cert_dir / "tls.key")
        os.chmod(cert_dir / "tls.key", 0o600)
        for name in self.options.operators:
            operator: Operator = OPERATORS[name]
            namespace_of_its_own: LoopbackNamespace | None = None
            if operator.fixed_port is not None:  # its port is its own there; the API server is relayed in
                namespace_of_its_own = LoopbackNamespace(f"aibench-{name}-{os.getpid()}", (self.port,))
                namespace_of_its_own.start()
                self._namespaces.append(namespace_of_its_own)
            if operator.fixed_cert_dir is not None:
                self._place_fixed_certs(operator.fixed_cert_dir, cert_dir)
            ports = operator.ports(_free_port)
            for namespace in operator.namespaces:
                self.rest.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
            argv = operator.argv(
                program=self._program(operator.program),
                kubeconfig=kubeconfig,
                cert_dir=cert_dir,
                ports=ports,
                config_dir=self.state_dir / "operators",
            )
            env = {**os.environ, "KUBECONFIG": str(kubeconfig), **operator.env}
            if namespace_of_its_own is not None:
                argv = namespace_of_its_own.argv(list(argv))
            self.supervisor.start(name, argv, env=env)
            for config in webhook_configurations(self.assets, operator, ports, self.pki.ca_pem):
                self.rest.apply(config)
            self._operator_ports[name] = ports

    def _place_fixed_certs(self, target: Path, source: Path) -> None:
        """Put the webhook certificate where a binary insists on reading one. Only what this start creates is
        removed on stop; certificates already there are used as they are."""
        if (target / "tls.crt").is_file() and (target / "tls.key").is_file():
            return
        top = target
        while not top.parent.exists():
            top = top.parent
        created = [top] if not top.exists() else [target / "tls.crt", target / "tls.key"]
        try:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / "tls.crt", target / "tls.crt")
            shutil.copyfile(source / "tls.key", target / "tls.key")
            os.chmod(target / "tls.key", 0o600)
        except OSError as exc:
            raise ConfigError(f"real control plane: cannot write {target} ({exc.strerror}; run as root)") from None
        finally:
            self._created_paths.extend(created)

    def _start_kwok(self) -> None:
        assert self.pki is not None
        kubeconfig = self._component_kubeconfig("kwok")
        kubelet_port = _free_port()
        stages = sorted((self.assets.root / "stages").glob("*.yaml"))
        if not stages:
            raise ConfigError(f"real control plane: no kwok stages in {self.assets.root / 'stages'}; run the build")
        own_stage = self.state_dir / "aibench-emulated-pod.yaml"
        own_stage.write_text(EMULATED_POD_STAGE)
        stages.append(own_stage)
        self.supervisor.start(
            "kwok",
            [
                self._program("kwok"),
                f"--kubeconfig={kubeconfig}",
                *(f"--config={path}" for path in stages),
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                f"--cidr={POD_CIDR}",
                "--node-ip=127.0.0.1",
                f"--node-port={kubelet_port}",
                f"--server-address=127.0.0.1:{kubelet_port}",
                f"--tls-cert-file={self.pki.webhook.cert}",
                f"--tls-private-key-file={self.pki.webhook.key}",
                "--node-lease-duration-seconds=40",
                "--enable-crds=Logs",  # the emulated workload output (harness.localkube.emulation)
            ],
        )

    def _register_nodes(self) -> None:
        """Create the spec's nodes, four requests at a time (a 1,000-node spec is 1,000 POSTs)."""
        assert self.rest is not None
        rest = self.rest

        def create(node: dict[str, Any]) -> str:
            try:
                rest.create("/api/v1/nodes", node)
            except ApiError as exc:
                if exc.status != 409:
                    raise TargetUnavailable(f"real control plane: node {node['metadata']['name']}: {exc}") from None
            return str(node["metadata"]["name"])

        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="node-create") as pool:
            self.node_names.extend(pool.map(create, self._nodes))

    def _start_log_emulator(self) -> None:
        assert self.rest is not None
        self.emulator = KwokLogEmulator(self.rest, self._nodes, self.state_dir / "pod-logs")
        self.emulator.start()

    def _start_node_agent(self) -> None:
        """This machine as a node: the node agent registers it (the spec's host labels and taints applied) and runs
        the pods the scheduler binds to it as processes, beside the kwok nodes."""
        if not self.spec.host.include:
            return
        assert self.pki is not None
        spec = self.spec
        self.agent = NodeAgent(
            NodeAgentOptions(
                kubeconfig=self.kubeconfig_path,
                context=CONTEXT_ADMIN,
                state_dir=self.state_dir / "node",
                client_ca=self.pki.ca,
                customize=lambda node: apply_host_overrides(node, spec),
                pod_cidr=HOST_POD_CIDR,
                service_cidr=SERVICE_CIDR,
            )
        )
        self.agent.start()
        self.node_names.append(self.agent.name)

    def _start_local_path(self) -> None:
        """PersistentVolumes for claims of pods on this machine's node (harness.localkube.storage)."""
        if self.agent is None:
            return  # kwok nodes run no helper pods: a volume there would be a path nothing created
        assert self.rest is not None
        apply_local_path(self.rest, self.assets.root / "storage" / MANIFEST, self.state_dir / "local-path")
        argv = provisioner_argv(self.assets.program("local-path-provisioner"), self._component_kubeconfig("operator"))
        self.supervisor.start("local-path-provisioner", argv)

    def _await_nodes_ready(self) -> None:
        assert self.rest is not None
        rest, wanted = self.rest, set(self.node_names)
        kwok = next(p for p in self.supervisor.processes if p.name == "kwok")

        def ready() -> bool:
            items = rest.get("/api/v1/nodes")["items"]
            return wanted <= {n["metadata"]["name"] for n in items if condition(n, "Ready")}

        self._wait(f"{len(wanted)} kwok nodes Ready", ready, kwok)

    def _await_operators(self) -> None:
        for name in self.options.operators:
            operator = OPERATORS[name]
            process = next(p for p in self.supervisor.processes if p.name == name)
            url = operator.ready_url(self._operator_ports[name])
            if url is None:
                continue

            def ready(url: str = url) -> bool:
                with urllib.request.urlopen(url, timeout=2.0) as response:
                    return bool(response.status == 200)

            self._wait(f"operator {name} ({url})", ready, process)

    def _await_system(self) -> None:
        """The default ServiceAccount exists in default (the controller-manager runs) and the scheduler lives."""
        assert self.rest is not None
        rest = self.rest
        self._wait(
            "kube-controller-manager (default ServiceAccount)",
            lambda: rest.get("/api/v1/namespaces/default/serviceaccounts/default") is not None,
            None,
        )

    # ------------------------------------------------------------------------------------------------ kubeconfig
    def _check_kubeconfig_path(self) -> None:
        """Never overwrite a kubeconfig the user made: only our own (context aibench-local-kube) may be replaced."""
        refuse_foreign(self.kubeconfig_path, CONTEXT_ADMIN)

    def _write_kubeconfig(self, path: Path, role: str, context: str) -> None:
        assert self.pki is not None
        pair = self.pki.clients[role]
        user: dict[str, str] = {
            "client-certificate-data": base64.b64encode(pair.cert.read_bytes()).decode(),
            "client-key-data": base64.b64encode(pair.key.read_bytes()).decode(),
        }
        write_kubeconfig(path, server=self.server_url, ca_pem=self.pki.ca_pem, context=context, user=user)

    def add_token_context(self, path: Path, *, context: str, token: str, namespace: str) -> None:
        """Add a bearer-token context (the suite's ServiceAccount) to a kubeconfig this control plane wrote."""
        assert self.pki is not None
        write_kubeconfig(
            path,
            server=self.server_url,
            ca_pem=self.pki.ca_pem,
            context=context,
            user={"token": token},
            namespace=namespace,
            merge=True,
        )
