"""The cluster under test: the embedded target (started and stopped by the session) or a real cluster reached
through an explicitly named kube context.

Connecting checks the API server once (``/version``) so that an unreachable cluster or expired credentials end the
run at once with :class:`TargetUnavailable` (exit code 3) instead of failing every test. Every API client made
here carries the client-go-like retry policy of :mod:`harness.cluster.retry` and counts its retries; :func:`lost`
tells a target that went away mid-run (its ``cluster up`` killed) from a test that merely failed.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.config.config_exception import ConfigException

from harness.cluster.retry import RetryCounter, api_retry
from harness.config import HarnessConfig, TargetKind
from harness.errors import ConfigError, TargetUnavailable
from harness.yamlfile import read_yaml

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
PROBE_TIMEOUT_S = 5.0  # a live API server answers /version in milliseconds


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
    retries: RetryCounter = field(default_factory=RetryCounter)  # API retries made so far (429, 5xx, connect)
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


def _client(configuration: client.Configuration, counter: RetryCounter) -> client.ApiClient:
    """An API client with the retry policy set before its connection pool is made (the pool copies it)."""
    configuration.retries = api_retry(counter)
    return client.ApiClient(configuration)


def client_from_kubeconfig(path: str | None, context: str | None, counter: RetryCounter) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(config_file=path, context=context, client_configuration=configuration)
    return _client(configuration, counter)


def kubeconfig_contexts(path: Path | None) -> list[str]:
    """The context names of a kubeconfig, read strictly: a missing, binary, malformed or mis-shaped file is one
    :class:`ConfigError` line naming it (the client library would raise a UnicodeDecodeError or a TypeError)."""
    where = str(path) if path else "~/.kube/config"
    file = path or Path("~/.kube/config").expanduser()
    data = read_yaml(file, "--kubeconfig")
    if not isinstance(data, dict):
        raise ConfigError(f"--kubeconfig {where}: not a kubeconfig (expected a mapping with contexts)")
    contexts = data.get("contexts") or []
    if not isinstance(contexts, list) or not all(
        isinstance(c, dict) and isinstance(c.get("name"), str) for c in contexts
    ):
        raise ConfigError(f"--kubeconfig {where}: contexts must be a list of entries with a name")
    for section in ("clusters", "users"):
        entries = data.get(section) or []
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ConfigError(f"--kubeconfig {where}: {section} must be a list of entries")
    return [str(c["name"]) for c in contexts]


def lost(target: Target) -> str:
    """Why the target no longer answers (empty when it does): one ``/version`` call without retries. Used after a
    test failed with a connection error, to end the run at once (exit 3) instead of erroring every remaining test."""
    configuration = copy.copy(target.api_client.configuration)
    configuration.retries = False
    probe = client.ApiClient(configuration)
    try:
        client.VersionApi(probe).get_code(_request_timeout=PROBE_TIMEOUT_S)
    except ApiException:
        return ""  # it answered: alive, whatever it said
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        return describe_connection_failure(exc)
    finally:
        probe.close()
    return ""


def describe_connection_failure(exc: BaseException) -> str:
    """A connection failure as one line (a MaxRetryError's repr holds the pool, the URL and the nested cause)."""
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    if "Connection refused" in text:
        return "connection refused"
    if isinstance(reason, urllib3.exceptions.TimeoutError) or "timed out" in text:
        return "connection timed out"
    return f"{type(reason).__name__}: {text.split(': ', 1)[-1]}"[:200]


def is_connection_failure(exc: BaseException) -> bool:
    """True for the exceptions a client call raises when the server did not answer at all."""
    return isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError) and not isinstance(exc, ApiException)


def _version(api_client: client.ApiClient, what: str) -> str:
    try:
        info = client.VersionApi(api_client).get_code(_request_timeout=CONNECT_TIMEOUT_S)
    except ApiException as exc:
        if exc.status in (401, 403):
            raise TargetUnavailable(f"{what}: credentials rejected ({exc.status} {exc.reason}); refresh them") from None
        raise TargetUnavailable(f"{what}: API server answered {exc.status} {exc.reason}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise TargetUnavailable(f"{what}: API server unreachable ({describe_connection_failure(exc)})") from None
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
    counter = RetryCounter()
    try:
        api_client = client_from_kubeconfig(str(cluster.kubeconfig_path), None, counter)
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
        retries=counter,
    )


IN_CLUSTER = "in-cluster"


def _connect_in_cluster() -> Target:
    """``--kube-context in-cluster``: the pod's ServiceAccount (the CronJob in deploy/ runs the suite this way)."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except ConfigException as exc:
        raise ConfigError(f"--kube-context {IN_CLUSTER}: not running in a pod with a ServiceAccount ({exc})") from None
    counter = RetryCounter()
    api_client = _client(configuration, counter)
    version = _version(api_client, f"--kube-context {IN_CLUSTER}")
    return Target(kind=TargetKind.KUBE, name=IN_CLUSTER, api_client=api_client, server_version=version, retries=counter)


def _connect_kube(cfg: HarnessConfig) -> Target:
    if cfg.kube_context == IN_CLUSTER:
        return _connect_in_cluster()
    path = str(cfg.kubeconfig) if cfg.kubeconfig else None
    where = f"--kube-context {cfg.kube_context}"
    check_context(cfg)
    counter = RetryCounter()
    try:
        api_client = client_from_kubeconfig(path, cfg.kube_context, counter)
    except ConfigException as exc:
        raise ConfigError(f"{where}: {' '.join(str(exc).split())}") from None
    except (TypeError, ValueError, KeyError, AttributeError, OSError) as exc:  # a mis-shaped entry the check missed
        raise ConfigError(
            f"{where}: unusable entry in {path or '~/.kube/config'} ({type(exc).__name__}: {exc})"
        ) from None
    version = _version(api_client, where)
    return Target(
        kind=TargetKind.KUBE,
        name=str(cfg.kube_context),
        api_client=api_client,
        server_version=version,
        kubeconfig=Path(path) if path else None,
        retries=counter,
    )


def check_context(cfg: HarnessConfig) -> None:
    """``--kube-context`` names a context of a readable ``--kubeconfig`` (before anything starts)."""
    if cfg.target is not TargetKind.KUBE or cfg.kube_context == IN_CLUSTER:
        return
    names = kubeconfig_contexts(cfg.kubeconfig)
    if cfg.kube_context not in names:
        raise ConfigError(
            f"--kube-context {cfg.kube_context}: no such context in {cfg.kubeconfig or '~/.kube/config'} "
            f"(available: {', '.join(names) or 'none'})"
        )
