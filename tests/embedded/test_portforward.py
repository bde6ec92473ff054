"""``kubectl port-forward`` against the embedded target (harness/embedded/portforward.py over spdy.py): the real
kubectl, through its WebSocket tunnel and through the SPDY upgrade it falls back to; and the SPDY framing."""

from __future__ import annotations

import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from harness.embedded import spdy
from harness.embedded.portforward import destination_allowed

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
needs_kubectl = pytest.mark.skipif(not os.access(KUBECTL, os.X_OK), reason="kubectl is not installed on this machine")


# ------------------------------------------------------------------------------------------------ framing
def test_dictionary_is_the_spdy3_one() -> None:
    assert len(spdy.DICTIONARY) == 1423
    assert spdy.DICTIONARY.endswith(b"charset=iso-8859-1,utf-,*,enq=0.")
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")


def test_header_blocks_round_trip_across_one_zlib_stream() -> None:
    client_side, server_side = spdy.HeaderCodec(), spdy.HeaderCodec()
    for request in ("0", "1", "2"):
        headers = {"streamtype": "data", "port": "8080", "requestid": request}
        assert server_side.decode(client_side.encode(headers)) == headers  # later blocks reuse the window


def test_frames_parse_back() -> None:
    codec = spdy.HeaderCodec()
    wire = spdy.syn_reply(5, codec) + spdy.data_frame(5, b"payload", fin=True) + spdy.rst_stream(7, 5)
    pos = 0

    def read_exact(n: int) -> bytes | None:
        nonlocal pos
        chunk = wire[pos : pos + n]
        pos += n
        return chunk if len(chunk) == n else None

    reply = spdy.read_frame(read_exact)
    assert reply is not None and reply.control and reply.kind == spdy.SYN_REPLY and reply.stream_id == 5
    data = spdy.read_frame(read_exact)
    assert data is not None and not data.control and data.stream_id == 5 and data.fin and data.payload == b"payload"
    reset = spdy.read_frame(read_exact)
    assert reset is not None and reset.kind == spdy.RST_STREAM and struct.unpack("!I", reset.payload[4:])[0] == 5
    assert spdy.read_frame(read_exact) is None


def test_other_spdy_versions_are_refused() -> None:
    frame = struct.pack("!HHI", 0x8000 | 2, spdy.PING, 4) + b"\x00\x00\x00\x01"
    with pytest.raises(spdy.SpdyError, match="version 2"):
        spdy.read_frame(lambda n: frame[:n] if n == 8 else frame[8 : 8 + n])


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.84.128.5", True),
        ("198.18.0.7", True),
        ("198.19.255.1", True),
        ("10.0.0.1", False),
        ("8.8.8.8", False),
        ("", False),
    ],
)
def test_only_loopback_and_the_pod_network_are_dialled(address: str, allowed: bool) -> None:
    assert destination_allowed(address) is allowed


# ------------------------------------------------------------------------------------------------ with kubectl
ECHO_SERVER = """\
import socket, sys, threading
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], int(sys.argv[2])))
server.listen(8)
def echo(conn):
    while data := conn.recv(65536):
        conn.sendall(data)
    conn.close()
while True:
    threading.Thread(target=echo, args=(server.accept()[0],), daemon=True).start()
"""


