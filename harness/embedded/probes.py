"""Kubernetes container probes (httpGet, tcpSocket, exec) for the embedded kubelet.

Probes stay dicts (the pod spec's ``livenessProbe`` etc.), as everywhere else in the embedded target. Safety rule of
the project: the embedded target only ever talks to loopback, so probes connect only to a pod IP in 127.0.0.0/8 or
``::1``; a caller passing anything else is a bug (``ValueError``), while a pod spec naming a non-loopback
``httpGet.host``/``tcpSocket.host`` is user input and just fails the probe with a clear message.
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import re
import socket
import ssl
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from harness.podnet.ranges import BENCH_RANGE, on_this_machine

logger = logging.getLogger(__name__)

# (argv, timeout_s) -> exit code; raises TimeoutError when the command did not finish in time.
ExecRunner = Callable[[tuple[str, ...], float], int]
ProbeKind = Literal["liveness", "readiness", "startup"]
Transition = Literal["ready", "unready", "failed"]

USER_AGENT = "kube-probe/1.31"
MAX_BODY = 10 * 1024
_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeResult:
    """One probe attempt; ``message`` follows the kubelet's wording so events look familiar."""

    success: bool
    message: str


def require_loopback(ip: str) -> str:
    """Return ``ip`` if the project may contact it (loopback, or the pod network's 198.18.0.0/15 whose bridges and
    blackhole route keep it on this machine), else raise."""
    try:
        ipaddress.ip_address(ip)
    except ValueError as exc:
        raise ValueError(f"probe target {ip!r} is not an IP address; only loopback or pod IPs are allowed") from exc
    if not on_this_machine(ip):
        raise ValueError(
            f"refusing to probe {ip}: only loopback addresses (127.0.0.0/8, ::1) and pod IPs ({BENCH_RANGE}) may be "
            "contacted"
        )
    return ip


def _probe_host(probe_host: object, pod_ip: str) -> str:
    if probe_host in (None, ""):
        return pod_ip
    host = "127.0.0.1" if probe_host == "localhost" else str(probe_host)
    return require_loopback(host)


def _resolve_port(port: object, ports: Mapping[str, int]) -> int:
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    if isinstance(port, str) and port in ports:
        return ports[port]
    raise ValueError(f"unable to find port {port!r} in the container's ports")


