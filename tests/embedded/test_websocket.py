"""WebSocket framing of the streaming subresources (harness/embedded/websocket.py) and the exec statuses."""

from __future__ import annotations

import io
import os
import struct

import pytest

from harness.embedded import websocket
from harness.embedded.remotecommand import exit_status, start_failure


def client_frame(payload: bytes, opcode: int = websocket.OP_BINARY, *, fin: bool = True, mask: bool = True) -> bytes:
    """A frame as a client sends it: masked with a random key (RFC 6455 section 5.3)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    size = len(payload)
    bit = 0x80 if mask else 0
    if size < 126:
        head += bytes([bit | size])
    elif size < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", size)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def reader(*frames: bytes, **kwargs: int) -> websocket.FrameReader:
    return websocket.FrameReader(io.BufferedReader(io.BytesIO(b"".join(frames))), **kwargs)  # type: ignore[arg-type]


def test_accept_key_matches_rfc_6455_example() -> None:
    assert websocket.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_handshake_prefers_v5_and_ignores_header_case() -> None:
    headers = [
        ("Upgrade", "websocket"),
        ("Sec-Websocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),  # Go's canonical spelling, as kubectl sends it
        ("Sec-Websocket-Protocol", "v4.channel.k8s.io, v5.channel.k8s.io"),
    ]
    assert websocket.handshake_headers(headers) == ("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "v5.channel.k8s.io")
    v4_only = [*headers[:2], ("Sec-WebSocket-Protocol", "v4.channel.k8s.io")]
    assert websocket.handshake_headers(v4_only) == ("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "v4.channel.k8s.io")
    assert websocket.handshake_headers([*headers[:2], ("Sec-WebSocket-Protocol", "base64.channel.k8s.io")]) is None
    assert websocket.handshake_headers(headers[1:]) is None  # no Upgrade: websocket


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 300_000])
def test_server_frame_lengths_round_trip(size: int) -> None:
    payload = os.urandom(size)
    got = reader(websocket.frame(payload), require_mask=False).read()
    assert got == websocket.Message(websocket.OP_BINARY, payload)


@pytest.mark.parametrize("size", [0, 3, 126, 70_000])
def test_masked_client_frames_are_unmasked(size: int) -> None:
    payload = os.urandom(size)
    assert reader(client_frame(payload)).read() == websocket.Message(websocket.OP_BINARY, payload)


def test_fragments_join_and_pings_interleave() -> None:
    frames = reader(
        client_frame(b"\x00par", fin=False),
        client_frame(b"hb", websocket.OP_PING),  # kubectl's heartbeat may arrive between fragments
        client_frame(b"t one", websocket.OP_CONTINUATION),
        client_frame(struct.pack("!H", 1000), websocket.OP_CLOSE),
    )
    assert frames.read() == websocket.Message(websocket.OP_PING, b"hb")
    assert frames.read() == websocket.Message(websocket.OP_BINARY, b"\x00part one")
    assert frames.read() == websocket.Message(websocket.OP_CLOSE, struct.pack("!H", 1000))
    assert frames.read() is None


def test_eof_mid_frame_is_end_of_connection() -> None:
    whole = client_frame(b"x" * 100)
    assert reader(whole[:50]).read() is None


@pytest.mark.parametrize(
    ("frames", "error"),
    [
        ((client_frame(b"data", mask=False),), "not masked"),
        ((client_frame(b"x" * 200, websocket.OP_PING),), "control frame"),
        ((client_frame(b"more", websocket.OP_CONTINUATION),), "continuation"),
        ((client_frame(b"a", fin=False), client_frame(b"b")), "inside a fragmented"),
        ((client_frame(b"y" * 2000),), "larger than 1024"),
    ],
)
def test_protocol_violations_are_refused(frames: tuple[bytes, ...], error: str) -> None:
    with pytest.raises(websocket.ProtocolError, match=error):
        reader(*frames, max_bytes=1024).read()


def test_unmask_matches_the_bytewise_definition() -> None:
    payload, key = os.urandom(1001), os.urandom(4)
    assert websocket.unmask(payload, key) == bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def test_channel_messages_and_close_frame() -> None:
    assert websocket.channel_message(websocket.STDERR, b"err") == b"\x82\x04\x02err"
    assert websocket.close_frame() == b"\x88\x02\x03\xe8"


def test_exit_status_is_what_kubectl_reads_the_exit_code_from() -> None:
    assert exit_status(0) == {"metadata": {}, "status": "Success"}
    failed = exit_status(3)
    assert failed["status"] == "Failure" and failed["reason"] == "NonZeroExitCode"
    assert failed["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    refused = start_failure('exec: "nosuch": executable file not found in $PATH')
    assert refused["reason"] == "InternalError" and refused["code"] == 500
    assert refused["message"].startswith("Internal error occurred: error executing command in container: exec:")
