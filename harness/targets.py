"""Start or reach the target a run names: the face's job, not the cluster layer's.

``--target embedded`` starts the embedded control plane (:mod:`harness.embedded`), ``--target local-kube`` the real
one built from Go modules (:mod:`harness.localkube`), ``--target kube`` reaches a cluster through a kube context.
Either way the result is a :class:`~harness.cluster.target.Target` that owns what was started and stops it.

Why here and not in :mod:`harness.cluster.target`: the cluster layer only talks to clusters; if it could start the
embedded target it would import it, and the embedded target's own code imports the cluster layer's helpers (a
cycle the import-graph test forbids). The CLI and the pytest plugin call :func:`connect`.
"""

from __future__ import annotations

from pathlib import Path

from harness.cluster.retry import RetryCounter
from harness.cluster.target import Target, client_from_kubeconfig, connect_kube, server_version
from harness.config import HarnessConfig, TargetKind

__all__ = ["connect", "service_hints"]


def connect(cfg: HarnessConfig, *, state_dir: Path | None = None) -> Target:
    """Start or reach the target ``cfg`` names."""
    if cfg.target is TargetKind.EMBEDDED:
        return _start_embedded(cfg, state_dir)
    if cfg.target is TargetKind.LOCAL_KUBE:
        return _start_local_kube(cfg, state_dir)
    return connect_kube(cfg)


def _start_embedded(cfg: HarnessConfig, state_dir: Path | None) -> Target:
    from harness.embedded.cluster import EmbeddedCluster, EmbeddedOptions

    cluster = EmbeddedCluster(EmbeddedOptions(state_dir=state_dir, spec_path=cfg.cluster_spec))
    cluster.start()
    counter = RetryCounter()
    try:
        api_client = client_from_kubeconfig(str(cluster.kubeconfig_path), None, counter)
        version = server_version(api_client, "embedded target")
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
        retries=counter,
    )


def _start_local_kube(cfg: HarnessConfig, state_dir: Path | None) -> Target:
    """Start the real control plane, apply deploy/rbac.yaml and connect as the suite's ServiceAccount (not admin)."""
    from harness.localkube.controlplane import LocalKube, LocalKubeOptions
    from harness.localkube.identity import add_suite_context

    cluster = LocalKube(LocalKubeOptions(state_dir=state_dir, spec_path=cfg.cluster_spec))
    cluster.start()
    connected = False
    counter = RetryCounter()
    try:  # stopped on any failure, Ctrl-C included: nothing the run started may outlive it
        context = add_suite_context(cluster)
        api_client = client_from_kubeconfig(str(cluster.kubeconfig_path), context, counter)
        version = server_version(api_client, "real control plane (as the suite's ServiceAccount)")
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
        retries=counter,
    )


def service_hints(target: Target) -> dict[str, str]:
    """How to install each system service of the embedded target (for the skip of a test that needs a missing
    one); empty for any other target. Handed to capability discovery, which must not import the embedded target."""
    if target.embedded is None:
        return {}
    from harness.embedded.system_services import SERVICES

    return {service.name: service.install_hint for service in SERVICES if service.install_hint}
