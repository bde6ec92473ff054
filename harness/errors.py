"""The harness exception tree (DESIGN.md section 1).

A harness exception means "could not measure"; an assertion failure means "measured, and below the bar".
Keeping every harness failure under :class:`HarnessError` lets reports tell the two apart with one ``except``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "AccessDenied",
    "ClusterSpecError",
    "ConfigError",
    "HarnessError",
    "ParseError",
    "RecordWriteError",
    "TargetUnavailable",
    "WaitTimeout",
    "WorkloadFailed",
]


class HarnessError(Exception):
    """Raised for anything that stops the harness from measuring; the base of every harness exception."""


class ConfigError(HarnessError):
    """Raised when configuration (CLI, env, ini, profiles, spec files) is missing, malformed or contradictory."""


class TargetUnavailable(HarnessError):
    """Raised when the cluster under test cannot be reached, started or authenticated against."""


class WorkloadFailed(HarnessError):
    """Raised when a workload's pods or jobs fail (non-zero exit, crash loop, backoff limit) before measuring."""


class AccessDenied(HarnessError):
    """Raised when the API server refuses a request of the harness (RBAC or an admission policy): a defect of
    ``deploy/rbac.yaml``, not of the cluster, so the message names the missing grant and the rule that adds it."""


class WaitTimeout(HarnessError):
    """Raised by wait_for when the awaited state is not reached in time; says what was awaited and the last state."""


class ParseError(HarnessError):
    """Raised when a parser cannot read a measurement out of a tool's output."""


class RecordWriteError(HarnessError):
    """Raised when a run record or report file cannot be written (disk full, permission lost, a file where a
    directory should be). Names the file and the reason; nothing half-written is left behind. ``disk_full`` tells
    the environment's fault (no space, exit 4) from a path the user chose badly (exit 2)."""

    def __init__(self, message: str, *, disk_full: bool = False) -> None:
        super().__init__(message)
        self.disk_full = disk_full


class ClusterSpecError(ConfigError):
    """Raised when an embedded-target cluster spec file is missing or invalid; names the file and key path."""

    def __init__(self, path: Path | str, key_path: str, message: str) -> None:
        self.path = Path(path)
        self.key_path = key_path
        self.message = message
        where = f"{key_path}: " if key_path else ""
        super().__init__(f"cluster spec {self.path}: {where}{message}")
