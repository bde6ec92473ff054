"""``/exec`` on the node agent: the remote-command protocol over SPDY/3.1, as kube-apiserver speaks it to kubelets.

kube-apiserver turns a client's ``pods/exec`` (WebSocket from kubectl 1.30+, or SPDY) into an SPDY/3.1 upgrade of
``/exec/{namespace}/{pod}/{container}?command=...&input=1&output=1&error=1[&tty=1]`` on the node's kubelet
endpoint, with ``X-Stream-Protocol-Version`` offering ``v4.channel.k8s.io`` and older. Then it opens one SPDY
stream per standard stream, named by a ``streamtype`` header: ``error``, and ``stdin`` / ``stdout`` / ``stderr`` /
``resize`` as asked. Once they all exist the command starts in the container (the same
:class:`harness.embedded.runtime.ExecStream` as the embedded target's exec); stdin data frames are written as they
come and their FIN closes the command's stdin; the command's output goes out as data frames on the stdout and
stderr streams; at the end one ``metav1.Status`` (the v4 protocol: ``Success``, or the exit code in its causes) on
the error stream, then FIN on every stream. The session returns when the API server closes the connection.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from harness.embedded import spdy
from harness.embedded.remotecommand import exit_status, pump_output, start_failure
from harness.embedded.runtime import ExecStartError, ExecStream

log = logging.getLogger(__name__)

PROTOCOLS = ("v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io")
STREAMS_TIMEOUT_S = 30.0  # kubelet's default for the client to open every stream it asked for
# kubectl (client-go's WebSocket client behind kube-apiserver's stream translator) starts reading before it has
# registered its own stdout/stderr streams and discards what arrives first ("Unknown stream id 1, discarding
# message"); a real kubelet's container runtime takes tens of milliseconds to start an exec, which hides that.
# The agent starts the command this long after the API server opened every stream (seen under load in CI).
START_SETTLE_S = 0.1


def choose_protocol(offered: str) -> str | None:
    """The best remote-command protocol both sides speak (``X-Stream-Protocol-Version`` may repeat or list)."""
    wanted = [p.strip() for p in offered.split(",") if p.strip()]
    return next((p for p in PROTOCOLS if p in wanted), None)


class SpdyExecSession:
    """One exec over an upgraded connection; :meth:`run` serves it to the end."""

    def __init__(
        self,
        read_exact: Callable[[int], bytes | None],
        write: Callable[[bytes], None],
        *,
        open_exec: Callable[[], ExecStream],
        expect: set[str],
    ) -> None:
        self._read_exact = read_exact
        self._write_raw = write
        self._open_exec = open_exec
        self._expect = expect | {"error"}
        self._codec = spdy.HeaderCodec()
        self._write_lock = threading.Lock()
        self._streams: dict[str, int] = {}  # streamtype -> stream id
        self._ready = threading.Event()
        self._client_gone = threading.Event()
        self._stream: ExecStream | None = None
        self._stdin_buffer: list[bytes] = []  # stdin that arrived before the command started
        self._stdin_fin = False
        self._lock = threading.Lock()

    def _write(self, data: bytes) -> None:
        with self._write_lock:
            self._write_raw(data)

    def _send(self, data: bytes) -> bool:
        if self._client_gone.is_set():
            return False
        try:
            self._write(data)
            return True
        except OSError:
            self._client_gone.set()
            return False

    # ------------------------------------------------------------------ client frames
    def _client_loop(self) -> None:
        try:
            spdy.serve_frames(self._read_exact, self._control, self._data)
        except (spdy.SpdyError, OSError) as exc:
            log.debug("exec: the API server's SPDY stream ended: %s", exc)
        finally:
            self._client_gone.set()
            self._ready.set()
            with self._lock:
                if self._stream is not None:
                    self._stream.close_stdin()

    def _control(self, frame: spdy.Frame) -> bool:
        if frame.kind == spdy.SYN_STREAM:
            headers = spdy.syn_stream_headers(frame, self._codec)
            self._send(spdy.syn_reply(frame.stream_id, self._codec))
            kind = headers.get("streamtype", "")
            if kind not in ("error", "stdin", "stdout", "stderr", "resize"):
                self._send(spdy.rst_stream(frame.stream_id, spdy.RST_PROTOCOL_ERROR))
                return True
            self._streams[kind] = frame.stream_id
            if self._expect <= set(self._streams):
                self._ready.set()
        elif frame.kind == spdy.PING:
            self._send(spdy.control_frame(spdy.PING, frame.payload[:4]))
        elif frame.kind == spdy.GOAWAY:
            return False
        elif frame.kind == spdy.HEADERS and len(frame.payload) > 4:
            self._codec.decode(frame.payload[4:])  # keeps the header decompressor in step
        return True

    def _data(self, frame: spdy.Frame) -> None:
        if frame.stream_id == self._streams.get("stdin"):
            with self._lock:
                stream = self._stream
                if stream is None:
                    self._stdin_buffer.append(frame.payload)
                    self._stdin_fin = self._stdin_fin or frame.fin
                    return
            if frame.payload:
                stream.write_stdin(frame.payload)
            if frame.fin:
                stream.close_stdin()
        elif frame.stream_id == self._streams.get("resize") and frame.payload:
            with self._lock:
                stream = self._stream
            try:
                size = json.loads(frame.payload)
                if stream is not None:
                    stream.resize(int(size.get("Width", 0)), int(size.get("Height", 0)))
            except (ValueError, TypeError, AttributeError):
                log.debug("exec: ignoring malformed resize %r", frame.payload[:80])

    # ------------------------------------------------------------------ the command
    def run(self) -> int | None:
        """Serve the exec; the command's exit code, or None when it did not run (or the client left first)."""
        reader = threading.Thread(target=self._client_loop, name="node-exec-frames", daemon=True)
        reader.start()
        if not self._ready.wait(STREAMS_TIMEOUT_S) or self._client_gone.is_set():
            return None
        time.sleep(START_SETTLE_S)
        try:
            stream = self._open_exec()
        except ExecStartError as exc:
            self._finish(start_failure(str(exc)))
            return None
        with self._lock:
            self._stream = stream
            pending, fin = self._stdin_buffer, self._stdin_fin
            self._stdin_buffer = []
        try:
            for chunk in pending:
                if chunk:
                    stream.write_stdin(chunk)
            if fin or "stdin" not in self._streams:
                stream.close_stdin()
            pump_output(stream, self._deliver, self._client_gone)
            if self._client_gone.is_set() and stream.popen.poll() is None:
                stream.kill()
                stream.wait()
                return None
            code = stream.wait()
            self._finish(exit_status(code))
            return code
        finally:
            stream.close()
            reader.join(2.0)

    def _deliver(self, name: str, data: bytes) -> None:
        sid = self._streams.get(name)
        if sid is not None:
            self._send(spdy.data_frame(sid, data))

    def _finish(self, status: dict[str, Any]) -> None:
        error = self._streams.get("error")
        if error is not None:
            self._send(spdy.data_frame(error, json.dumps(status).encode()))
        for sid in self._streams.values():
            self._send(spdy.data_frame(sid, b"", fin=True))
