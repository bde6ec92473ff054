"""HarnessConfig: every option of a run, resolved CLI > environment (``AIBENCH_*``) > ini > default.

One table (:data:`OPTIONS`) drives the pytest options, the ini keys, the environment variables and the
``k8s-ai-bench run`` flags, so the four can never drift apart. Resolution is strict: a bad value is a
:class:`ConfigError` naming where it came from (``--timeout-scale``, ``AIBENCH_TIMEOUT_SCALE`` or the ini key) and
what is wrong, in one line.
"""

from __future__ import annotations

import math
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.errors import ConfigError

__all__ = ["OPTIONS", "HarnessConfig", "Option", "TargetKind", "new_run_id", "parse_run_id", "resolve", "unwritable"]


class TargetKind(StrEnum):
    EMBEDDED = "embedded"
    LOCAL_KUBE = "local-kube"  # the real control plane of harness/localkube, started for the run
    KUBE = "kube"


@dataclass(frozen=True, slots=True, kw_only=True)
class Option:
    """One harness option: its names everywhere and how to parse it."""

    name: str  # attribute of HarnessConfig, also the ini key with an ``aibench_`` prefix
    flag: str
    help: str
    parse: Callable[[str], Any]
    default: Any = None
    is_flag: bool = False  # a boolean switch on the command line

    @property
    def env(self) -> str:
        return "AIBENCH_" + self.name.upper()

    @property
    def ini(self) -> str:
        return "aibench_" + self.name


def _target(text: str) -> TargetKind:
    try:
        return TargetKind(text)
    except ValueError:
        raise ValueError(f"must be one of {', '.join(t.value for t in TargetKind)} (got {text!r})") from None


#: ``--timeout-scale`` above this is a typo, not a slow cluster: 1000 turns a 10-minute workload into a week.
MAX_TIMEOUT_SCALE = 1000.0


def _positive_float(text: str) -> float:
    """A finite positive factor: ``inf`` would remove every timeout and ``nan`` compares false with everything."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"must be a positive number (got {text!r})") from None
    if not value > 0:
        raise ValueError(f"must be a positive number (got {text!r})")
    if not math.isfinite(value) or value > MAX_TIMEOUT_SCALE:
        raise ValueError(
            f"must be a finite number up to {MAX_TIMEOUT_SCALE:g} (got {text!r}: it would remove timeouts)"
        )
    return value


def _batch(text: str) -> int:
    """A batch size for the control-plane SLO tests: bounded, so a typo cannot flood a production cluster."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"must be a whole number from 1 to 1000 (got {text!r})") from None
    if not 1 <= value <= 1000:
        raise ValueError(f"must be a whole number from 1 to 1000 (got {text!r})")
    return value


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"must be true or false (got {text!r})")


#: Names in the reports directory that are not run ids: ``latest`` is the link to the newest run.
RESERVED_RUN_IDS = frozenset({"latest"})