def expand_command(argv: list[str] | tuple[str, ...], env: Mapping[str, str]) -> tuple[str, ...]:
    """``$(VAR)`` expansion as the kubelet applies to exec probe commands; unknown refs stay, ``$$`` -> ``$``."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return tuple(_VAR_REF.sub(sub, str(arg)) for arg in argv)


def subprocess_exec_runner(env: Mapping[str, str]) -> ExecRunner:
    """Fallback exec runner on the host (no container namespace): use ``ContainerProcess.exec_runner`` if possible."""

    def run(argv: tuple[str, ...], timeout_s: float) -> int:
        try:
            proc = subprocess.Popen(
                list(argv),
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except FileNotFoundError:
            return 127
        except PermissionError:
            return 126
        try:
            return proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise TimeoutError(f"command {list(argv)!r} timed out") from None

    return run


def _http_probe(spec: Mapping[str, Any], host: str, port: int, timeout_s: float) -> ProbeResult:
    scheme = str(spec.get("scheme") or "HTTP").upper()
    path = str(spec.get("path") or "/")
    if not path.startswith("/"):
        path = "/" + path
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    for header in spec.get("httpHeaders") or ():
        headers[str(header.get("name"))] = str(header.get("value", ""))
    url_host = f"[{host}]" if ":" in host else host
    url = f"{scheme.lower()}://{url_host}:{port}{path}"
    conn: http.client.HTTPConnection
    if scheme == "HTTPS":
        # Like the kubelet: probes do not verify certificates.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(host, port, timeout=timeout_s, context=ctx)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read(MAX_BODY)
    except TimeoutError:
        return ProbeResult(
            success=False,
            message=f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)',
        )
    except (OSError, http.client.HTTPException) as exc:
        return ProbeResult(success=False, message=f'Get "{url}": {_describe_error(exc, host, port)}')
    finally:
        conn.close()
    # Redirects are not followed: a 3xx already counts as success (200-399), as it does for the kubelet.
    if 200 <= resp.status < 400:
        return ProbeResult(success=True, message=f"HTTP probe succeeded with statuscode: {resp.status}")
    text = body.decode(errors="replace")
    return ProbeResult(success=False, message=f"HTTP probe failed with statuscode: {resp.status}: {text}".rstrip(": "))


def _describe_error(exc: BaseException, host: str, port: int) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return f"dial tcp {host}:{port}: connect: connection refused"
    return f"{type(exc).__name__}: {exc}"


def _tcp_probe(host: str, port: int, timeout_s: float) -> ProbeResult:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except TimeoutError:
        return ProbeResult(success=False, message=f"dial tcp {host}:{port}: i/o timeout")
    except OSError as exc:
        return ProbeResult(success=False, message=_describe_error(exc, host, port))
    return ProbeResult(success=True, message="")


def run_probe(
    probe: Mapping[str, Any],
    *,
    pod_ip: str,
    env: Mapping[str, str],
    exec_runner: ExecRunner | None,
    timeout_s: float,
    ports: Mapping[str, int] | None = None,
) -> ProbeResult:
    """Run one probe attempt. ``ports`` maps the container's named ports; ``exec_runner`` should run inside the
    container (``ContainerProcess.exec_runner``), else a plain host subprocess with ``env`` is used."""
    require_loopback(pod_ip)
    ports = ports or {}
    try:
        if (spec := probe.get("httpGet")) is not None:
            return _http_probe(
                spec, _probe_host(spec.get("host"), pod_ip), _resolve_port(spec.get("port"), ports), timeout_s
            )
        if (spec := probe.get("tcpSocket")) is not None:
            return _tcp_probe(_probe_host(spec.get("host"), pod_ip), _resolve_port(spec.get("port"), ports), timeout_s)
    except ValueError as exc:
        return ProbeResult(success=False, message=str(exc))
    if (spec := probe.get("exec")) is not None:
        argv = expand_command(spec.get("command") or [], env)
        if not argv:
            return ProbeResult(success=False, message="exec probe has no command")
        runner = exec_runner or subprocess_exec_runner(env)
        try:
            code = runner(argv, timeout_s)
        except TimeoutError:
            return ProbeResult(success=False, message=f"command {list(argv)!r} timed out")
        if code == 0:
            return ProbeResult(success=True, message="")
        return ProbeResult(success=False, message=f"command {list(argv)!r} exited with {code}")
    if probe.get("grpc") is not None:
        return ProbeResult(success=False, message="grpc probes are not supported by the embedded kubelet")
    return ProbeResult(success=False, message="probe has no handler (httpGet, tcpSocket or exec)")


class ProbeState:
    """Schedule and thresholds of one probe of one container, with kube defaults.

    ``record`` returns a transition only when the outcome changes: readiness starts unready and flips between
    ``ready``/``unready``; liveness starts alive and reports ``failed`` once (the kubelet restarts the container and
    calls :meth:`reset`); startup reports ``ready`` (started) or ``failed``. Times are monotonic seconds.
    """

    __slots__ = (
        "_consecutive_failures",
        "_consecutive_successes",
        "_last_run",
        "_started_at",
        "_state",
        "failure_threshold",
        "initial_delay_s",
        "kind",
        "period_s",
        "success_threshold",
        "timeout_s",
    )

    def __init__(self, probe: Mapping[str, Any], *, kind: ProbeKind, started_at: float) -> None:
        self.kind: ProbeKind = kind
        self.initial_delay_s = float(probe.get("initialDelaySeconds") or 0)
        self.period_s = float(probe.get("periodSeconds") or 10)
        self.timeout_s = float(probe.get("timeoutSeconds") or 1)
        self.success_threshold = int(probe.get("successThreshold") or 1)
        self.failure_threshold = int(probe.get("failureThreshold") or 3)
        self.reset(started_at=started_at)

    @property
    def state(self) -> str:
        """``unready``/``ready`` (readiness), ``alive``/``failed`` (liveness), ``starting``/``ready``/``failed``."""
        return self._state

    def reset(self, *, started_at: float) -> None:
        """Start over for a (re)started container: counters, schedule and state go back to their initial values."""
        self._started_at = started_at
        self._last_run: float | None = None
        self._consecutive_successes = 0
        self._consecutive_failures = 0
        self._state: str = {"readiness": "unready", "liveness": "alive", "startup": "starting"}[self.kind]

    def due(self, now: float) -> bool:
        if self._state == "failed" or (self.kind == "startup" and self._state == "ready"):
            return False
        if now < self._started_at + self.initial_delay_s:
            return False
        return self._last_run is None or now >= self._last_run + self.period_s

    def record(self, result: ProbeResult, now: float) -> Transition | None:
        self._last_run = now
        if result.success:
            self._consecutive_successes += 1
            self._consecutive_failures = 0
        else:
            self._consecutive_failures += 1
            self._consecutive_successes = 0
        if self.kind == "readiness":
            if self._state != "ready" and self._consecutive_successes >= self.success_threshold:
                self._state = "ready"
                return "ready"
            if self._state == "ready" and self._consecutive_failures >= self.failure_threshold:
                self._state = "unready"
                return "unready"
            return None
        if self.kind == "startup" and self._state == "starting" and self._consecutive_successes >= 1:
            self._state = "ready"
            return "ready"
        if self._state != "failed" and self._consecutive_failures >= self.failure_threshold:
            self._state = "failed"
            return "failed"
        return None


__all__ = [
    "ExecRunner",
    "ProbeResult",
    "ProbeState",
    "expand_command",
    "require_loopback",
    "run_probe",
    "subprocess_exec_runner",
]
