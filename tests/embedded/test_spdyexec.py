"""The node agent's SPDY exec session (harness.node.spdyexec), driven as kube-apiserver drives a kubelet: streams
opened with SYN_STREAM, the command's stdout and stderr back on their streams, the exit status on the error stream.
It shares the frame loop (spdy.serve_frames) with port-forward and the output pump with the WebSocket exec."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import threading
from collections.abc import Callable

from harness.embedded import spdy
from harness.embedded.runtime import ExecStream
from harness.node.spdyexec import SpdyExecSession


def _read_exact(sock: socket.socket) -> Callable[[int], bytes | None]:
    def read(n: int) -> bytes | None:
        chunks = b""
        while len(chunks) < n:
            chunk = sock.recv(n - len(chunks))
            if not chunk:
                return None
            chunks += chunk
        return chunks

    return read


def _syn_stream(stream_id: int, codec: spdy.HeaderCodec, streamtype: str) -> bytes:
    block = codec.encode({"streamtype": streamtype})
    return spdy.control_frame(spdy.SYN_STREAM, struct.pack("!IIH", stream_id, 0, 0) + block)


def _open(argv: list[str]) -> ExecStream:
    popen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert popen.stdout is not None and popen.stderr is not None
    return ExecStream(popen, stdin_fd=None, stdout_fd=popen.stdout.fileno(), stderr_fd=popen.stderr.fileno(), tty=False)


def _exec(argv: list[str]) -> tuple[int | None, dict[int, bytes], dict[str, object]]:
    client, server = socket.socketpair()
    codec = spdy.HeaderCodec()
    session = SpdyExecSession(
        _read_exact(server), server.sendall, open_exec=lambda: _open(argv), expect={"stdout", "stderr"}
    )
    result: list[int | None] = []
    worker = threading.Thread(target=lambda: result.append(session.run()), daemon=True)
    worker.start()
    client.sendall(_syn_stream(1, codec, "error") + _syn_stream(3, codec, "stdout") + _syn_stream(5, codec, "stderr"))
    client.settimeout(10)
    read = _read_exact(client)
    data: dict[int, bytes] = {1: b"", 3: b"", 5: b""}
    finished: set[int] = set()
    while finished != {1, 3, 5}:
        frame = spdy.read_frame(read)
        assert frame is not None, "the session closed before every stream finished"
        if frame.control:
            assert frame.kind == spdy.SYN_REPLY
            continue
        data[frame.stream_id] += frame.payload
        if frame.fin:
            finished.add(frame.stream_id)
    client.close()
    worker.join(10)
    server.close()
    return result[0], data, json.loads(data[1])


def test_exec_streams_output_and_status() -> None:
    code, data, status = _exec(["sh", "-c", "echo out; echo err >&2"])
    assert code == 0
    assert data[3] == b"out\n" and data[5] == b"err\n"
    assert status["status"] == "Success"


def test_exec_reports_a_failing_exit_code() -> None:
    code, _, status = _exec(["sh", "-c", "exit 3"])
    assert code == 3
    assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode"
    causes = status["details"]["causes"]  # type: ignore[index]
    assert causes == [{"reason": "ExitCode", "message": "3"}]