def parse_run_id(text: str) -> str:
    """A run id as ``--run-id`` takes it (also ``k8s-ai-bench load``'s): a valid directory name and label value that
    is not a reserved name of the reports directory; ValueError says what is wrong."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", text):
        raise ValueError(f"must be 1-63 letters, digits, '.', '_' or '-' (got {text!r})")
    if text.lower() in RESERVED_RUN_IDS:
        raise ValueError(f"{text!r} is reserved (reports/latest links to the newest run); choose another id")
    return text


# The image reference grammar of the distribution project: a domain (host, optional port) and path components.
_REGISTRY = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])"
    r"(?::[0-9]{1,5})?"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
)


def _registry(text: str) -> str:
    text = text.strip().rstrip("/")
    if not _REGISTRY.fullmatch(text):
        raise ValueError(
            f"must be a registry host and optional path such as mirror.example:5000/dockerhub (got {text!r})"
        )
    return text


def unwritable(path: Path, *, directory: bool) -> str:
    """Why ``path`` cannot be written (empty when it can): it, or the nearest parent that exists, must be a
    writable directory (``directory``), or ``path`` a writable file or creatable in such a directory. Checked
    before anything starts, so that a bad output path is one line and not a run or a cluster that dies writing."""
    if directory or not path.exists():
        probe = path if directory else path.parent
        while not probe.exists() and not probe.is_symlink() and probe.parent != probe:
            probe = probe.parent
        if probe.is_symlink() and not probe.exists():
            return f"{probe} is a broken symbolic link"
        if probe.exists() and not probe.is_dir():
            return "is a file, expected a directory" if probe == path else f"{probe} is a file, not a directory"
        if not os.access(probe, os.W_OK | os.X_OK):
            return "not writable" if probe == path else f"cannot be created ({probe} is not writable)"
        return ""
    if path.is_dir():
        return "is a directory, expected a file"
    return "" if os.access(path, os.W_OK) else "not writable"


def _reports_dir(text: str) -> Path:
    """Where run records go: a directory, or one that can be made."""
    if not text.strip():
        raise ValueError("must not be empty")
    path = Path(text).expanduser()
    if problem := unwritable(path, directory=True):
        raise ValueError(f"{path}: {problem}")
    return path


def _existing_file(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    return path


def _text(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text.strip()


_HOST_PORT = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?):([0-9]{1,5})")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def _s3_endpoint(text: str) -> str:
    """``host:port`` of an S3 endpoint (no scheme: HTTPS unless --s3-insecure)."""
    text = text.strip()
    match = _HOST_PORT.fullmatch(text)
    if not match or not 0 < int(match.group(1)) < 65536:
        raise ValueError(f"must be host:port such as minio.storage.svc:9000, without a scheme (got {text!r})")
    return text


def _s3_bucket(text: str) -> str:
    text = text.strip()
    if not _BUCKET.fullmatch(text) or ".." in text:
        raise ValueError(f"must be an S3 bucket name: 3-63 lowercase letters, digits, '.' or '-' (got {text!r})")
    return text


def _object_ref(kind: str, name_pattern: re.Pattern[str], example: str) -> Callable[[str], str]:
    """Parser of a ``namespace/name`` option naming a Kubernetes object (read from the API, never printed)."""

    def parse(text: str) -> str:
        text = text.strip()
        namespace, slash, name = text.partition("/")
        if not slash or not _DNS_LABEL.fullmatch(namespace) or not name_pattern.fullmatch(name):
            raise ValueError(f"must be namespace/name of a {kind}, such as {example} (got {text!r})")
        return text

    return parse


_PROMETHEUS_REF = re.compile(
    r"([a-z0-9][-a-z0-9]{0,62})/([a-z0-9][-a-z0-9]{0,62})(?::([0-9]{1,5}|[a-z][-a-z0-9]{0,14}))?"
)


def _prometheus_url(text: str) -> str:
    """``http(s)://host:port[/prefix]`` (reachable from where the harness runs), or ``namespace/service[:port]``
    (reached through the API server's service proxy, which needs nothing but the kubeconfig)."""
    text = text.strip().rstrip("/")
    parsed = urlsplit(text)
    if parsed.scheme in ("http", "https") and parsed.hostname:
        return text
    if _PROMETHEUS_REF.fullmatch(text):
        return text
    raise ValueError(
        "must be a URL such as http://127.0.0.1:9090 or namespace/service[:port] such as "
        f"monitoring/prometheus-k8s:9090 (got {text!r})"
    )


def _serving_load(text: str) -> str:
    """Checked now (a bad shape is a one-line exit 2 before anything runs), kept as text for the run record."""
    from harness.runners.load import shape_from_text

    if shape_from_text(text).kind == "sweep":
        raise ValueError("kind: the latency test runs one concurrency or rate shape (the sweep has its own test)")
    return text.strip()


def _serving_url(text: str) -> str:
    """An OpenAI-compatible base URL the harness machine reaches (checked now: a bad one is exit 2)."""
    from harness.errors import ConfigError
    from harness.loadgen.endpoint import parse_endpoint

    try:
        return parse_endpoint(text, option="").url
    except ConfigError as exc:
        raise ValueError(str(exc).strip()) from None


_namespaced_name = _object_ref("Secret", _DNS_SUBDOMAIN, "storage/s3-credentials")
_service_ref = _object_ref("Service", _DNS_LABEL, "cache/redis-master")


def _switch(name: str, help: str) -> Option:
    """A boolean switch: off by default, ``--<name>`` on the command line, true/false in the environment and ini."""
    return Option(name=name, flag="--" + name.replace("_", "-"), parse=_bool, default=False, is_flag=True, help=help)


OPTIONS: tuple[Option, ...] = (
    Option(
        name="target",
        flag="--target",
        parse=_target,
        default=TargetKind.EMBEDDED,
        help="cluster under test: the built-in embedded target, local-kube (a real Kubernetes control plane with kwok "
        "nodes and the real operators, started on this machine; build it with `bash deploy/local-kube/build.sh`), or "
        "a real cluster via --kube-context",
    ),
    Option(
        name="kube_context",
        flag="--kube-context",
        parse=_text,
        help="kube context of the real cluster (required with --target kube; never taken implicitly)",
    ),
    Option(
        name="kubeconfig",
        flag="--kubeconfig",
        parse=_existing_file,
        help="kubeconfig file holding --kube-context (default: ~/.kube/config)",
    ),
    Option(
        name="profile",
        flag="--profile",
        parse=_text,
        help="threshold profile name or file (default: matched from the target's capabilities)",
    ),
    Option(
        name="reports_dir",
        flag="--reports-dir",
        parse=_reports_dir,
        default=Path("reports"),
        help="where run records are written (default: reports)",
    ),
    Option(name="run_id", flag="--run-id", parse=parse_run_id, help="id of this run (default: timestamp + random)"),
    _switch("keep_namespaces", "leave each test's namespace in place for debugging"),
    Option(
        name="timeout_scale",
        flag="--timeout-scale",
        parse=_positive_float,
        default=1.0,
        help="multiply every workload timeout (slow clusters, image pulls)",
    ),
    Option(
        name="image_registry",
        flag="--image-registry",
        parse=_registry,
        help="registry mirror prefix for air-gapped clusters (rewrites every workload image)",
    ),
    Option(
        name="cluster_spec",
        flag="--cluster-spec",
        parse=_existing_file,
        help="--target embedded or local-kube: cluster spec YAML adding emulated nodes",
    ),
    Option(
        name="s3_endpoint",
        flag="--s3-endpoint",
        parse=_s3_endpoint,
        help="S3 model store to test as host:port (HTTPS unless --s3-insecure); default: the target's s3 service",
    ),
    Option(
        name="s3_bucket",
        flag="--s3-bucket",
        parse=_s3_bucket,
        help="bucket for the S3 tests (created and removed when missing; default: aibench-models)",
    ),
    Option(
        name="s3_secret",
        flag="--s3-secret",
        parse=_namespaced_name,
        help="namespace/name of a Secret with keys accessKey and secretKey for the S3 store (never printed)",
    ),
    _switch("s3_insecure", "talk plain HTTP to --s3-endpoint instead of HTTPS"),
    Option(
        name="redis_service",
        flag="--redis-service",
        parse=_service_ref,
        help="namespace/name of the Redis Service for the cache-tier test (default: the target's redis service)",
    ),
    Option(
        name="startup_pods",
        flag="--startup-pods",
        parse=_batch,
        default=20,
        help="pods created for the pod-startup SLO (1..1000; 20 gives a p99 that means the slowest pod)",
    ),
    Option(
        name="api_calls",
        flag="--api-calls",
        parse=_batch,
        default=50,
        help="timed calls per API verb for the API call-latency SLO (1..1000)",
    ),
    Option(
        name="serving_load",
        flag="--serving-load",
        parse=_serving_load,
        help="load shape of the serving suite's latency test, key=value pairs such as concurrency=64,duration_s=30 "
        "or kind=rate,rate=20 (fields: harness/runners/load.py LoadShape; default: 16 streams for 8 s)",
    ),
    Option(
        name="serving_url",
        flag="--serving-url",
        parse=_serving_url,
        help="serving suite: judge this OpenAI-compatible endpoint, http(s)://host[:port][/prefix], instead of "
        "deploying the token streamer (model: the first of its /v1/models; the load runs from this machine)",
    ),
    _switch(
        "serving_insecure", "--serving-url is https with a certificate this machine does not trust: skip the check"
    ),
    Option(
        name="prometheus_url",
        flag="--prometheus-url",
        parse=_prometheus_url,
        help="Prometheus to check and query: a URL, or namespace/service[:port] reached through the API server's "
        "service proxy (default: a discovered Prometheus Service)",
    ),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class HarnessConfig:
    """The resolved options of one run (stored in pytest's ``config.stash``)."""

    target: TargetKind = TargetKind.EMBEDDED
    kube_context: str | None = None
    kubeconfig: Path | None = None
    profile: str | None = None
    reports_dir: Path = Path("reports")
    run_id: str = ""
    keep_namespaces: bool = False
    timeout_scale: float = 1.0
    image_registry: str | None = None
    cluster_spec: Path | None = None
    s3_endpoint: str | None = None
    s3_bucket: str | None = None
    s3_secret: str | None = None
    s3_insecure: bool = False
    redis_service: str | None = None
    serving_load: str | None = None
    serving_url: str | None = None
    serving_insecure: bool = False
    prometheus_url: str | None = None
    startup_pods: int = 20
    api_calls: int = 50
    sources: Mapping[str, str] | None = None  # option name -> "cli" | "env" | "ini" | "default"

    def timeout(self, seconds: float) -> float:
        """A workload timeout scaled by ``--timeout-scale``."""
        return seconds * self.timeout_scale

    @property
    def run_dir(self) -> Path:
        return self.reports_dir / self.run_id

    def public(self) -> dict[str, Any]:
        """Options as recorded in run.json (paths as text; nothing secret lives here)."""
        return {o.name: (str(v) if isinstance(v := getattr(self, o.name), Path) else v) for o in OPTIONS}


def new_run_id(now: datetime | None = None) -> str:
    """Sortable and unique: ``20261128-130512-3f9a``."""
    moment = now or datetime.now(UTC)
    return f"{moment:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def resolve(cli: Mapping[str, Any], env: Mapping[str, str], ini: Mapping[str, Any]) -> HarnessConfig:
    """Merge the sources (CLI > env > ini > default), parse strictly, then check the combination.

    ``cli`` holds already-typed values or raw text (None = not given); ``env`` is the process environment;
    ``ini`` maps ini keys (``aibench_target``...) to text (empty or None = not set).
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        raw, where, origin = None, "", "default"
        if cli.get(option.name) not in (None, ""):
            raw, where, origin = cli[option.name], option.flag, "cli"
        elif env.get(option.env) not in (None, ""):
            raw, where, origin = env[option.env], option.env, "env"
        elif ini.get(option.ini) not in (None, "", []):
            raw, where, origin = ini[option.ini], f"ini {option.ini}", "ini"
        if raw is None:
            values[option.name] = option.default
        elif isinstance(raw, str):
            try:
                values[option.name] = option.parse(raw)
            except ValueError as exc:
                raise ConfigError(f"{where}: {exc}") from None
        else:
            values[option.name] = raw
        sources[option.name] = origin
    if not values.get("run_id"):
        values["run_id"] = new_run_id()
    config = HarnessConfig(**values, sources=sources)
    _check_combination(config)
    return config


def _check_combination(config: HarnessConfig) -> None:
    if config.target is TargetKind.KUBE:
        if not config.kube_context:
            raise ConfigError("--target kube: needs --kube-context (the ambient kubeconfig is never used implicitly)")
        if config.cluster_spec is not None:
            raise ConfigError("--cluster-spec: only applies to --target embedded or local-kube")
    else:
        target = config.target.value
        if config.kube_context:
            raise ConfigError(f"--kube-context: given with --target {target}; add --target kube to test that cluster")
        if config.kubeconfig is not None:
            raise ConfigError(f"--kubeconfig: given with --target {target}; add --target kube and --kube-context")
    if config.s3_endpoint and not config.s3_secret:
        raise ConfigError("--s3-endpoint: needs --s3-secret namespace/name (a Secret with accessKey and secretKey)")
    if config.s3_insecure and not config.s3_endpoint:
        raise ConfigError("--s3-insecure: only applies with --s3-endpoint (the target's s3 service is plain HTTP)")
