"""ServerThread (harness/embedded/serverthread.py): serves from its thread, and stop leaves no socket or thread
behind, also when the server never started (``shutdown`` alone would wait forever there)."""

from __future__ import annotations

import socket
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from harness.embedded.serverthread import ServerThread


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _refused(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_serves_on_its_thread_and_stop_closes_the_socket_and_ends_the_thread() -> None:
    serving = ServerThread(ThreadingHTTPServer(("127.0.0.1", 0), _Ok), name="test-serverthread", poll_interval=0.05)
    serving.start()
    port = serving.port
    assert port > 0
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
        assert response.read() == b"ok"
    serving.stop()
    assert _refused(port)
    assert not any(t.name == "test-serverthread" for t in threading.enumerate())


def test_stop_without_start_returns_and_closes_the_socket() -> None:
    serving = ServerThread(ThreadingHTTPServer(("127.0.0.1", 0), _Ok), name="never-started")
    port = serving.port
    done = threading.Event()
    stopper = threading.Thread(target=lambda: (serving.stop(), done.set()), daemon=True)
    stopper.start()
    assert done.wait(5), "stop() of a server that never started must not wait for a serve loop"
    assert _refused(port)
