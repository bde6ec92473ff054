"""The ``local-path`` provisioner: PVCs of the embedded target bind to directories on this machine.

Each claim of a class whose provisioner is ours gets a PersistentVolume backed by a fresh directory under the
state directory (RWO and RWX alike: every pod on this machine can share it). ``volumeMode: Block`` cannot be
provided by a directory, so such a claim stays Pending with a ProvisioningFailed event that says so. Reclaim
policy Delete removes the directory with the claim.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from harness.embedded.admission import AdmissionContext, create_admitted
from harness.embedded.events import record_event
from harness.embedded.store import Store, WatchEvent
from harness.embedded.workqueue import WorkQueue

log = logging.getLogger(__name__)

PROVISIONER = "aibench.io/local-path"
_PVC = ("", "persistentvolumeclaims")
_PV = ("", "persistentvolumes")
_SC = ("storage.k8s.io", "storageclasses")


class LocalPathProvisioner:
    """Binds claims of local-path classes; one worker thread, fed by store events."""

    def __init__(self, store: Store, admission: AdmissionContext, root: Path, memory_root: Path | None = None) -> None:
        self.store = store
        self.admission = admission
        self.root = root
        # Claims of a class with parameter medium=Memory get tmpfs directories (RAM: the fast tier of this machine).
        self.memory_root = memory_root
        self._queue: WorkQueue[WatchEvent] = WorkQueue("aibench-provisioner")
        store.add_listener(self._on_event)

    def _on_event(self, event: WatchEvent) -> None:
        if event.key == _PVC:
            self._queue.put(event)

    def start(self) -> None:
        for pvc in self.store.iter(_PVC):
            self._queue.put(WatchEvent(0, _PVC, "ADDED", pvc))
        self._queue.start(self._run)

    def stop(self) -> None:
        self._queue.stop()
        if self.memory_root is not None:
            shutil.rmtree(self.memory_root, ignore_errors=True)  # RAM is not given back by anyone else

    def _set_volume_phase(self, volume: str, phase: str) -> None:
        """Write a PersistentVolume's ``status.phase`` through its status subresource (Bound, Released)."""
        pv_type = self.store.registry.get("", "persistentvolumes")
        self.store.mutate(
            pv_type, "", volume, lambda o: o.setdefault("status", {}).update(phase=phase) or True, subresource="status"
        )

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            try:
                if event.type == "DELETED":
                    self._release(event.obj)
                else:
                    self._provision(event.obj)
            except Exception:
                log.exception("provisioning %s failed", event.obj["metadata"].get("name"))

    def _provision(self, pvc: dict[str, Any]) -> None:
        current = self.store.find(_PVC, pvc["metadata"]["namespace"], pvc["metadata"]["name"])
        if current is None or current.get("status", {}).get("phase") == "Bound":
            return
        spec = current["spec"]
        class_name = spec.get("storageClassName") or ""
        sc = self.store.find(_SC, "", class_name)
        if sc is None and class_name:
            # what kube's persistentvolume-controller reports for a claim naming a class that does not exist
            record_event(
                self.store,
                current,
                type_="Warning",
                reason="ProvisioningFailed",
                message=f'storageclass.storage.k8s.io "{class_name}" not found',
                component="persistentvolume-controller",
            )
            return
        if sc is not None and sc.get("provisioner") != PROVISIONER:
            # kube's persistentvolume-controller says the same and waits for that provisioner, which is not here
            record_event(
                self.store,
                current,
                type_="Normal",
                reason="ExternalProvisioning",
                message="Waiting for a volume to be created either by the external provisioner "
                f"'{sc.get('provisioner')}' or manually by the system administrator. If volume creation is "
                "delayed, please verify that the provisioner is running and correctly registered.",
                component="persistentvolume-controller",
            )
            return
        if sc is None:
            return
        if spec.get("volumeMode") == "Block":
            record_event(
                self.store,
                current,
                type_="Warning",
                reason="ProvisioningFailed",
                message="failed to provision volume with StorageClass "
                f'"{sc["metadata"]["name"]}": volumeMode Block is not supported by the embedded '
                "target's local-path provisioner (it provides directories only)",
                component=PROVISIONER,
            )
            return
        name = f"pvc-{current['metadata']['uid']}"
        in_memory = (sc.get("parameters") or {}).get("medium") == "Memory"
        if in_memory and self.memory_root is None:
            record_event(
                self.store,
                current,
                type_="Warning",
                reason="ProvisioningFailed",
                message="this machine has no tmpfs at /dev/shm for medium=Memory volumes",
                component=PROVISIONER,
            )
            return
        path = (self.memory_root if in_memory and self.memory_root is not None else self.root) / name
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o777)  # as rancher's local-path provisioner: any pod uid may write its volume
        capacity = spec["resources"]["requests"]["storage"]
        pv = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
            "spec": {
                "capacity": {"storage": capacity},
                "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
                "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy", "Delete"),
                "storageClassName": sc["metadata"]["name"],
                "volumeMode": "Filesystem",
                "hostPath": {"path": str(path), "type": "Directory"},
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "namespace": current["metadata"]["namespace"],
                    "name": current["metadata"]["name"],
                    "uid": current["metadata"]["uid"],
                },
            },
        }
        pv_type = self.store.registry.get("", "persistentvolumes")
        if self.store.find(_PV, "", name) is None:
            created = create_admitted(self.store, self.admission, pv_type, "", pv)
            self._set_volume_phase(name, "Bound")
            log.info(
                "provisioned %s at %s for %s/%s",
                created["metadata"]["name"],
                path,
                current["metadata"]["namespace"],
                current["metadata"]["name"],
            )
        pvc_type = self.store.registry.get("", "persistentvolumeclaims")

        def bind(claim: dict[str, Any]) -> None:
            claim["spec"]["volumeName"] = name
            annotations = claim["metadata"].setdefault("annotations", {})
            annotations["pv.kubernetes.io/bind-completed"] = "yes"
            annotations["volume.kubernetes.io/storage-provisioner"] = PROVISIONER
            claim["status"] = {
                "phase": "Bound",
                "accessModes": list(spec.get("accessModes") or []),
                "capacity": {"storage": capacity},
            }

        self.store.mutate(
            pvc_type, current["metadata"]["namespace"], current["metadata"]["name"], bind, subresource="all"
        )
        record_event(
            self.store,
            current,
            type_="Normal",
            reason="ProvisioningSucceeded",
            message=f"Successfully provisioned volume {name}",
            component=PROVISIONER,
        )

    def _release(self, pvc: dict[str, Any]) -> None:
        volume = pvc["spec"].get("volumeName")
        if not volume:
            return
        pv = self.store.find(_PV, "", volume)
        if (
            pv is None
            or (pv["metadata"].get("annotations") or {}).get("pv.kubernetes.io/provisioned-by") != PROVISIONER
        ):
            return
        pv_type = self.store.registry.get("", "persistentvolumes")
        if pv["spec"].get("persistentVolumeReclaimPolicy", "Delete") == "Delete":
            path = Path((pv["spec"].get("hostPath") or {}).get("path", ""))
            roots = [r for r in (self.root, self.memory_root) if r is not None]
            if path.is_dir() and any(root in path.parents for root in roots):
                shutil.rmtree(path, ignore_errors=True)
            self.store.finish_delete(pv_type, "", volume)
        else:
            self._set_volume_phase(volume, "Released")
