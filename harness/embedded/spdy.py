"""Just enough SPDY/3.1 for ``kubectl port-forward``: frames, and the zlib-compressed header blocks.

kubectl (1.31+) opens port-forward as a WebSocket whose subprotocol is ``SPDY/3.1+portforward.k8s.io`` and tunnels
a SPDY/3.1 session through it (the WebSocket messages are a plain byte stream); older clients, and the fallback,
upgrade the HTTP connection to SPDY/3.1 directly. Either way the server side is the same: the client opens streams
with SYN_STREAM, the server answers SYN_REPLY, data flows in DATA frames, FIN half-closes a stream.

Header blocks are compressed with one zlib stream per direction for the whole session, primed with the dictionary
that the SPDY/3 draft defines (section 2.6.10.1): length-prefixed common header names, then a run of status lines,
dates and media types. It is built here from those strings; a wrong dictionary fails the first inflate (zlib checks
the dictionary's Adler-32). Flow control (WINDOW_UPDATE) is not enforced in either direction, as the Go client
(moby/spdystream) does not do it either.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_PROTOCOL_ERROR, RST_REFUSED_STREAM, RST_CANCEL, RST_INTERNAL_ERROR = 1, 3, 5, 6
MAX_FRAME_BYTES = 1 << 24  # the 24-bit length field
DATA_CHUNK = 32 * 1024

_WORDS = [
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
]
_WORDS_AFTER_STATUS = ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = b"".join(struct.pack("!I", len(w)) + w.encode() for w in (*_WORDS, *_WORDS_AFTER_STATUS)) + _TAIL.encode()


class SpdyError(Exception):
    """The peer sent something this server cannot parse; the session ends with GOAWAY."""


@dataclass(frozen=True, slots=True)
class Frame:
    """A control frame (``kind`` = frame type) or a data frame (``kind`` = 0, ``stream_id`` set)."""

    control: bool
    kind: int
    flags: int
    stream_id: int
    payload: bytes

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


def read_frame(read_exact: Callable[[int], bytes | None]) -> Frame | None:
    """The next frame, or None at the end of the byte stream."""
    head = read_exact(8)
    if head is None:
        return None
    first, second = struct.unpack("!II", head)
    flags, length = second >> 24, second & 0xFFFFFF
    payload = read_exact(length) if length else b""
    if payload is None:
        return None
    if first & 0x80000000:
        version, kind = (first >> 16) & 0x7FFF, first & 0xFFFF
        if version != VERSION:
            raise SpdyError(f"SPDY version {version} is not supported (only 3)")
        stream_id = struct.unpack("!I", payload[:4])[0] & 0x7FFFFFFF if len(payload) >= 4 else 0
        return Frame(control=True, kind=kind, flags=flags, stream_id=stream_id, payload=payload)
    return Frame(control=False, kind=0, flags=flags, stream_id=first & 0x7FFFFFFF, payload=payload)


def serve_frames(
    read_exact: Callable[[int], bytes | None], control: Callable[[Frame], bool], data: Callable[[Frame], None]
) -> None:
    """The session loop both SPDY servers (port-forward, the node's exec) run: control frames go to ``control``
    (False ends the session), data frames to ``data``, until the peer closes. SpdyError and OSError propagate."""
    while True:
        frame = read_frame(read_exact)
        if frame is None:
            return
        if not frame.control:
            data(frame)
        elif not control(frame):
            return


def control_frame(kind: int, payload: bytes, flags: int = 0) -> bytes:
    return struct.pack("!HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload


def data_frame(stream_id: int, data: bytes, *, fin: bool = False) -> bytes:
    if len(data) >= MAX_FRAME_BYTES:
        raise ValueError("data frame too large")
    return struct.pack("!II", stream_id & 0x7FFFFFFF, ((FLAG_FIN if fin else 0) << 24) | len(data)) + data


def rst_stream(stream_id: int, status: int) -> bytes:
    return control_frame(RST_STREAM, struct.pack("!II", stream_id & 0x7FFFFFFF, status))


def goaway(last_stream_id: int, status: int = 0) -> bytes:
    return control_frame(GOAWAY, struct.pack("!II", last_stream_id & 0x7FFFFFFF, status))


class HeaderCodec:
    """The session's two zlib streams: one inflating what the peer sends, one deflating what we send."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(
            zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY
        )

    def decode(self, block: bytes) -> dict[str, str]:
        """Name -> value (several values of one name are NUL-joined on the wire; the first is kept)."""
        try:
            raw = self._inflate.decompress(block)
        except zlib.error as exc:
            raise SpdyError(f"header block does not inflate: {exc}") from exc
        if len(raw) < 4:
            raise SpdyError("header block shorter than its pair count")
        count = struct.unpack("!I", raw[:4])[0]
        pos, headers = 4, {}
        for _ in range(count):
            name, pos = _string(raw, pos)
            value, pos = _string(raw, pos)
            headers[name.decode("latin-1").lower()] = value.split(b"\x00")[0].decode("latin-1")
        return headers

    def encode(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack("!I", len(headers))
        for name, value in headers.items():
            for text in (name.lower().encode("latin-1"), value.encode("latin-1")):
                raw += struct.pack("!I", len(text)) + text
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)


def _string(raw: bytes, pos: int) -> tuple[bytes, int]:
    if pos + 4 > len(raw):
        raise SpdyError("truncated header block")
    size = struct.unpack("!I", raw[pos : pos + 4])[0]
    end = pos + 4 + size
    if end > len(raw):
        raise SpdyError("truncated header block")
    return raw[pos + 4 : end], end


def syn_stream_headers(frame: Frame, codec: HeaderCodec) -> dict[str, str]:
    """The headers of a SYN_STREAM (stream id 4 bytes, associated id 4, priority and slot 2, then the block)."""
    if len(frame.payload) < 10:
        raise SpdyError("SYN_STREAM too short")
    return codec.decode(frame.payload[10:])


def syn_reply(stream_id: int, codec: HeaderCodec, headers: dict[str, str] | None = None) -> bytes:
    return control_frame(SYN_REPLY, struct.pack("!I", stream_id & 0x7FFFFFFF) + codec.encode(headers or {}))
