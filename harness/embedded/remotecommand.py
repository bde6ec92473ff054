"""One ``pods/exec`` session: the Kubernetes remote-command protocol over WebSocket, streamed both ways.

What kubectl (and ``kubectl cp``, which is ``tar`` over exec) expects of the server, as the kubelet does it:
stdin arrives on channel 0 as it is typed or piped and is written to the command at once; stdout (channel 1) and
stderr (channel 2) are sent as the command writes them, never buffered to the end and never merged, so
``kubectl exec ... 2>/dev/null`` and ``> f`` keep them apart; ``v5.channel.k8s.io`` adds the close signal
``[255, 0]`` with which kubectl says its stdin ended (without it ``tar -x`` would wait forever); when the command
ends, one ``metav1.Status`` on channel 3 carries its exit code (kubectl prints ``command terminated with exit code
N`` and exits N), then a close frame. With a terminal (``-t``) the command runs on a pseudo-terminal: its output
comes on channel 1 only and channel 4 carries window sizes.

The session is independent of the HTTP layer: it gets the upgraded connection's two byte streams, so the node
agent's own exec endpoint can serve it the same way.
"""

from __future__ import annotations

import json
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from typing import Any

from harness.embedded import websocket
from harness.embedded.runtime import ExecStream

log = logging.getLogger(__name__)

READ_CHUNK = 32 * 1024
# After the command exits, how long output still held open by a background child it left is drained before the
# status is sent (kube would keep the child in the container; the stream ends either way).
DRAIN_AFTER_EXIT_S = 1.0
CLIENT_CLOSE_WAIT_S = 2.0


def pump_output(stream: ExecStream, deliver: Callable[[str, bytes], None], client_gone: threading.Event) -> None:
    """Forward a command's output as ``deliver("stdout" | "stderr", data)`` until both streams end, or shortly
    after the command exits (a background child may hold them open), or the client leaves. One loop for both
    exec transports (WebSocket here, SPDY on the node agent)."""
    fds: dict[int, str] = {stream.stdout_fd: "stdout"}
    if stream.stderr_fd is not None:
        fds[stream.stderr_fd] = "stderr"
    exited_at: float | None = None
    while fds and not client_gone.is_set():
        if exited_at is None and stream.popen.poll() is not None:
            exited_at = time.monotonic()
        if exited_at is not None and time.monotonic() - exited_at > DRAIN_AFTER_EXIT_S:
            return
        ready, _, _ = select.select(list(fds), [], [], 0.1 if exited_at is not None else 0.5)
        for fd in ready:
            try:
                data = os.read(fd, READ_CHUNK)
            except OSError:  # EIO: the terminal's last writer closed it
                data = b""
            if not data:
                del fds[fd]
                continue
            deliver(fds[fd], data)


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


def start_failure(message: str) -> dict[str, Any]:
    """The Status for a command that could not start (kubelet: ``NewInternalError``; kubectl prints the message)."""
    text = f"error executing command in container: {message}"
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"Internal error occurred: {text}",
        "reason": "InternalError",
        "details": {"causes": [{"message": text}]},
        "code": 500,
    }


class ExecSession:
    """Pumps one exec: a reader thread for client frames, the calling thread for the command's output."""

    def __init__(
        self,
        stream: ExecStream,
        rfile: websocket.Reader,
        wfile: websocket.Writer,
        *,
        protocol: str,
        stdout: bool = True,
        stderr: bool = True,
        shutdown: Callable[[], None] = lambda: None,
    ) -> None:
        self._stream = stream
        self._reader = websocket.FrameReader(rfile)
        self._wfile = wfile
        self._close_signal = protocol.startswith("v5.")
        self._want = {websocket.STDOUT: stdout, websocket.STDERR: stderr}
        self._shutdown = shutdown
        self._write_lock = threading.Lock()
        self._client_gone = threading.Event()
        self._closing = threading.Event()
        self.bytes_in = 0
        self.bytes_out = 0

    # ------------------------------------------------------------------ sending
    def _send(self, data: bytes) -> bool:
        if self._client_gone.is_set():
            return False
        with self._write_lock:
            try:
                self._wfile.write(data)
                self._wfile.flush()
            except OSError:
                self._client_gone.set()
                return False
        return True

    # ------------------------------------------------------------------ client -> command
    def _client_loop(self) -> None:
        try:
            while True:
                message = self._reader.read()
                if message is None:
                    break
                if message.opcode == websocket.OP_PING:
                    self._send(websocket.frame(message.payload, websocket.OP_PONG))
                    continue
                if message.opcode == websocket.OP_CLOSE:
                    if not self._closing.is_set():
                        self._send(websocket.close_frame())
                    break
                if message.opcode != websocket.OP_BINARY or not message.payload:
                    continue  # pongs, and text frames (the base64 protocols, which are not offered)
                self._on_channel(message.payload[0], message.payload[1:])
        except websocket.ProtocolError as exc:
            log.debug("exec client broke the protocol: %s", exc)
            self._send(websocket.close_frame(1002, str(exc)))
        except OSError:
            pass
        finally:
            self._client_gone.set()
            self._stream.close_stdin()

    def _on_channel(self, channel: int, data: bytes) -> None:
        if channel == websocket.STDIN:
            self.bytes_in += len(data)
            if data and not self._stream.write_stdin(data):
                log.debug("exec stdin dropped: the command closed its stdin")
        elif channel == websocket.RESIZE:
            try:
                size = json.loads(data)
                self._stream.resize(int(size.get("Width", 0)), int(size.get("Height", 0)))
            except (ValueError, TypeError, AttributeError):
                log.debug("exec: ignoring malformed resize %r", data[:80])
        elif channel == websocket.CLOSE_SIGNAL and self._close_signal and data[:1] == bytes([websocket.STDIN]):
            self._stream.close_stdin()

    # ------------------------------------------------------------------ command -> client
    def _deliver(self, name: str, data: bytes) -> None:
        channel = websocket.STDOUT if name == "stdout" else websocket.STDERR
        if self._want[channel]:
            self.bytes_out += len(data)
            self._send(websocket.channel_message(channel, data))

    def run(self) -> int | None:
        """Serve the session to its end; the command's exit code, or None when the client went away first."""
        reader = threading.Thread(target=self._client_loop, name="exec-stdin", daemon=True)
        reader.start()
        try:
            pump_output(self._stream, self._deliver, self._client_gone)
            if self._client_gone.is_set() and self._stream.popen.poll() is None:
                self._stream.kill()  # the client left mid-command: nothing will read its output
                self._stream.wait()
                return None
            code = self._stream.wait()
            self._closing.set()
            self._send(websocket.channel_message(websocket.ERROR, json.dumps(exit_status(code)).encode()))
            self._send(websocket.close_frame())
            reader.join(CLIENT_CLOSE_WAIT_S)
            return code
        finally:
            self._shutdown()
            reader.join(CLIENT_CLOSE_WAIT_S)
            self._stream.close()
