"""What workload pods on kwok nodes print: the same emulations the embedded target runs, served by kwok.

kwok moves pods through their phases but runs nothing, so a suite run on the real control plane would read empty
logs and every measuring test would fail to parse. This watcher gives each workload pod bound to a kwok node its
devices (the embedded target's emulated device plugin, over the same node inventory), renders the workload's
emulation (:mod:`harness.embedded.emulated_workloads`: the real tool's format, numbers flagged emulated) into a
file, and creates kwok's ``Logs`` object for the pod, so ``pods/log`` through kube-apiserver returns it. The pod is
already annotated ``aibench.io/emulated`` by our kwok Stage, so every result built from it says emulated.

kwok completes a Job's pods with exit code 0 whatever they print; a workload without an emulation therefore
"succeeds" with a log saying it has no emulated output, which its parser then refuses, naming the reason.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.embedded.deviceplugin import AllocationError, EmulatedDevicePlugin, ScriptContext
from harness.embedded.emulated_workloads import WORKLOAD_LABEL, emulated_workloads, script_for
from harness.localkube.rest import AdminRest, ApiError

__all__ = ["KwokLogEmulator", "cri_log"]

log = logging.getLogger(__name__)

POLL_S = 0.25
FINISHED = ("Succeeded", "Failed")


def cri_log(text: str, *, now: datetime | None = None) -> str:
    """``text`` in the CRI container log format kwok serves from (``<RFC 3339 time> stdout F <line>``), the format
    the kubelet itself reads container logs in."""
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return "".join(f"{stamp} stdout F {line}\n" for line in text.splitlines())


class KwokLogEmulator:
    """A thread that writes emulated logs for workload pods on kwok nodes and points kwok at them."""

    def __init__(self, rest: AdminRest, nodes: list[dict[str, Any]], log_dir: Path) -> None:
        self.rest = rest
        self.log_dir = log_dir
        self.nodes = {n["metadata"]["name"]: n for n in nodes}
        self.devices = EmulatedDevicePlugin()
        for node in nodes:
            self.devices.register(node)
        self.table = emulated_workloads()
        self._handled: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kwok-log-emulator", daemon=True)

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                pods = self.rest.get("/api/v1/pods", labelSelector=WORKLOAD_LABEL)["items"]
            except (ApiError, OSError) as exc:
                log.debug("kwok log emulator: cannot list pods: %s", exc)
                continue
            live = set()
            for pod in pods:
                uid = pod["metadata"]["uid"]
                live.add(uid)
                node = pod["spec"].get("nodeName")
                if (pod.get("status") or {}).get("phase") in FINISHED:
                    self.devices.release(uid)
                if node not in self.nodes or uid in self._handled:
                    continue
                self._handled.add(uid)
                try:
                    self._emulate(pod)
                except (ApiError, OSError, AllocationError) as exc:
                    log.warning(
                        "kwok log emulator: %s/%s: %s", pod["metadata"]["namespace"], pod["metadata"]["name"], exc
                    )
            for uid in self._handled - live:
                self.devices.release(uid)
            self._handled &= live

    def _emulate(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        script = script_for(meta.get("labels") or {}, self.table)
        if script is None:
            return
        devices = self.devices.allocate(pod)
        node = self.nodes[pod["spec"]["nodeName"]]
        first = (pod["spec"].get("containers") or [{}])[0]
        text = script.log
        if script.render is not None:
            text = script.render(
                ScriptContext(
                    namespace=meta["namespace"],
                    pod=meta["name"],
                    node=pod["spec"]["nodeName"],
                    node_labels=dict(node["metadata"].get("labels") or {}),
                    devices=devices,
                    annotations=dict(meta.get("annotations") or {}),
                    env={e["name"]: str(e.get("value", "")) for e in first.get("env") or [] if "value" in e},
                )
            )
        entries = []
        for container in pod["spec"].get("containers") or []:
            path = self.log_dir / f"{meta['namespace']}_{meta['name']}_{container['name']}.log"
            path.write_text(cri_log(text if container is first else ""))
            entries.append({"containers": [container["name"]], "logsFile": str(path)})
        self.rest.create(
            f"/apis/kwok.x-k8s.io/v1alpha1/namespaces/{meta['namespace']}/logs",
            {
                "apiVersion": "kwok.x-k8s.io/v1alpha1",
                "kind": "Logs",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                "spec": {"logs": entries},
            },
        )
