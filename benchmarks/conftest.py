"""Fixtures and hooks of the embedded target's performance benchmarks (see benchmarks/README.md).

The API server runs in its own process (``k8s-ai-bench cluster up``), as a real cluster would: client CPU (the
official client costs ~1 ms per request or watch event) and server CPU are then separate processes, and the
server's RSS can be read with psutil. Every process started here is stopped by PID, also when a benchmark fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import ServerProcess, stop_process, wait_ready

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "perf: performance benchmark of the embedded target (run: pytest benchmarks/)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if BENCH_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.perf)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Factory: ``start_server(spec_text)`` (or ``None`` for this machine as the only node) -> ServerProcess."""
    started: list[subprocess.Popen[bytes]] = []

    def start(spec: str | None) -> ServerProcess:
        index = len(started)
        kubeconfig = tmp_path / f"kubeconfig-{index}"
        log_path = tmp_path / f"server-{index}.log"
        argv = [
            sys.executable,
            "-m",
            "harness.cli",
            "cluster",
            "up",
            "--kubeconfig",
            str(kubeconfig),
            "--state-dir",
            str(tmp_path / f"state-{index}"),
        ]
        if spec is not None:
            spec_path = tmp_path / f"spec-{index}.yaml"
            spec_path.write_text(spec)
            argv += ["--spec", str(spec_path), "--no-host-node"]
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=log_file, stdin=subprocess.DEVNULL
            )
        started.append(proc)
        wait_ready(proc, log_path)
        return ServerProcess(proc=proc, kubeconfig=kubeconfig, log_path=log_path)

    try:
        yield start
    finally:
        for proc in reversed(started):
            stop_process(proc)


@pytest.fixture(autouse=True)
def _record_load(request: pytest.FixtureRequest) -> Iterator[None]:
    """Record the 1-minute load average with every benchmark: the 2 cores may be shared with other work."""
    bench = request.getfixturevalue("benchmark") if "benchmark" in request.fixturenames else None
    yield
    if bench is not None:
        bench.extra_info["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
