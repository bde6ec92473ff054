"""The cluster under test: the embedded target (started and stopped by the session) or a real cluster reached
through an explicitly named kube context.

Connecting checks the API server once (``/version``) so that an unreachable cluster or expired credentials end the
run at once with :class:`TargetUnavailable` (exit code 3) instead of failing every test.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.config.config_exception import ConfigException

from harness.config import HarnessConfig, TargetKind
from harness.errors import ConfigError, TargetUnavailable

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0


@dataclass(slots=True, kw_only=True)
class Target:
    """A connected cluster. ``emulated_nodes`` names nodes whose pods do not run on real hardware."""

    kind: TargetKind
    name: str
    api_client: client.ApiClient
    server_version: str
    kubeconfig: Path | None = None
    embedded: Any = None  # the EmbeddedCluster when kind is embedded
    control_plane: Any = None  # the LocalKube when kind is local-kube (stopped with the target)
    emulated_nodes: frozenset[str] = field(default_factory=frozenset)
    _applier: Any = None

    @property
    def applier(self) -> Any:
        """One dynamic-client applier per target: API discovery is read once per run, not per workload."""
        if self._applier is None:
            from harness.cluster.manifests import Applier

            self._applier = Applier(self.api_client)
        return self._applier

    def stop(self) -> None:
        """Close connections; an embedded target or a local control plane is stopped (every process ends)."""
        try:
            self.api_client.close()
        finally:
            for owned in (self.embedded, self.control_plane):
                if owned is not None:
                    owned.stop()


def _version(api_client: client.ApiClient, what: str) -> str:
    try:
        info = client.VersionApi(api_client).get_code(_request_timeout=CONNECT_TIMEOUT_S)
    except ApiException as exc:
        if exc.status in (401, 403):
            raise TargetUnavailable(f"{what}: credentials rejected ({exc.status} {exc.reason}); refresh them") from None
        raise TargetUnavailable(f"{what}: API server answered {exc.status} {exc.reason}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise TargetUnavailable(f"{what}: API server unreachable ({type(exc).__name__}: {exc})") from None
    return str(info.git_version)


def connect(cfg: HarnessConfig, *, state_dir: Path | None = None) -> Target:
    """Start or reach the target ``cfg`` names."""
    if cfg.target is TargetKind.EMBEDDED:
        return _start_embedded(cfg, state_dir)
    if cfg.target is TargetKind.LOCAL_KUBE:
        return _start_local_kube(cfg, state_dir)
    return _connect_kube(cfg)


def _start_embedded(cfg: HarnessConfig, state_dir: Path | None) -> Target:
    from harness.embedded.cluster import EmbeddedCluster, EmbeddedOptions

    cluster = EmbeddedCluster(EmbeddedOptions(state_dir=state_dir, spec_path=cfg.cluster_spec))
    cluster.start()
    try:
        api_client = config.new_client_from_config(config_file=str(cluster.kubeconfig_path))
        version = _version(api_client, "embedded target")
        emulated = frozenset(cluster.kubelets.emulated_node_names)
    except Exception:
        cluster.stop()
        raise
    return Target(
        kind=TargetKind.EMBEDDED,
        name="embedded",
        api_client=api_client,
        server_version=version,
        kubeconfig=cluster.kubeconfig_path,
        embedded=cluster,
        emulated_nodes=emulated,
    )


def _start_local_kube(cfg: HarnessConfig, state_dir: Path | None) -> Target:
    """Start the real control plane, apply deploy/rbac.yaml and connect as the suite's ServiceAccount (not admin)."""
    from harness.localkube.controlplane import LocalKube, LocalKubeOptions
    from harness.localkube.identity import add_suite_context

    cluster = LocalKube(LocalKubeOptions(state_dir=state_dir, spec_path=cfg.cluster_spec))
    cluster.start()
    connected = False
    try:  # stopped on any failure, Ctrl-C included: nothing the run started may outlive it
        context = add_suite_context(cluster)
        api_client = config.new_client_from_config(config_file=str(cluster.kubeconfig_path), context=context)
        version = _version(api_client, "real control plane (as the suite's ServiceAccount)")
        connected = True
    finally:
        if not connected:
            cluster.stop()
    return Target(
        kind=TargetKind.LOCAL_KUBE,
        name="local-kube",
        api_client=api_client,
        server_version=version,
        kubeconfig=cluster.kubeconfig_path,
        control_plane=cluster,
        emulated_nodes=frozenset(cluster.node_names),
    )


IN_CLUSTER = "in-cluster"


def _connect_in_cluster() -> Target:
    """``--kube-context in-cluster``: the pod's ServiceAccount (the CronJob in deploy/ runs the suite this way)."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except ConfigException as exc:
        raise ConfigError(f"--kube-context {IN_CLUSTER}: not running in a pod with a ServiceAccount ({exc})") from None
    api_client = client.ApiClient(configuration)
    version = _version(api_client, f"--kube-context {IN_CLUSTER}")
    return Target(kind=TargetKind.KUBE, name=IN_CLUSTER, api_client=api_client, server_version=version)


def _connect_kube(cfg: HarnessConfig) -> Target:
    if cfg.kube_context == IN_CLUSTER:
        return _connect_in_cluster()
    path = str(cfg.kubeconfig) if cfg.kubeconfig else None
    where = f"--kube-context {cfg.kube_context}"
    try:
        contexts, _ = config.list_kube_config_contexts(config_file=path)
    except (ConfigException, OSError) as exc:
        raise ConfigError(f"--kubeconfig {path or '~/.kube/config'}: cannot read it ({exc})") from None
    names = [c["name"] for c in contexts or []]
    if cfg.kube_context not in names:
        raise ConfigError(
            f"{where}: no such context in {path or '~/.kube/config'} (available: {', '.join(names) or 'none'})"
        )
    try:
        api_client = config.new_client_from_config(config_file=path, context=cfg.kube_context)
    except ConfigException as exc:
        raise ConfigError(f"{where}: {exc}") from None
    version = _version(api_client, where)
    return Target(
        kind=TargetKind.KUBE,
        name=str(cfg.kube_context),
        api_client=api_client,
        server_version=version,
        kubeconfig=Path(path) if path else None,
    )
