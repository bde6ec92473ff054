"""Start or reach the target a run names: the face's job, not the cluster layer's.

``--target embedded`` starts the embedded control plane (:mod:`harness.embedded`), ``--target local-kube`` the real
one built from Go modules (:mod:`harness.localkube`), ``--target kube`` reaches a cluster through a kube context.
Either way the result is a :class:`~harness.cluster.target.Target` that owns what was started and stops it.

Why here and not in :mod:`harness.cluster.target`: the cluster layer only talks to clusters; if it could start the
embedded target it would import it, and the embedded target's own code imports the cluster layer's helpers (a
cycle the import-graph test forbids). The CLI and the pytest plugin call :func:`connect`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from harness.cluster.retry import RetryCounter
from harness.cluster.target import (
    StartedControlPlane,
    Stoppable,
    Target,
    client_from_kubeconfig,
    connect_kube,
    server_version,
)
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
    return _connect_started(
        TargetKind.EMBEDDED,
        cluster.kubeconfig_path,
        who="embedded target",
        emulated=lambda: cluster.kubelets.emulated_node_names,
        embedded=cluster,
    )


def _start_local_kube(cfg: HarnessConfig, state_dir: Path | None) -> Target:
    """Start the real control plane, apply deploy/rbac.yaml and connect as the suite's ServiceAccount (not admin)."""
    from harness.localkube.controlplane import LocalKube, LocalKubeOptions
    from harness.localkube.identity import add_suite_context

    cluster = LocalKube(LocalKubeOptions(state_dir=state_dir, spec_path=cfg.cluster_spec))
    cluster.start()
    return _connect_started(
        TargetKind.LOCAL_KUBE,
        cluster.kubeconfig_path,
        who="real control plane (as the suite's ServiceAccount)",
        context=lambda: add_suite_context(cluster),
        emulated=lambda: cluster.node_names,
        control_plane=cluster,
    )


def _connect_started(
    kind: TargetKind,
    kubeconfig: Path,
    *,
    who: str,
    emulated: Callable[[], Iterable[str]],
    context: Callable[[], str | None] = lambda: None,
    embedded: Stoppable | None = None,
    control_plane: StartedControlPlane | None = None,
) -> Target:
    """Connect to a target this run has just started, as a :class:`Target` that owns it (``embedded`` or
    ``control_plane``: its ``stop`` stops it).

    Until the Target exists nothing else would stop what was started, so any failure on the way, Ctrl-C included,
    stops it here: nothing the run started may outlive it. ``context`` (the kube context to connect as) and
    ``emulated`` (the nodes whose pods do not run on real hardware) are asked only once the target is up.
    """
    counter = RetryCounter()
    connected = False
    try:
        api_client = client_from_kubeconfig(str(kubeconfig), context(), counter)
        version = server_version(api_client, who)
        emulated_nodes = frozenset(emulated())
        connected = True
    finally:
        if not connected:
            for owned in (embedded, control_plane):
                if owned is not None:
                    owned.stop()
    return Target(
        kind=kind,
        name=kind.value,
        api_client=api_client,
        server_version=version,
        kubeconfig=kubeconfig,
        embedded=embedded,
        control_plane=control_plane,
        emulated_nodes=emulated_nodes,
        retries=counter,
    )


def service_hints(target: Target) -> dict[str, str]:
    """How to install each system service of the embedded target (for the skip of a test that needs a missing
    one); empty for any other target. Handed to capability discovery, which must not import the embedded target."""
    if target.embedded is None:
        return {}
    from harness.embedded.system_services import SERVICES

    return {service.name: service.install_hint for service in SERVICES if service.install_hint}
