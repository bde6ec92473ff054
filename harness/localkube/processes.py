"""The control plane's processes: started so that they die with the harness, stopped by PID, logs kept.

Each program runs in its own session (a Ctrl-C in the terminal reaches the harness, which stops them in order) with
``PR_SET_PDEATHSIG=SIGKILL``, so that even a SIGKILL of the harness leaves no etcd or apiserver behind. A process
that exits during start-up is reported with the last lines of its log: that is where etcd or kube-apiserver say why.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import TargetUnavailable

__all__ = ["Process", "Supervisor"]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
STOP_GRACE_S = 10.0


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@dataclass(slots=True, kw_only=True)
class Process:
    """One started program."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 8) -> str:
        """The last lines of the program's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def check_alive(self) -> None:
        """Raise :class:`TargetUnavailable` with the log's tail when the program has exited."""
        if not self.alive():
            raise TargetUnavailable(
                f"real control plane: {self.name} exited with status {self.popen.returncode} "
                f"(log {self.log_path}):\n{self.tail()}"
            )


class Supervisor:
    """Starts programs and stops them all, newest first."""

    def __init__(self, log_dir: Path, *, cwd: Path) -> None:
        self.log_dir = log_dir
        self.cwd = cwd  # every program's working directory: where relative paths land, and how to find them all
        self.processes: list[Process] = []

    def start(self, name: str, argv: Sequence[str], *, env: dict[str, str] | None = None) -> Process:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as handle:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - prctl only, no locks taken
            )
        process = Process(name=name, popen=popen, log_path=log_path)
        self.processes.append(process)
        log.info("started %s (pid %d), log %s", name, popen.pid, log_path)
        return process

    def check_alive(self) -> None:
        for process in self.processes:
            process.check_alive()

    def stop(self) -> None:
        """SIGTERM each program (newest first), SIGKILL what has not exited after the grace period."""
        for process in reversed(self.processes):
            if process.alive():
                try:
                    os.kill(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
            deadline = time.monotonic() + STOP_GRACE_S
            while process.alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            if process.alive():
                log.warning(
                    "%s (pid %d) ignored SIGTERM for %.0f s; killing it", process.name, process.pid, STOP_GRACE_S
                )
                process.popen.kill()
                process.popen.wait()
        self.processes.clear()
