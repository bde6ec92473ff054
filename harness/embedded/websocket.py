"""Just enough WebSocket (RFC 6455) for the streaming subresources: the upgrade handshake, frames both ways.

``kubectl exec``/``cp`` and the official client's ``stream()`` speak the Kubernetes channel protocols over WebSocket
(``v5.channel.k8s.io``, ``v4.channel.k8s.io``): every binary message starts with a channel byte (0 stdin, 1 stdout,
2 stderr, 3 error/status, 4 terminal resize; v5 adds 255, the close signal ``[255, channel]``). This module knows
the wire format only; :mod:`harness.embedded.remotecommand` runs a session over it. Clients mask their frames, may
fragment messages and interleave pings (kubectl's heartbeat), so the reader handles all three.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE_SIGNAL = 255  # v5 only: [255, channel] half-closes the channel (kubectl sends it when its stdin ends)
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # kubectl sends stdin in 32 KiB messages; anything this big is a broken peer


class Reader(Protocol):
    """The upgraded connection's input (the HTTP handler's buffered ``rfile``)."""

    def read(self, size: int, /) -> bytes | None: ...


class Writer(Protocol):
    """The upgraded connection's output (the HTTP handler's ``wfile``)."""

    def write(self, data: bytes, /) -> int | None: ...

    def flush(self) -> None: ...


class ProtocolError(Exception):
    """The peer broke RFC 6455 (unmasked client frame, oversized message...); the session ends with a close."""


@dataclass(frozen=True, slots=True)
class Message:
    """One complete message (fragments joined) or one control frame."""

    opcode: int
    payload: bytes


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def choose_protocol(offered: str, supported: tuple[str, ...] = PROTOCOLS) -> str | None:
    """The first protocol of ours the client offers (ours are in preference order: v5 before v4)."""
    wanted = [p.strip() for p in offered.split(",") if p.strip()]
    return next((p for p in supported if p in wanted), None)


def frame(payload: bytes, opcode: int = OP_BINARY) -> bytes:
    """One final, unmasked frame (servers never mask)."""
    head = bytes([0x80 | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([size])
    elif size < 1 << 16:
        head += bytes([126]) + struct.pack("!H", size)
    else:
        head += bytes([127]) + struct.pack("!Q", size)
    return head + payload


def channel_message(channel: int, data: bytes) -> bytes:
    return frame(bytes([channel]) + data)


def close_frame(code: int = 1000, reason: str = "") -> bytes:
    return frame(struct.pack("!H", code) + reason.encode()[:120], OP_CLOSE)


def unmask(payload: bytes, key: bytes) -> bytes:
    """XOR with the 4-byte key, as one big-integer operation: a per-byte loop costs ~100 ms per MiB of stdin."""
    if not payload:
        return payload
    size = len(payload)
    repeated = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(size, "big")


def _read_exact(stream: Reader, size: int) -> bytes | None:
    data = stream.read(size) if size else b""
    if data is None or len(data) < size:
        return None
    return data


class FrameReader:
    """Reads client messages: joins fragments, unmasks, hands control frames over as soon as they arrive."""

    def __init__(self, stream: Reader, *, require_mask: bool = True, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._stream = stream
        self._require_mask = require_mask
        self._max_bytes = max_bytes
        self._partial: list[bytes] = []
        self._partial_opcode = 0
        self._partial_size = 0

    def read(self) -> Message | None:
        """The next message or control frame; ``None`` when the connection ends (EOF, even mid-frame)."""
        while True:
            head = _read_exact(self._stream, 2)
            if head is None:
                return None
            fin, opcode = head[0] & 0x80, head[0] & 0x0F
            if head[0] & 0x70:
                raise ProtocolError("reserved bits set without a negotiated extension")
            masked, size = head[1] & 0x80, head[1] & 0x7F
            if size == 126:
                ext = _read_exact(self._stream, 2)
                if ext is None:
                    return None
                size = struct.unpack("!H", ext)[0]
            elif size == 127:
                ext = _read_exact(self._stream, 8)
                if ext is None:
                    return None
                size = struct.unpack("!Q", ext)[0]
            if self._require_mask and not masked:
                raise ProtocolError("client frame is not masked")
            if opcode >= 0x8 and (size > 125 or not fin):
                raise ProtocolError("control frame fragmented or longer than 125 bytes")
            if self._partial_size + size > self._max_bytes:
                raise ProtocolError(f"message larger than {self._max_bytes} bytes")
            key = b""
            if masked:
                got = _read_exact(self._stream, 4)
                if got is None:
                    return None
                key = got
            raw = _read_exact(self._stream, size)
            if raw is None:
                return None
            payload = unmask(raw, key) if key else raw
            if opcode >= 0x8:
                return Message(opcode, payload)
            if opcode == OP_CONTINUATION:
                if not self._partial_opcode:
                    raise ProtocolError("continuation frame without a message to continue")
            elif self._partial_opcode:
                raise ProtocolError("new message started inside a fragmented one")
            else:
                self._partial_opcode = opcode
            self._partial.append(payload)
            self._partial_size += size
            if fin:
                message = Message(self._partial_opcode, b"".join(self._partial))
                self._partial, self._partial_opcode, self._partial_size = [], 0, 0
                return message


def handshake_headers(
    headers: Iterable[tuple[str, str]], supported: tuple[str, ...] = PROTOCOLS
) -> tuple[str, str] | None:
    """(accept key, protocol) for a valid upgrade request, else None. Header names are case-insensitive (Go
    clients send ``Sec-Websocket-Key``)."""
    lower = {name.lower(): value for name, value in headers}
    if "websocket" not in lower.get("upgrade", "").lower():
        return None
    key = lower.get("sec-websocket-key", "")
    protocol = choose_protocol(lower.get("sec-websocket-protocol", ""), supported)
    if not key or protocol is None:
        return None
    return accept_key(key), protocol


class ByteStream:
    """The binary messages of a WebSocket read as one byte stream (kubectl tunnels SPDY that way: message
    boundaries carry no meaning); pings are answered, a close frame or EOF ends the stream."""

    def __init__(self, reader: FrameReader, send: Callable[[bytes], None]) -> None:
        self._reader = reader
        self._send = send
        self._buffer = bytearray()
        self._ended = False

    def read_exact(self, size: int) -> bytes | None:
        while len(self._buffer) < size:
            if self._ended:
                return None
            message = self._reader.read()
            if message is None:
                self._ended = True
            elif message.opcode == OP_PING:
                self._send(frame(message.payload, OP_PONG))
            elif message.opcode == OP_CLOSE:
                self._send(close_frame())
                self._ended = True
            elif message.opcode == OP_BINARY:
                self._buffer += message.payload
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def write(self, data: bytes) -> None:
        """Send ``data`` as one binary message."""
        self._send(frame(data))
