"""Remove what dead runs left behind: namespaces labelled ``aibench.io/run-id`` whose run is no longer alive.

A run is alive while its ``reports/<run-id>/.alive`` file names a live process on this host; everything else
carrying the label is a leftover (a killed CI job, a crashed laptop) and is deleted. ``--all`` deletes every
labelled namespace regardless.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client

from harness.cluster.fields import labels_of, name_of
from harness.cluster.namespaces import MANAGED_LABEL, MANAGER, RUN_LABEL, delete_namespace

log = logging.getLogger(__name__)

ALIVE_FILE = ".alive"


def mark_alive(run_dir: Path) -> Path:
    """Write ``.alive`` with this process id; the run removes it when it ends."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / ALIVE_FILE
    path.write_text(str(os.getpid()))
    return path


def run_is_alive(reports_dir: Path, run_id: str) -> bool:
    path = reports_dir / run_id / ALIVE_FILE
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepResult:
    deleted: tuple[str, ...]
    kept: tuple[str, ...]  # namespaces of live runs


def sweep(
    api_client: client.ApiClient, reports_dir: Path, *, everything: bool = False, timeout_s: float = 120.0
) -> SweepResult:
    core = client.CoreV1Api(api_client)
    namespaces = core.list_namespace(label_selector=f"{RUN_LABEL},{MANAGED_LABEL}={MANAGER}").items
    deleted: list[str] = []
    kept: list[str] = []
    for ns in namespaces:
        name, run_id = name_of(ns), labels_of(ns).get(RUN_LABEL, "")
        if not everything and run_is_alive(reports_dir, run_id):
            kept.append(name)
            continue
        log.info("sweeping namespace %s of run %s", name, run_id)
        delete_namespace(api_client, name, timeout_s=timeout_s)
        deleted.append(name)
    return SweepResult(deleted=tuple(deleted), kept=tuple(kept))
