"""apps/v1 StatefulSet controller: stable names, ordered start, per-replica PersistentVolumeClaims.

Pods are ``<sts>-0 .. <sts>-N-1`` with hostname ``<sts>-<i>`` and subdomain ``spec.serviceName`` (so the headless
Service gives each a DNS name). ``OrderedReady`` creates ordinal i only when every lower ordinal is Running and
Ready, and removes from the highest ordinal one at a time; ``Parallel`` does both at once. Each
``volumeClaimTemplates`` entry becomes a PVC ``<template>-<sts>-<i>``, created before its pod and mounted in place of
the template's volume of that name; PVCs are kept on scale-down and deletion (the default ``Retain`` policy).
RollingUpdate replaces outdated pods from the highest ordinal down to ``partition``, one at a time, once all are
Ready; the revision is a digest of the template (no ControllerRevision objects).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from harness.embedded import apierrors
from harness.embedded.controllers.base import PODS, REVISION_LABEL, PrimaryController
from harness.embedded.controllers.deployment import template_hash
from harness.embedded.objects import clone
from harness.embedded.podstate import pod_active, pod_phase, pod_ready, pod_terminal
from harness.embedded.store import Key

log = logging.getLogger(__name__)

STATEFULSETS: Key = ("apps", "statefulsets")
PVCS: Key = ("", "persistentvolumeclaims")
COMPONENT = "statefulset-controller"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def _ordinal(sts_name: str, pod: dict[str, Any]) -> int | None:
    match = re.fullmatch(re.escape(sts_name) + r"-(\d+)", pod["metadata"]["name"])
    return int(match.group(1)) if match else None


def _running_ready(pod: dict[str, Any]) -> bool:
    return pod_phase(pod) == "Running" and pod_ready(pod) and not pod["metadata"].get("deletionTimestamp")


class StatefulSetController(PrimaryController):
    name = "statefulset"
    primary: Key = STATEFULSETS
    kind = "StatefulSet"
    watches: tuple[Key, ...] = (STATEFULSETS, PODS)

    def sync(self, namespace: str, name: str, sts: dict[str, Any]) -> float | None:
        spec = sts.get("spec") or {}
        replicas = int(spec["replicas"] if spec.get("replicas") is not None else 1)
        parallel = spec.get("podManagementPolicy") == "Parallel"
        revision = f"{name}-{template_hash(spec.get('template') or {})}"
        pods: dict[int, dict[str, Any]] = {}
        for pod in self.ctx.owned(sts, "Pod"):
            ordinal = _ordinal(name, pod)
            if ordinal is not None:
                pods[ordinal] = pod
        if not sts["metadata"].get("deletionTimestamp"):
            self._converge(sts, pods, replicas, parallel, revision)
        self._write_status(sts, replicas, revision)
        return None

    def _converge(
        self, sts: dict[str, Any], pods: dict[int, dict[str, Any]], replicas: int, parallel: bool, revision: str
    ) -> None:
        name = sts["metadata"]["name"]
        # Failed pods are replaced (kube deletes them and recreates the same ordinal).
        pod: dict[str, Any] | None
        for pod in list(pods.values()):
            if pod_terminal(pod) and not pod["metadata"].get("deletionTimestamp"):
                self.ctx.delete_pod(sts, pod, component=COMPONENT)
        if not parallel and any(p["metadata"].get("deletionTimestamp") for p in pods.values()):
            return  # OrderedReady: one change at a time, wait for the terminating pod to go
        for ordinal in range(replicas):
            pod = pods.get(ordinal)
            if pod is None:
                if not self._ensure_claims(sts, ordinal):
                    return
                created = self._create_pod(sts, ordinal, revision)
                if not parallel or created is None:
                    return
                continue
            if not parallel and not _running_ready(pod):
                return
        # Scale down, highest ordinal first.
        surplus = sorted((o for o in pods if o >= replicas), reverse=True)
        for ordinal in surplus:
            self.ctx.delete_pod(sts, pods[ordinal], component=COMPONENT)
            if not parallel:
                return
        if surplus:
            return
        strategy = (sts.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        if not all(_running_ready(pods[o]) for o in range(replicas) if o in pods) or len(pods) < replicas:
            return
        for ordinal in range(replicas - 1, partition - 1, -1):
            pod = pods.get(ordinal)
            if pod is not None and (pod["metadata"].get("labels") or {}).get(REVISION_LABEL) != revision:
                log.info("statefulset %s: replacing %s with revision %s", name, pod["metadata"]["name"], revision)
                self.ctx.delete_pod(sts, pod, component=COMPONENT)
                return

    def _claim_name(self, sts: dict[str, Any], template: dict[str, Any], ordinal: int) -> str:
        return f"{template['metadata']['name']}-{sts['metadata']['name']}-{ordinal}"

    def _ensure_claims(self, sts: dict[str, Any], ordinal: int) -> bool:
        namespace = sts["metadata"]["namespace"]
        spec = sts.get("spec") or {}
        rtype = self.ctx.rtype(PVCS)
        for template in spec.get("volumeClaimTemplates") or ():
            claim = self._claim_name(sts, template, ordinal)
            if self.ctx.store.find(PVCS, namespace, claim) is not None:
                continue
            labels = dict((template.get("metadata") or {}).get("labels") or {})
            labels.update((spec.get("selector") or {}).get("matchLabels") or {})
            obj: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim, "labels": labels},
                "spec": clone(template.get("spec") or {}),
            }
            annotations = (template.get("metadata") or {}).get("annotations")
            if annotations:
                obj["metadata"]["annotations"] = dict(annotations)
            try:
                self.ctx.create(rtype, namespace, obj)
            except apierrors.ApiError as err:
                if err.code == 409:
                    continue
                self.ctx.event(
                    sts,
                    "FailedCreate",
                    f"create Claim {claim} for Pod {sts['metadata']['name']}-"
                    f"{ordinal} in StatefulSet {sts['metadata']['name']} failed error: {err.message}",
                    component=COMPONENT,
                    type_="Warning",
                )
                return False
            self.ctx.event(
                sts,
                "SuccessfulCreate",
                f"create Claim {claim} Pod {sts['metadata']['name']}-{ordinal} "
                f"in StatefulSet {sts['metadata']['name']} success",
                component=COMPONENT,
            )
        return True

    def _create_pod(self, sts: dict[str, Any], ordinal: int, revision: str) -> dict[str, Any] | None:
        spec = sts.get("spec") or {}
        name = sts["metadata"]["name"]
        pod_name = f"{name}-{ordinal}"
        claims = {
            t["metadata"]["name"]: self._claim_name(sts, t, ordinal) for t in spec.get("volumeClaimTemplates") or ()
        }

        def customize(pod: dict[str, Any]) -> None:
            pod_spec = pod["spec"]
            pod_spec["hostname"] = pod_name
            if spec.get("serviceName"):
                pod_spec["subdomain"] = spec["serviceName"]
            if claims:
                volumes = [v for v in pod_spec.get("volumes") or () if v.get("name") not in claims]
                volumes.extend(
                    {"name": vname, "persistentVolumeClaim": {"claimName": claim}} for vname, claim in claims.items()
                )
                pod_spec["volumes"] = volumes

        created = self.ctx.create_pod(
            sts,
            spec.get("template") or {},
            component=COMPONENT,
            name=pod_name,
            extra_labels={POD_NAME_LABEL: pod_name, POD_INDEX_LABEL: str(ordinal), REVISION_LABEL: revision},
            customize=customize,
        )
        return created

    def _write_status(self, sts: dict[str, Any], replicas: int, revision: str) -> None:
        name = sts["metadata"]["name"]
        pods = [p for p in self.ctx.owned(sts, "Pod") if _ordinal(name, p) is not None and pod_active(p)]
        old = sts.get("status") or {}
        updated = sum(1 for p in pods if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == revision)
        current_revision = old.get("currentRevision") or revision
        if updated == replicas and len(pods) == replicas:
            current_revision = revision
        ready = sum(1 for p in pods if pod_ready(p))
        status: dict[str, Any] = {
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": len(pods),
            "currentRevision": current_revision,
            "updateRevision": revision,
            "collisionCount": 0,
        }
        current = sum(1 for p in pods if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == current_revision)
        for key, value in (
            ("readyReplicas", ready),
            ("currentReplicas", current),
            ("updatedReplicas", updated),
            ("availableReplicas", ready),
        ):
            if value:
                status[key] = value
        if old == status:
            return

        def change(obj: dict[str, Any]) -> bool:
            if obj.get("status") == status:
                return False
            obj["status"] = clone(status)
            return True

        meta = sts["metadata"]
        self.ctx.store.mutate(
            self.ctx.rtype(STATEFULSETS), meta["namespace"], meta["name"], change, subresource="status"
        )
