"""Tests for kubelet probes against real servers on 127.0.0.x (never anything outside loopback)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.embedded.probes import ProbeResult, ProbeState, expand_command, run_probe

POD_IP = "127.0.0.23"
OK = ProbeResult(success=True, message="")
FAIL = ProbeResult(success=False, message="nope")


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/healthz":
            status = 200
        elif self.path == "/moved":
            status = 301
        elif self.path == "/header":
            status = 200 if self.headers.get("X-Probe") == "yes" and "kube-probe" in self.headers["User-Agent"] else 400
        else:
            status = 500
        body = b"broken" if status >= 400 else b"ok"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def http_port() -> Iterator[int]:
    server = ThreadingHTTPServer((POD_IP, 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((POD_IP, 0))
        return sock.getsockname()[1]


def _probe(probe: dict, **kwargs: object) -> ProbeResult:
    values: dict = {"pod_ip": POD_IP, "env": {}, "exec_runner": None, "timeout_s": 2.0}
    values.update(kwargs)
    return run_probe(probe, **values)


def test_http_get_status_ranges(http_port: int) -> None:
    assert _probe({"httpGet": {"path": "/healthz", "port": http_port}}).success
    assert _probe({"httpGet": {"path": "/moved", "port": http_port}}).success
    bad = _probe({"httpGet": {"path": "/fail", "port": http_port}})
    assert not bad.success and bad.message == "HTTP probe failed with statuscode: 500: broken"


def test_http_get_named_port_and_headers(http_port: int) -> None:
    probe = {"httpGet": {"path": "/header", "port": "http", "httpHeaders": [{"name": "X-Probe", "value": "yes"}]}}
    assert _probe(probe, ports={"http": http_port}).success
    missing = _probe({"httpGet": {"path": "/", "port": "metrics"}}, ports={"http": http_port})
    assert not missing.success and "metrics" in missing.message


def test_http_get_connection_refused() -> None:
    port = _free_port()
    result = _probe({"httpGet": {"path": "/healthz", "port": port}})
    assert not result.success
    assert f"dial tcp {POD_IP}:{port}: connect: connection refused" in result.message


def test_tcp_socket(http_port: int) -> None:
    assert _probe({"tcpSocket": {"port": http_port}}).success
    port = _free_port()
    refused = _probe({"tcpSocket": {"port": port}})
    assert not refused.success and refused.message == f"dial tcp {POD_IP}:{port}: connect: connection refused"


def test_exec_probe_default_runner() -> None:
    env = {"FLAG": "on", "PATH": "/usr/bin:/bin"}
    assert _probe({"exec": {"command": ["sh", "-c", 'test "$FLAG" = on']}}, env=env).success
    assert not _probe({"exec": {"command": ["sh", "-c", 'test "$FLAG" = off']}}, env=env).success
    failed = _probe({"exec": {"command": ["false"]}}, env={"PATH": "/usr/bin:/bin"})
    assert not failed.success and "exited with 1" in failed.message
    slow = _probe({"exec": {"command": ["sleep", "5"]}}, env={"PATH": "/usr/bin:/bin"}, timeout_s=0.2)
    assert not slow.success and "timed out" in slow.message
    assert not _probe({"exec": {"command": ["no-such-probe-cmd"]}}, env={"PATH": "/usr/bin:/bin"}).success


def test_exec_probe_custom_runner_and_expansion() -> None:
    seen: list[tuple[tuple[str, ...], float]] = []

    def runner(argv: tuple[str, ...], timeout_s: float) -> int:
        seen.append((argv, timeout_s))
        return 0

    assert _probe(
        {"exec": {"command": ["check", "$(PORT)", "$$(PORT)", "$(UNSET)"]}}, env={"PORT": "80"}, exec_runner=runner
    ).success
    assert seen == [(("check", "80", "$(PORT)", "$(UNSET)"), 2.0)]
    assert expand_command(["a$(X)b"], {"X": "-"}) == ("a-b",)


def test_only_loopback_is_contacted() -> None:
    with pytest.raises(ValueError, match="only loopback"):
        _probe({"tcpSocket": {"port": 80}}, pod_ip="10.0.0.1")
    with pytest.raises(ValueError, match="not an IP address"):
        _probe({"tcpSocket": {"port": 80}}, pod_ip="example.com")
    refused = _probe({"httpGet": {"host": "192.0.2.1", "port": 80}})
    assert not refused.success and "only loopback" in refused.message
    assert not _probe({"grpc": {"port": 80}}).success


def test_ipv6_loopback_allowed() -> None:
    try:
        server = socket.socket(socket.AF_INET6)
        server.bind(("::1", 0))
    except OSError:
        pytest.skip("IPv6 loopback ::1 is not configured on this host")
    with server:
        server.listen()
        assert _probe({"tcpSocket": {"port": server.getsockname()[1]}}, pod_ip="::1").success


def test_probe_state_defaults_and_schedule() -> None:
    state = ProbeState({}, kind="readiness", started_at=100.0)
    assert (state.period_s, state.timeout_s, state.success_threshold, state.failure_threshold) == (10, 1, 1, 3)
    delayed = ProbeState({"initialDelaySeconds": 5, "periodSeconds": 2}, kind="readiness", started_at=100.0)
    assert not delayed.due(104.9)
    assert delayed.due(105.0)
    delayed.record(OK, 105.0)
    assert not delayed.due(106.0)
    assert delayed.due(107.0)


def test_readiness_transitions() -> None:
    state = ProbeState({"successThreshold": 2, "failureThreshold": 2}, kind="readiness", started_at=0.0)
    assert state.record(FAIL, 1) is None  # starts unready: no transition
    assert state.record(OK, 2) is None
    assert state.record(OK, 3) == "ready"
    assert state.record(OK, 4) is None
    assert state.record(FAIL, 5) is None
    assert state.record(FAIL, 6) == "unready"
    assert state.record(FAIL, 7) is None


def test_liveness_and_startup_transitions() -> None:
    live = ProbeState({"failureThreshold": 2}, kind="liveness", started_at=0.0)
    assert live.record(FAIL, 1) is None
    assert live.record(OK, 2) is None
    assert live.record(FAIL, 3) is None
    assert live.record(FAIL, 4) == "failed"
    assert not live.due(100)
    live.reset(started_at=200.0)
    assert live.state == "alive" and live.due(200.0)
    startup = ProbeState({}, kind="startup", started_at=0.0)
    assert startup.record(FAIL, 1) is None
    assert startup.record(OK, 2) == "ready"
    assert not startup.due(1000)
