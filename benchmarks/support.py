"""Helpers of the embedded target's benchmarks: the server process, pod bodies, waiting, percentiles."""

from __future__ import annotations

import json
import math
import os
import selectors
import signal
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from kubernetes import client, config

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


def emulated_spec(*, pools: dict[str, int], pods_per_node: int = 110) -> str:
    """A cluster spec with emulated CPU nodes only (no host node): pods there run in the scripted runtime."""
    lines = ["apiVersion: aibench.io/v1", "kind: ClusterSpec", "host: {include: false}", "nodePools:"]
    for name, count in pools.items():
        lines += [
            f"  - name: {name}",
            f"    count: {count}",
            f'    capacity: {{cpu: "64", memory: 256Gi, pods: "{pods_per_node}"}}',
        ]
    return "\n".join(lines) + "\n"


@dataclass(slots=True)
class ServerProcess:
    """A ``k8s-ai-bench cluster up`` process: its PID, kubeconfig and a client factory."""

    proc: subprocess.Popen[bytes]
    kubeconfig: Path
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def api_client(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def rss_bytes(self) -> int:
        return psutil.Process(self.pid).memory_info().rss

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.pid).cpu_times()
        return times.user + times.system


def wait_ready(proc: subprocess.Popen[bytes], log_path: Path) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buffered = b""
    try:
        while b"ready" not in buffered:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or proc.poll() is not None:
                raise RuntimeError(
                    f"embedded cluster did not become ready (rc={proc.poll()}); stdout: "
                    f"{buffered.decode(errors='replace')!r}; log: {log_path.read_text()[-2000:]}"
                )
            if sel.select(timeout=min(remaining, 1.0)):
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    continue
                buffered += chunk
    finally:
        sel.close()


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM by PID (the CLI stops cleanly), SIGKILL if it does not exit in time."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT_S)
    if proc.stdout is not None:
        proc.stdout.close()


def new_namespace(core: client.CoreV1Api, name: str) -> str:
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def pod_body(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench", **(labels or {})}},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "busybox:1.36",
                    "command": ["sleep", "infinity"],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                }
            ],
            "terminationGracePeriodSeconds": 0,
        },
    }


def wait_for_pods(
    core: client.CoreV1Api, namespace: str | None, count: int, *, phase: str = "Running", timeout_s: float = 120.0
) -> None:
    """Block until ``count`` pods are in ``phase``, from one list plus a watch (no sleeps).

    The watch is read raw (``_preload_content=False``) so waiting for thousands of pods does not spend seconds of
    client CPU on model deserialization; that is set-up, not what is measured.
    """
    if namespace is None:
        listing = core.list_pod_for_all_namespaces(_preload_content=False)
    else:
        listing = core.list_namespaced_pod(namespace, _preload_content=False)
    body = json.loads(listing.data)
    phases = {
        (p["metadata"]["namespace"], p["metadata"]["name"]): p.get("status", {}).get("phase") for p in body["items"]
    }
    rv = body["metadata"]["resourceVersion"]
    deadline = time.monotonic() + timeout_s

    def done() -> bool:
        return sum(1 for v in phases.values() if v == phase) >= count

    while not done():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(
                f"waited {timeout_s}s for {count} pods {phase}; {sum(1 for v in phases.values() if v == phase)} are"
            )
        kwargs: dict[str, Any] = {
            "watch": True,
            "resource_version": rv,
            "allow_watch_bookmarks": True,
            "timeout_seconds": max(1, int(remaining)),
            "_preload_content": False,
            "_request_timeout": remaining + 5,
        }
        stream = (
            core.list_pod_for_all_namespaces(**kwargs)
            if namespace is None
            else core.list_namespaced_pod(namespace, **kwargs)
        )
        try:
            pending = b""
            for chunk in stream.stream(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    obj = event["object"]
                    rv = obj["metadata"].get("resourceVersion", rv)
                    if event["type"] in ("ADDED", "MODIFIED"):
                        phases[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj["status"].get("phase")
                    elif event["type"] == "DELETED":
                        phases.pop((obj["metadata"]["namespace"], obj["metadata"]["name"]), None)
                if done():
                    break
        finally:
            stream.close()
            stream.release_conn()


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of raw samples."""
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


def summary_ms(samples_s: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "n": len(ms),
        "min_ms": round(min(ms), 3),
        "p50_ms": round(statistics.median(ms), 3),
        "p90_ms": round(percentile(ms, 90), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(max(ms), 3),
    }
