"""Just enough WebSocket (RFC 6455) for the exec subresource: the upgrade handshake and server-sent frames.

``kubectl exec`` and the official client's ``stream()`` speak the Kubernetes channel protocols over WebSocket
(``v5.channel.k8s.io``, ``v4.channel.k8s.io``): every binary message starts with a channel byte (1 stdout,
2 stderr, 3 error/status). The embedded target runs the command to completion and sends its output, then the
exit status on channel 3, then a close frame; stdin and terminal resizing are not supported.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Mapping
from typing import Any, BinaryIO

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDOUT, STDERR, ERROR = 1, 2, 3
_OP_BINARY, _OP_CLOSE = 0x2, 0x8


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def choose_protocol(offered: str) -> str | None:
    wanted = [p.strip() for p in offered.split(",") if p.strip()]
    return next((p for p in PROTOCOLS if p in wanted), None)


def frame(payload: bytes, opcode: int = _OP_BINARY) -> bytes:
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


def close_frame(code: int = 1000) -> bytes:
    return frame(struct.pack("!H", code), _OP_CLOSE)


def exit_status(exit_code: int) -> dict[str, Any]:
    """The metav1.Status a kubelet sends on the error channel when the command ends."""
    if exit_code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command, exit status {exit_code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]},
    }


def send_exec_result(stream: BinaryIO, output: bytes, exit_code: int, *, chunk: int = 32 * 1024) -> None:
    for start in range(0, len(output), chunk):
        stream.write(channel_message(STDOUT, output[start : start + chunk]))
    stream.write(channel_message(ERROR, json.dumps(exit_status(exit_code)).encode()))
    stream.write(close_frame())
    stream.flush()


def handshake_headers(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """(accept key, protocol) for a valid upgrade request, else None."""
    if "websocket" not in headers.get("Upgrade", "").lower():
        return None
    key = headers.get("Sec-WebSocket-Key", "")
    protocol = choose_protocol(headers.get("Sec-WebSocket-Protocol", ""))
    if not key or protocol is None:
        return None
    return accept_key(key), protocol
