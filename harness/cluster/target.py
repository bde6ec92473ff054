"""The cluster under test as the harness talks to it: a :class:`Target` (an API client with its retry counter and
applier), reached through an explicitly named kube context or handed over by whoever started a local one.

Starting a target (the embedded one, the real local control plane) is the face's job (:mod:`harness.targets`),
not this layer's: ``harness.cluster`` only talks to clusters, so it imports neither of them.

Connecting checks the API server once (``/version``) so that an unreachable cluster or expired credentials end the
run at once with :class:`TargetUnavailable` (exit code 3) instead of failing every test. Every API client made
here carries the client-go-like retry policy of :mod:`harness.cluster.retry` and counts its retries; :func:`lost`
tells a target that went away mid-run (its ``cluster up`` killed) from a test that merely failed.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from harness.cluster.manifests import Applier
from harness.cluster.retry import RetryCounter, api_retry
from harness.config import HarnessConfig, TargetKind
from harness.errors import ConfigError, TargetUnavailable
from harness.yamlfile import read_yaml

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
PROBE_TIMEOUT_S = 5.0  # a live API server answers /version in milliseconds


class Stoppable(Protocol):
    """A target process group the run started and must stop (the embedded cluster, the local control plane)."""

    def stop(self) -> None: ...


class Milestones(Protocol):
    """Seconds from a start to each named milestone (the real control plane's etcd, kube-apiserver, ...)."""

    @property
    def marks(self) -> Mapping[str, float]: ...


class StartedControlPlane(Stoppable, Protocol):
    """A control plane the run started: stopped with the target, and its start recorded milestone by milestone."""

    @property
    def timings(self) -> Milestones: ...


class ClusterHandle(Protocol):
    """What probes and helpers need of a cluster: the API client and the run's applier. A :class:`Target` is one;
    :class:`Connection` makes one from a bare client (unit tests, tools). Helpers take this, never a bare client, so
    a suite's test body passes the target it was given and no API client appears there."""

    @property
    def api_client(self) -> client.ApiClient: ...

    @property
    def applier(self) -> Applier: ...


@dataclass(slots=True)
class Connection:
    """An API client and a lazily made applier: a :class:`ClusterHandle` without a Target."""

    api_client: client.ApiClient
    _applier: Applier | None = None

    @property
    def applier(self) -> Applier:
        if self._applier is None:
            self._applier = Applier(self.api_client)
        return self._applier


@dataclass(slots=True, kw_only=True)
class Target(Connection):
    """A connected cluster. ``emulated_nodes`` names nodes whose pods do not run on real hardware. Its applier (the
    :class:`Connection`'s) is one per target: API discovery is read once per run, not per workload."""

    kind: TargetKind
    name: str
    server_version: str
    kubeconfig: Path | None = None
    embedded: Stoppable | None = None  # the EmbeddedCluster when kind is embedded
    control_plane: StartedControlPlane | None = None  # the LocalKube when kind is local-kube (stopped with the target)
    emulated_nodes: frozenset[str] = field(default_factory=frozenset)
    retries: RetryCounter = field(default_factory=RetryCounter)  # API retries made so far (429, 5xx, connect)

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


def server_version(api_client: client.ApiClient, what: str) -> str:
    """The API server's git version, or :class:`TargetUnavailable` naming ``what`` and why it did not answer."""
    try:
        info = client.VersionApi(api_client).get_code(_request_timeout=CONNECT_TIMEOUT_S)
    except ApiException as exc:
        if exc.status in (401, 403):
            raise TargetUnavailable(f"{what}: credentials rejected ({exc.status} {exc.reason}); refresh them") from None
        raise TargetUnavailable(f"{what}: API server answered {exc.status} {exc.reason}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise TargetUnavailable(f"{what}: API server unreachable ({describe_connection_failure(exc)})") from None
    return str(info.git_version)


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
    version = server_version(api_client, f"--kube-context {IN_CLUSTER}")
    return Target(kind=TargetKind.KUBE, name=IN_CLUSTER, api_client=api_client, server_version=version, retries=counter)


def connect_kube(cfg: HarnessConfig) -> Target:
    """Reach the real cluster ``--kube-context`` names (or the pod's ServiceAccount for ``in-cluster``)."""
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
    version = server_version(api_client, where)
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