@pytest.fixture
def web_pod(api: client.ApiClient, ns: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A pod serving ``tmp_path`` over HTTP on its own pod IP, port 8080, and echoing TCP on port 8081."""
    (tmp_path / "blob").write_bytes(os.urandom(2 * 1024 * 1024))
    (tmp_path / "echo.py").write_text(ECHO_SERVER)
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(
        ns,
        {
            "metadata": {"name": "web"},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {
                        "name": "main",
                        "image": "python",
                        "command": [
                            "sh",
                            "-c",
                            f'python3 {tmp_path}/echo.py "$POD_IP" 8081 & '
                            f'exec python3 -m http.server 8080 --bind "$POD_IP" --directory {tmp_path}',
                        ],
                        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                    }
                ],
            },
        },
    )
    deadline = time.monotonic() + 30
    while not any(
        c.type == "Ready" and c.status == "True" for c in core.read_namespaced_pod("web", ns).status.conditions or []
    ):
        assert time.monotonic() < deadline, "web pod never became ready"
        time.sleep(0.2)
    yield "web", tmp_path


def _forward(
    kubeconfig: Path, ns: str, pod: str, remote: int, *, websockets: bool
) -> tuple[subprocess.Popen[str], int]:
    env = dict(os.environ, KUBECTL_PORT_FORWARD_WEBSOCKETS="true" if websockets else "false")
    proc = subprocess.Popen(
        [KUBECTL, f"--kubeconfig={kubeconfig}", "-n", ns, "port-forward", f"pod/{pod}", f":{remote}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(rf"Forwarding from 127\.0\.0\.1:(\d+) -> {remote}\b", line)
    if match is None:
        proc.kill()
        raise AssertionError(f"kubectl port-forward did not start: {line!r} {proc.communicate(timeout=10)}")
    return proc, int(match.group(1))


@needs_kubectl
@pytest.mark.parametrize("websockets", [True, False], ids=["websocket-tunnel", "spdy-upgrade"])
def test_port_forward_carries_bytes_both_ways(
    kubeconfig: Path, ns: str, web_pod: tuple[str, Path], websockets: bool
) -> None:
    pod, root = web_pod
    proc, port = _forward(kubeconfig, ns, pod, 8080, websockets=websockets)
    try:
        for _ in range(3):  # each request is a new forwarded connection (a new stream pair)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/blob", timeout=20) as response:
                assert response.read() == (root / "blob").read_bytes()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    # Bulk bytes from the client to the pod and back: an echo server reads everything it gets. (An upload to
    # http.server, which answers 501 without reading the body, raced: its close with unread data is a TCP reset that
    # can overtake the answer.)
    proc, port = _forward(kubeconfig, ns, pod, 8081, websockets=websockets)
    try:
        payload = os.urandom(300_000)
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            # no half-close: kubectl's port-forward ends the connection when its local side reaches EOF
            sender = threading.Thread(target=sock.sendall, args=(payload,), daemon=True)
            sender.start()
            echoed = bytearray()
            while len(echoed) < len(payload):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                echoed += chunk
            sender.join(timeout=20)
        assert bytes(echoed) == payload
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


@needs_kubectl
def test_port_forward_to_a_closed_port_reports_the_dial_error(
    kubeconfig: Path, ns: str, web_pod: tuple[str, Path]
) -> None:
    pod, _ = web_pod
    proc, port = _forward(kubeconfig, ns, pod, 9, websockets=True)
    try:
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read()
        _, err = proc.communicate(timeout=15)  # kubectl ends the session after a forwarding error, as on kube
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "error forwarding port 9 to pod web" in err and "onnection refused" in err


@needs_kubectl
def test_port_forward_to_a_pod_that_is_not_running_is_a_4xx(kubeconfig: Path, api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(
        ns,
        {
            "metadata": {"name": "done"},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "x", "command": ["true"]}]},
        },
    )
    deadline = time.monotonic() + 30
    while core.read_namespaced_pod("done", ns).status.phase != "Succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    done = subprocess.run(
        [KUBECTL, f"--kubeconfig={kubeconfig}", "-n", ns, "port-forward", "pod/done", ":80"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode != 0
    assert "pod is not running" in done.stderr


def test_python_client_port_forward_uses_the_channel_protocol(
    api: client.ApiClient, ns: str, web_pod: tuple[str, Path]
) -> None:
    """The official client's ``portforward()`` speaks v4.channel.k8s.io: data and error channel per port."""
    from kubernetes.stream import portforward

    pod, root = web_pod
    core = client.CoreV1Api(api)
    forward = portforward(core.connect_get_namespaced_pod_portforward, pod, ns, ports="8080,9")
    try:
        sock = forward.socket(8080)
        sock.settimeout(20)
        sock.sendall(b"GET /blob HTTP/1.0\r\nHost: pod\r\n\r\n")
        received = b""
        while chunk := sock.recv(1 << 20):
            received += chunk
        assert received.split(b"\r\n\r\n", 1)[1] == (root / "blob").read_bytes()
        refused = forward.socket(9)
        refused.settimeout(10)
        assert refused.recv(10) == b""  # the error channel closed it
        assert "dial tcp4" in (forward.error(9) or "") and "onnection refused" in (forward.error(9) or "")
    finally:
        forward.close()
