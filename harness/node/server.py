"""The kubelet's HTTPS endpoints that kube-apiserver proxies to (``kubectl logs`` goes through here).

Served: ``/healthz``, ``/pods`` (the PodList of this node), ``/containerLogs/{namespace}/{pod}/{container}``
with the kubelet's query parameters (``follow``, ``previous``, ``tailLines``, ``limitBytes``, ``sinceSeconds``),
and the two streaming endpoints kube-apiserver upgrades to SPDY/3.1: ``/exec/{namespace}/{pod}/{container}``
(:mod:`harness.node.spdyexec`; ``kubectl exec``, ``kubectl cp``) and ``/portForward/{namespace}/{pod}``
(:class:`harness.embedded.portforward.PortForwardSession`; ``kubectl port-forward``). Not served: ``/attach`` and
``/run`` (a 400 whose body names the limit, which kubectl prints), ``/metrics`` and ``/stats`` (404).

When the API server's client CA is known (the local real control plane hands it over), every request must present
a client certificate it signed, as a kubelet with ``--client-ca-file`` requires; the server binds the node's
address only.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from harness.embedded.apierrors import ApiError
from harness.embedded.portforward import PROTOCOL as PORT_FORWARD_PROTOCOL
from harness.embedded.portforward import PodEndpoint, PortForwardSession, destination_allowed
from harness.embedded.runtime import ContainerProcess
from harness.embedded.serverthread import ServerThread
from harness.node.spdyexec import SpdyExecSession, choose_protocol

log = logging.getLogger(__name__)

NOT_SERVED_STREAMS = ("attach", "run")
NOT_SERVED = "is not served by the k8s-ai-bench node agent (logs, exec and port-forward are)"


class Kubelet(Protocol):
    """What the kubelet offers the endpoints (:class:`harness.node.containers.ContainerAccess`)."""

    def read(self, pod: dict[str, Any], container: str, query: Mapping[str, str]) -> bytes: ...

    def stream(self, pod: dict[str, Any], container: str, query: Mapping[str, str]) -> Iterator[bytes]: ...

    def running_container(self, pod: dict[str, Any], container: str) -> ContainerProcess: ...


class KubeletServer:
    """HTTPS on ``address:port`` (port 0: any free one) for one node."""

    def __init__(
        self,
        *,
        address: str,
        port: int,
        cert: Path,
        key: Path,
        client_ca: Path | None,
        logs: Kubelet,
        find_pod: Callable[[str, str], dict[str, Any] | None],
        node_pods: Callable[[], list[dict[str, Any]]],
    ) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert, key)
        if client_ca is not None:
            context.load_verify_locations(cafile=str(client_ca))
            context.verify_mode = ssl.CERT_REQUIRED
        handler = _handler(logs, find_pod, node_pods)
        server = ThreadingHTTPServer((address, port), handler)
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._serving = ServerThread(server, name="node-kubelet-server")

    @property
    def port(self) -> int:
        return self._serving.port

    def start(self) -> None:
        self._serving.start()

    def stop(self) -> None:
        self._serving.stop()


def _handler(
    logs: Kubelet,
    find_pod: Callable[[str, str], dict[str, Any] | None],
    node_pods: Callable[[], list[dict[str, Any]]],
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("kubelet server: " + format, *args)

        def _reply(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._route()

        def do_POST(self) -> None:
            self._route()

        def _route(self) -> None:
            url = urlsplit(self.path)
            parts = [unquote(p) for p in url.path.split("/") if p]
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if parts == ["healthz"]:
                self._reply(200, b"ok")
            elif parts == ["pods"]:
                body = {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": node_pods()}
                self._reply(200, json.dumps(body).encode(), "application/json")
            elif len(parts) == 4 and parts[0] == "containerLogs":
                self._logs(parts[1], parts[2], parts[3], query)
            elif len(parts) == 4 and parts[0] == "exec":
                self._exec(parts[1], parts[2], parts[3], url.query)
            elif len(parts) == 3 and parts[0] == "portForward":
                self._port_forward(parts[1], parts[2])
            elif parts and parts[0] in NOT_SERVED_STREAMS:
                self._reply(400, f"{parts[0]} {NOT_SERVED}".encode())
            else:
                self._reply(404, b"404 page not found")

        def _logs(self, namespace: str, name: str, container: str, query: dict[str, str]) -> None:
            pod = find_pod(namespace, name)
            if pod is None:
                self._reply(404, f'pod "{namespace}/{name}" is not on this node'.encode())
                return
            try:
                if query.get("follow") in ("true", "1"):
                    chunks = logs.stream(pod, container, query)
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for chunk in chunks:
                        if chunk:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                            self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self._reply(200, logs.read(pod, container, query))
            except ApiError as exc:
                self._reply(exc.code, exc.message.encode())
            except (BrokenPipeError, ConnectionResetError):
                return  # the API server closed the follow (kubectl stopped)

        # -------------------------------------------------------------- SPDY/3.1 streams
        def _upgrade(self, protocol: str) -> tuple[Callable[[int], bytes | None], Callable[[bytes], None]] | None:
            if "spdy/3.1" not in (self.headers.get("Upgrade") or "").lower():
                self._reply(400, b"Upgrade request required: this endpoint speaks SPDY/3.1")
                return None
            self.send_response(101, "Switching Protocols")
            self.send_header("Connection", "Upgrade")
            self.send_header("Upgrade", "SPDY/3.1")
            self.send_header("X-Stream-Protocol-Version", protocol)
            self.end_headers()
            self.wfile.flush()
            self.close_connection = True

            def read_exact(size: int) -> bytes | None:
                data = self.rfile.read(size)
                return data if len(data) == size else None

            def write(data: bytes) -> None:
                self.wfile.write(data)
                self.wfile.flush()

            return read_exact, write

        def _exec(self, namespace: str, name: str, container: str, raw_query: str) -> None:
            pod = find_pod(namespace, name)
            if pod is None:
                self._reply(404, f'pod "{namespace}/{name}" is not on this node'.encode())
                return
            query = parse_qs(raw_query)
            command = tuple(query.get("command", []))
            flags = {k for k in ("input", "output", "error", "tty") if query.get(k, [""])[-1] in ("1", "true")}
            protocol = choose_protocol(",".join(self.headers.get_all("X-Stream-Protocol-Version") or []))
            if not command or protocol is None:
                self._reply(400, b"exec needs a command and a remote-command protocol this node speaks (v4 and older)")
                return
            try:
                target = logs.running_container(pod, container)
            except ApiError as exc:
                self._reply(exc.code, exc.message.encode())
                return
            channels = self._upgrade(protocol)
            if channels is None:
                return
            stdin, tty = "input" in flags, "tty" in flags
            expect = {s for s, f in (("stdin", "input"), ("stdout", "output"), ("stderr", "error")) if f in flags}
            if tty:
                expect.add("resize")
            session = SpdyExecSession(
                *channels, open_exec=lambda: target.open_exec(command, stdin=stdin, tty=tty), expect=expect
            )
            session.run()

        def _port_forward(self, namespace: str, name: str) -> None:
            pod = find_pod(namespace, name)
            pod_ip = ((pod or {}).get("status") or {}).get("podIP", "")
            if pod is None or not pod_ip:
                self._reply(404, f'pod "{namespace}/{name}" is not running on this node'.encode())
                return
            if not destination_allowed(pod_ip):
                self._reply(400, f"pod IP {pod_ip} is outside 127.0.0.0/8 and 198.18.0.0/15".encode())
                return
            channels = self._upgrade(PORT_FORWARD_PROTOCOL)
            if channels is not None:
                endpoint = PodEndpoint(ip=pod_ip, name=name, uid=pod["metadata"]["uid"])
                PortForwardSession(*channels, pod=endpoint).run()

    return Handler
