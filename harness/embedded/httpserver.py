"""HTTP transport of the embedded API server: routing, bearer-token auth, Status errors, chunked watch streams.

Real HTTP/1.1 on 127.0.0.1 with keep-alive and TCP_NODELAY (without it every response stalls ~40 ms on the
Nagle/delayed-ACK interaction, see research/local-target.md). The official client and kubectl talk to it unchanged.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from harness.embedded import apierrors, discovery
from harness.embedded.apiserver import ApiServer, Request, Response, WatchStream
from harness.embedded.faults import FaultInjector
from harness.embedded.identity import ADMIN, UserInfo
from harness.embedded.store import WatchEvent

if TYPE_CHECKING:
    from harness.embedded.portforward import PodEndpoint

log = logging.getLogger(__name__)

_PUBLIC_PATHS = {"/healthz", "/readyz", "/livez"}
_VERB_BY_METHOD = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def warning_header(text: str) -> str:
    """RFC 7234 ``Warning`` value as kube writes it: code 299, agent ``-``, the text quoted (``"`` and ``\\``
    escaped); kubectl prints the text as ``Warning: <text>``."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{escaped}"'


class EmbeddedHTTPServer(ThreadingHTTPServer):
    """Thread-per-connection server; watch streams hold their thread for their lifetime."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        api: ApiServer,
        token: str,
        faults: FaultInjector,
        bookmark_interval_s: float,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.tls = tls
        self.api = api
        self.token = token
        self.faults = faults
        self.bookmark_interval_s = bookmark_interval_s
        self.stopping = threading.Event()
        super().__init__(("127.0.0.1", 0), _Handler)

    def finish_request(self, request: socket.socket, client_address: Any) -> None:  # type: ignore[override]
        """TLS handshake in the connection's own thread, so a slow client never blocks accept()."""
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        try:
            request.settimeout(10)
            secure = self.tls.wrap_socket(request, server_side=True)
            secure.settimeout(None)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake with %s failed: %s", client_address, exc)
            return
        try:
            super().finish_request(secure, client_address)
        finally:
            secure.close()

    @property
    def address(self) -> str:
        host, port = self.server_address[:2]
        return f"{host.decode() if isinstance(host, bytes) else host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: EmbeddedHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    # ------------------------------------------------------------------ plumbing
    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > 16 * 1024 * 1024:
            raise apierrors.ApiError(413, "RequestEntityTooLarge", f"Request entity too large: {length} bytes")
        return self.rfile.read(length) if length > 0 else b""

    def _send_json(
        self,
        code: int,
        body: dict[str, Any] | bytes,
        content_type: str = "application/json",
        extra_headers: dict[str, str] | None = None,
        multi_headers: dict[str, list[str]] | None = None,
    ) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for key, value in (extra_headers or {}).items():
            self.send_header(key, value)
        for key, values in (multi_headers or {}).items():
            for value in values:
                self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_error(self, error: apierrors.ApiError) -> None:
        headers = {"Retry-After": str(error.retry_after_s)} if error.retry_after_s is not None else None
        if error.code == 401:
            headers = {"WWW-Authenticate": 'Bearer realm="aibench"'}
        self._send_json(error.code, error.to_status(), extra_headers=headers)

    def _authenticate(self) -> UserInfo | None:
        """The admin (the kubeconfig's token) or the ServiceAccount of a token the target signed; None: 401."""
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        token = token.strip()
        if hmac.compare_digest(token, self.server.token):
            return ADMIN
        return self.server.api.tokens.authenticate(token)

    def _serve(self) -> None:
        try:
            body = self._read_body() if self.command in ("POST", "PUT", "PATCH", "DELETE") else b""
            url = urlsplit(self.path)
            path = url.path.rstrip("/") or "/"
            if path in _PUBLIC_PATHS:
                self._send_json(200, b"ok", "text/plain; charset=utf-8")
                return
            user = self._authenticate()
            if user is None:
                raise apierrors.unauthorized()
            query = dict(parse_qsl(url.query, keep_blank_values=True))
            injected = self.server.faults.request_error(self.command, path)
            if injected is not None:
                raise injected
            self._route(path, query, body, user)
        except apierrors.ApiError as error:
            self._send_error(error)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a bug in the server: answer 500 and keep serving
            log.exception("internal error serving %s %s", self.command, self.path)
            self._send_error(apierrors.ApiError(500, "InternalError", f"Internal error occurred: {exc}"))

    # ------------------------------------------------------------------ routing
    def _route(self, path: str, query: dict[str, str], body: bytes, user: UserInfo) -> None:
        api = self.server.api
        registry = api.registry
        parts = [p for p in path.split("/") if p]
        if path == "/version":
            self._send_json(200, api.version())
            return
        if parts == ["openapi", "v3"]:
            self._send_json(200, api.openapi_root())
            return
        if parts[:2] == ["openapi", "v3"] and len(parts) in (4, 5):
            group, version = ("", parts[3]) if parts[2] == "api" else (parts[3], parts[4] if len(parts) == 5 else "")
            openapi = api.openapi_group_version(group, version)
            if openapi is not None:
                self._send_json(200, openapi)
                return
        if parts[:1] == ["openapi"]:
            raise apierrors.ApiError(404, "NotFound", "the server could not find the requested resource")
        if parts == ["api"]:
            self._send_json(200, discovery.api_versions(self.server.address))
            return
        if parts == ["apis"]:
            self._send_json(200, discovery.api_group_list(registry))
            return
        if len(parts) >= 2 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        elif len(parts) == 2 and parts[0] == "apis":
            doc = discovery.api_group(registry, parts[1])
            if doc is None:
                raise apierrors.ApiError(404, "NotFound", "the server could not find the requested resource")
            self._send_json(200, doc)
            return
        else:
            raise apierrors.ApiError(404, "NotFound", "the server could not find the requested resource")
        if group == "" and len(rest) >= 5 and rest[0] == "namespaces" and rest[2] == "services" and rest[4] == "proxy":
            self._service_proxy(rest[1], rest[3], "/".join(rest[5:]), body)
            return
        if not rest:
            doc = discovery.resource_list(registry, group, version)
            if doc is None:
                raise apierrors.ApiError(404, "NotFound", "the server could not find the requested resource")
            self._send_json(200, doc)
            return
        watch_path = rest[0] == "watch"
        if watch_path:
            rest = rest[1:]
        namespace = ""
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise apierrors.ApiError(404, "NotFound", "the server could not find the requested resource")
        rtype = registry.lookup(group, version, rest[0])
        if rtype is None:
            raise apierrors.ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else ""
        subresource = rest[2] if len(rest) > 2 else ""
        if subresource and subresource not in rtype.subresources:
            raise apierrors.ApiError(404, "NotFound", "the server could not find the requested resource")
        if rtype.namespaced and name and not namespace and rtype.kind != "Namespace":
            raise apierrors.ApiError(404, "NotFound", "the server could not find the requested resource")
        if subresource == "exec":
            self._exec(namespace, name, url_query=self.path)
            return
        if subresource == "portforward":
            self._portforward(namespace, name)
            return
        watching = watch_path or query.get("watch") in ("true", "True", "1")
        if self.command == "GET":
            verb = "watch" if watching else "get" if name else "list"
        elif self.command == "DELETE" and not name:
            verb = "deletecollection"
        elif self.command == "POST" and name and not subresource:
            raise apierrors.method_not_allowed("create", rtype.plural)
        else:
            verb = _VERB_BY_METHOD[self.command]
        if verb in ("update", "patch", "delete") and not name:
            raise apierrors.method_not_allowed(verb, rtype.plural)
        request = Request(
            verb=verb,
            rtype=rtype,
            namespace=namespace,
            name=name,
            subresource=subresource,
            query=query,
            body=body,
            content_type=self.headers.get("Content-Type", "application/json"),
            accept=self.headers.get("Accept", "application/json"),
            user=user,
        )
        try:
            result = api.handle(request)
        except apierrors.ApiError as error:
            if verb != "watch" or error.code != 410:
                raise
            # kube answers a watch from a compacted version with 200 and one ERROR event carrying the 410 Status.
            self._start_chunked("application/json")
            self._chunk(b'{"type":"ERROR","object":%s}\n' % json.dumps(error.to_status()).encode())
            self._end_chunks()
            return
        if isinstance(result, WatchStream):
            self._stream_watch(result)
        elif isinstance(result, Response):
            body_out = result.body
            if verb == "get" and "as=Table" in request.accept and isinstance(body_out, dict) and not subresource:
                body_out = api.table_for(request, body_out)
            warnings = {"Warning": [warning_header(text) for text in result.warnings]} if result.warnings else None
            self._send_json(result.code, body_out, result.content_type, multi_headers=warnings)
        else:
            self._stream_chunks(result, "text/plain")

    def _service_proxy(self, namespace: str, service: str, path: str, body: bytes) -> None:
        from harness.embedded.serviceproxy import proxy

        if self.command not in ("GET", "POST", "HEAD"):
            raise apierrors.method_not_allowed(self.command.lower(), "services/proxy")
        answer = proxy(
            self.server.api.store,
            namespace=namespace,
            service=service,
            path=path,
            query_string=urlsplit(self.path).query,
            method=self.command,
            body=body,
            headers=dict(self.headers.items()),
        )
        self._send_json(answer.status, answer.body, answer.content_type)

    # ------------------------------------------------------------------ exec (WebSocket channel protocol)
    def _exec(self, namespace: str, name: str, url_query: str) -> None:
        from harness.embedded import websocket
        from harness.embedded.remotecommand import ExecSession, start_failure
        from harness.embedded.runtime import ExecStartError

        query = parse_qs(urlsplit(url_query).query)

        def flag(key: str) -> bool:
            return any(value in ("true", "1", "True") for value in query.get(key, []))

        command = tuple(query.get("command", []))
        container = (query.get("container") or [""])[0]
        stdin, stdout, stderr, tty = flag("stdin"), flag("stdout"), flag("stderr"), flag("tty")
        if not command:
            raise apierrors.bad_request("you must specify at least 1 command")
        if not (stdin or stdout or stderr):
            raise apierrors.bad_request("you must specify at least 1 of stdin, stdout, stderr")
        if tty and stderr:
            raise apierrors.bad_request("stderr may not be requested with a tty: the terminal merges it into stdout")
        target = self.server.api.exec_target(namespace, name, container)
        upgrade = websocket.handshake_headers(self.headers.items())
        if upgrade is None or self.command != "GET":
            raise apierrors.bad_request(
                "Upgrade request required: the embedded target serves exec over WebSocket "
                f"({', '.join(websocket.PROTOCOLS)}), not SPDY"
            )
        accept, protocol = upgrade
        self._switch_to_websocket(accept, protocol)
        try:
            stream = target.open_exec(command, stdin=stdin, tty=tty)
        except ExecStartError as exc:
            # as the kubelet does: the connection is upgraded, the failure is a Status on the error channel
            self.wfile.write(websocket.channel_message(websocket.ERROR, json.dumps(start_failure(str(exc))).encode()))
            self.wfile.write(websocket.close_frame())
            return
        session = ExecSession(
            stream,
            self.rfile,
            self.wfile,
            protocol=protocol,
            stdout=stdout,
            stderr=stderr,
            shutdown=self._shutdown_socket,
        )
        session.run()

    # ------------------------------------------------------------------ port-forward (SPDY, tunnelled or upgraded)
    def _portforward(self, namespace: str, name: str) -> None:
        from harness.embedded import portforward, websocket

        pod_ip, pod_uid = self.server.api.portforward_target(namespace, name)
        pod = portforward.PodEndpoint(ip=pod_ip, name=name, uid=pod_uid)
        channels = websocket.handshake_headers(self.headers.items(), (portforward.CHANNEL_PROTOCOL,))
        if channels is not None and self.command == "GET":
            self._portforward_channels(channels, pod)
            return
        tunnel = websocket.handshake_headers(self.headers.items(), (portforward.TUNNEL_PROTOCOL,))
        spdy_upgrade = "spdy/3.1" in (self.headers.get("Upgrade") or "").lower() and portforward.PROTOCOL in (
            self.headers.get("X-Stream-Protocol-Version") or ""
        )
        write: Callable[[bytes], object]
        if tunnel is not None and self.command == "GET":
            self._switch_to_websocket(*tunnel)
            write_lock = threading.Lock()

            def send(data: bytes) -> None:
                with write_lock:
                    self.wfile.write(data)

            stream = websocket.ByteStream(websocket.FrameReader(self.rfile), send)
            read_exact, write = stream.read_exact, stream.write
        elif spdy_upgrade:
            self.send_response(101, "Switching Protocols")
            self.send_header("Connection", "Upgrade")
            self.send_header("Upgrade", "SPDY/3.1")
            self.send_header("X-Stream-Protocol-Version", portforward.PROTOCOL)
            self.end_headers()
            self.wfile.flush()
            self.close_connection = True

            def read_exact(size: int) -> bytes | None:
                data = self.rfile.read(size)
                return data if data is not None and len(data) == size else None

            write = self.wfile.write
        else:
            raise apierrors.bad_request(
                "Upgrade request required: port-forward is served over WebSocket "
                f"({portforward.TUNNEL_PROTOCOL}) or an HTTP upgrade to SPDY/3.1 ({portforward.PROTOCOL})"
            )
        try:
            portforward.PortForwardSession(read_exact, write, pod=pod).run()
        finally:
            self._shutdown_socket()

    def _switch_to_websocket(self, accept: str, protocol: str) -> None:
        """Answer 101 with the negotiated subprotocol; the connection is the WebSocket's from here on."""
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.send_header("Sec-WebSocket-Protocol", protocol)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True

    def _portforward_channels(self, upgrade: tuple[str, str], pod: PodEndpoint) -> None:
        """The kubelet's WebSocket port-forward with ``?ports=8080,9090`` (the official Python client's)."""
        from harness.embedded import portforward, websocket

        ports: list[int] = []
        for text in parse_qs(urlsplit(self.path).query).get("ports", []):
            for item in text.split(","):
                if not item.strip().isdigit() or not 0 < int(item) < 65536:
                    raise apierrors.bad_request(f"invalid port {item!r} in query parameter ports")
                ports.append(int(item))
        if not ports:
            raise apierrors.bad_request('query parameter "ports" is required')
        self._switch_to_websocket(*upgrade)
        try:
            portforward.ChannelPortForwardSession(
                websocket.FrameReader(self.rfile), self.wfile.write, ports=ports, pod=pod
            ).run()
        finally:
            self._shutdown_socket()

    def _shutdown_socket(self) -> None:
        """Unblock a thread still reading the upgraded connection once its session has ended."""
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # ------------------------------------------------------------------ streaming
    def _start_chunked(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.flush()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _stream_chunks(self, chunks: Iterator[bytes], content_type: str) -> None:
        self._start_chunked(content_type)
        try:
            for data in chunks:
                if data:
                    self._chunk(data)
            self._end_chunks()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _stream_watch(self, stream: WatchStream) -> None:
        api = self.server.api
        faults = self.server.faults
        deadline = time.monotonic() + stream.timeout_s
        drop_at = faults.watch_drop_deadline()
        bookmark_every = self.server.bookmark_interval_s
        next_bookmark = time.monotonic() + bookmark_every
        self._start_chunked("application/json")
        try:
            event: WatchEvent | None
            for event in stream.backlog:
                self._emit(stream, event)
            if stream.initial_events_end:
                self._bookmark(api.store.resource_version, stream, initial_end=True)
            while not self.server.stopping.is_set():
                now = time.monotonic()
                horizon = min(deadline, drop_at or deadline, next_bookmark if stream.bookmarks else deadline)
                if now >= deadline or (drop_at and now >= drop_at):
                    break
                if stream.bookmarks and now >= next_bookmark:
                    self._bookmark(api.store.resource_version, stream)
                    next_bookmark = now + bookmark_every
                    continue
                try:
                    event = stream.watcher.events.get(timeout=max(0.0, min(horizon - now, 1.0)))
                except queue.Empty:
                    continue
                if event is None:
                    break
                delay = faults.watch_delay_s()
                if delay:
                    time.sleep(delay)
                self._emit(stream, event)
            self._end_chunks()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
        finally:
            api.store.unwatch(stream.watcher)

    def _emit(self, stream: WatchStream, event: WatchEvent) -> None:
        """Send one event, translating selector transitions the way kube does (MODIFIED out of scope = DELETED)."""
        now_match = stream.matches(event.obj)
        etype: str = event.type
        if etype == "MODIFIED" and event.prev is not None:
            was_match = stream.matches(event.prev)
            if was_match and not now_match:
                etype, now_match = "DELETED", True
            elif now_match and not was_match:
                etype = "ADDED"
        if not now_match:
            return
        line = b'{"type":"%s","object":%s}\n' % (etype.encode(), json.dumps(event.obj, separators=(",", ":")).encode())
        self._chunk(line)

    def _bookmark(self, rv: int, stream: WatchStream, *, initial_end: bool = False) -> None:
        if not (stream.bookmarks or initial_end):
            return
        metadata: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_end:
            metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": stream.kind, "apiVersion": stream.api_version, "metadata": metadata}
        self._chunk(b'{"type":"BOOKMARK","object":%s}\n' % json.dumps(obj).encode())
