"""The token streamer as a local process for the serving tests (loopback only, stopped by its PID)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "workloads" / "inference-server" / "tokenstream.py"


def start_streamer(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path / f"server-{port}.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--host", "127.0.0.1", "--port", str(port), *args],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail(f"token streamer did not start: {(tmp_path / f'server-{port}.log').read_text()}")
            time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port}"


@pytest.fixture
def streamer(tmp_path):
    """TTFT 50 ms, TPOT 10 ms, 8 tokens, version v2."""
    proc, url = start_streamer(
        tmp_path, "--ttft-ms", "50", "--tpot-ms", "10", "--output-tokens", "8", "--version", "v2"
    )
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
