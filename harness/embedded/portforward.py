"""One ``pods/portforward`` session: kube's port-forward protocol (``portforward.k8s.io``) over SPDY/3.1.

The client opens, per forwarded TCP connection, two streams that share a ``requestid`` header: an *error* stream
(``streamtype: error``) and a *data* stream (``streamtype: data``), both naming the pod ``port``. Once both exist
the server connects to the pod's address on that port and copies bytes between the data stream and the socket;
a failure is written as text on the error stream, which kubectl prints (``an error occurred forwarding ...``).
A FIN from the client half-closes the socket (``shutdown(SHUT_WR)``), the socket's EOF becomes a FIN.

As the kubelet does inside the pod's network namespace, the connection goes to the pod: here its pod IP, which is
a loopback alias or an address of the pod network (198.18.0.0/15). Any other destination is refused, so that no
packet leaves this machine. The session runs over any byte stream: the WebSocket tunnel kubectl uses first, or an
HTTP connection upgraded to SPDY/3.1. :class:`ChannelPortForwardSession` serves the kubelet's older WebSocket
protocol (``v4.channel.k8s.io`` channel pairs), which the official Python client speaks.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.embedded import spdy, websocket

log = logging.getLogger(__name__)

PROTOCOL = "portforward.k8s.io"
TUNNEL_PROTOCOL = f"SPDY/3.1+{PROTOCOL}"
CONNECT_TIMEOUT_S = 5.0
ALLOWED_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("198.18.0.0/15"))


def destination_allowed(address: str) -> bool:
    """Only loopback and the project's pod network are ever dialled (network safety)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in ALLOWED_NETWORKS)


@dataclass(slots=True)
class _Forward:
    """The two streams of one forwarded connection and, once both exist, its socket to the pod."""

    port: int
    error_stream: int | None = None
    data_stream: int | None = None
    sock: socket.socket | None = None
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class DialError(Exception):
    """The pod's port could not be connected to; the message is the text kubectl prints for it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PodEndpoint:
    """The pod a session forwards to: its IP, checked on construction (ValueError for an address this machine must
    not dial), and its name and uid for the error messages kubectl shows."""

    ip: str
    name: str
    uid: str

    def __post_init__(self) -> None:
        if not destination_allowed(self.ip):
            raise ValueError(f"pod IP {self.ip} is outside 127.0.0.0/8 and 198.18.0.0/15")

    def dial(self, port: int) -> socket.socket:
        """A blocking connection to ``port`` on the pod, as the kubelet opens one per forwarded connection."""
        try:
            sock = socket.create_connection((self.ip, port), timeout=CONNECT_TIMEOUT_S)
        except OSError as exc:
            raise DialError(
                f"error forwarding port {port} to pod {self.name}, uid {self.uid}: "
                f"dial tcp4 {self.ip}:{port}: {exc.strerror or exc}"
            ) from exc
        sock.settimeout(None)
        return sock


class PortForwardSession:
    """Serves one SPDY session; :meth:`run` returns when the client goes away."""

    def __init__(
        self,
        read_exact: Callable[[int], bytes | None],
        write: Callable[[bytes], object],  # a file's write (its count is ignored) or a frame sender
        *,
        pod: PodEndpoint,
    ) -> None:
        self._read_exact = read_exact
        self._write_raw = write
        self._pod = pod
        self._codec = spdy.HeaderCodec()
        self._write_lock = threading.Lock()
        self._forwards: dict[str, _Forward] = {}
        self._by_stream: dict[int, _Forward] = {}
        self._last_stream = 0
        self.connections = 0

    def _write(self, data: bytes) -> None:
        with self._write_lock:
            self._write_raw(data)

    def run(self) -> None:
        try:
            spdy.serve_frames(self._read_exact, self._control, self._data)
        except spdy.SpdyError as exc:
            log.debug("port-forward: protocol error: %s", exc)
            self._send_quietly(spdy.goaway(self._last_stream, 1))
        except OSError:
            pass
        finally:
            for forward in list(self._forwards.values()):
                self._close(forward)

    def _send_quietly(self, data: bytes) -> None:
        try:
            self._write(data)
        except OSError:
            pass

    # ------------------------------------------------------------------ frames from the client
    def _control(self, frame: spdy.Frame) -> bool:
        if frame.kind == spdy.SYN_STREAM:
            self._open(frame)
        elif frame.kind == spdy.PING:
            self._write(spdy.control_frame(spdy.PING, frame.payload[:4]))
        elif frame.kind == spdy.RST_STREAM:
            forward = self._by_stream.get(frame.stream_id)
            if forward is not None:
                self._close(forward)
        elif frame.kind == spdy.GOAWAY:
            return False
        elif frame.kind == spdy.HEADERS and len(frame.payload) > 4:
            self._codec.decode(frame.payload[4:])  # keeps the inflate stream in step; nothing to act on
        return True  # SETTINGS, WINDOW_UPDATE: nothing to do (no flow control, see spdy.py)

    def _open(self, frame: spdy.Frame) -> None:
        headers = spdy.syn_stream_headers(frame, self._codec)
        sid = frame.stream_id
        self._last_stream = max(self._last_stream, sid)
        self._write(spdy.syn_reply(sid, self._codec))
        kind, request = headers.get("streamtype", ""), headers.get("requestid", "")
        try:
            port = int(headers.get("port", ""))
        except ValueError:
            self._write(spdy.rst_stream(sid, spdy.RST_PROTOCOL_ERROR))
            return
        forward = self._forwards.setdefault(request, _Forward(port=port))
        self._by_stream[sid] = forward
        if kind == "error":
            forward.error_stream = sid
        elif kind == "data":
            forward.data_stream = sid
        else:
            self._write(spdy.rst_stream(sid, spdy.RST_PROTOCOL_ERROR))
            return
        if forward.error_stream is not None and forward.data_stream is not None and forward.sock is None:
            self._connect(request, forward)

    def _connect(self, request: str, forward: _Forward) -> None:
        assert forward.error_stream is not None and forward.data_stream is not None
        try:
            sock = self._pod.dial(forward.port)
        except DialError as exc:
            self._write(spdy.data_frame(forward.error_stream, str(exc).encode()))
            self._write(spdy.data_frame(forward.error_stream, b"", fin=True))
            self._write(spdy.data_frame(forward.data_stream, b"", fin=True))
            forward.closed = True
            return
        forward.sock = sock
        self.connections += 1
        threading.Thread(target=self._pump, args=(forward,), name=f"portforward-{request}", daemon=True).start()

    def _data(self, frame: spdy.Frame) -> None:
        forward = self._by_stream.get(frame.stream_id)
        if forward is None or frame.stream_id != forward.data_stream or forward.sock is None:
            return  # the error stream carries nothing from the client; unknown streams are ignored
        try:
            if frame.payload:
                forward.sock.sendall(frame.payload)
            if frame.fin:
                forward.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(forward)

    # ------------------------------------------------------------------ pod -> client
    def _pump(self, forward: _Forward) -> None:
        assert forward.sock is not None and forward.data_stream is not None
        try:
            while True:
                data = forward.sock.recv(spdy.DATA_CHUNK)
                if not data:
                    break
                self._write(spdy.data_frame(forward.data_stream, data))
            self._write(spdy.data_frame(forward.data_stream, b"", fin=True))
        except OSError:
            self._send_quietly(spdy.rst_stream(forward.data_stream, spdy.RST_CANCEL))
        finally:
            self._close(forward)

    def _close(self, forward: _Forward) -> None:
        with forward.lock:
            if forward.closed:
                return
            forward.closed = True
        if forward.sock is not None:
            try:
                forward.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            forward.sock.close()


CHANNEL_PROTOCOL = "v4.channel.k8s.io"


class ChannelPortForwardSession:
    """The kubelet's WebSocket port-forward (``v4.channel.k8s.io``, what the official Python client speaks): one
    TCP connection per requested port for the life of the WebSocket; port *i* uses channel ``2i`` for data and
    ``2i+1`` for errors, and each channel first carries the port number (2 bytes, little-endian)."""

    def __init__(
        self,
        reader: websocket.FrameReader,
        send: Callable[[bytes], object],
        *,
        ports: list[int],
        pod: PodEndpoint,
    ) -> None:
        self._reader = reader
        self._send_raw = send
        self._send_lock = threading.Lock()
        self._ports = ports
        self._pod = pod
        self._socks: list[socket.socket | None] = [None] * len(ports)
        self._remaining = len(ports)
        self._done = threading.Event()

    def _send(self, channel: int, data: bytes) -> None:
        with self._send_lock:
            self._send_raw(websocket.channel_message(channel, data))

    def run(self) -> None:
        try:
            for index, port in enumerate(self._ports):
                prefix = port.to_bytes(2, "little")
                self._send(2 * index, prefix)
                self._send(2 * index + 1, prefix)
                try:
                    sock = self._pod.dial(port)
                except DialError as exc:
                    self._send(2 * index + 1, str(exc).encode())
                    self._finished()
                    continue
                self._socks[index] = sock
                threading.Thread(target=self._pump, args=(index, sock), daemon=True).start()
            self._client_loop()
        except OSError:
            pass
        finally:
            for opened in self._socks:
                if opened is not None:
                    opened.close()

    def _finished(self) -> None:
        with self._send_lock:
            self._remaining -= 1
            if self._remaining == 0:
                self._send_raw(websocket.close_frame())
                self._done.set()

    def _client_loop(self) -> None:
        while not self._done.is_set():
            message = self._reader.read()
            if message is None or message.opcode == websocket.OP_CLOSE:
                return
            if message.opcode == websocket.OP_PING:
                with self._send_lock:
                    self._send_raw(websocket.frame(message.payload, websocket.OP_PONG))
                continue
            if message.opcode != websocket.OP_BINARY or not message.payload:
                continue
            channel, data = message.payload[0], message.payload[1:]
            index = channel // 2
            if channel % 2 or index >= len(self._socks) or self._socks[index] is None or not data:
                continue
            sock = self._socks[index]
            assert sock is not None
            try:
                sock.sendall(data)
            except OSError:
                continue

    def _pump(self, index: int, sock: socket.socket) -> None:
        try:
            while data := sock.recv(spdy.DATA_CHUNK):
                self._send(2 * index, data)
        except OSError:
            pass
        finally:
            self._finished()
