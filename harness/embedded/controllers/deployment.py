"""apps/v1 Deployment controller: one ReplicaSet per pod template, rolled with kube's surge/unavailable rules.

The ReplicaSet for the current template is ``<deployment>-<pod-template-hash>``; the hash (10 characters from
kube's "safe" alphabet) is a stable digest of the template, and the ``pod-template-hash`` label is added to the
ReplicaSet's selector, template and so its pods, so ReplicaSets of different templates never share pods.
Rolling updates follow ``deployment/rolling.go``: scale the new ReplicaSet up within ``replicas + maxSurge``, scale
old ones down while at least ``replicas - maxUnavailable`` pods stay available (unhealthy old pods first).

Approximations: the hash is not kube's FNV-32a of the Go struct (so names differ from a real cluster's, but are
stable and of the same shape); ``paused``, ``progressDeadlineSeconds`` timeouts and proportional scaling of
several old ReplicaSets mid-rollout are not modelled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from typing import Any

from harness.embedded import apierrors
from harness.embedded.controllers.base import PrimaryController
from harness.embedded.controllers.replicaset import REPLICASETS
from harness.embedded.objects import clone, owner_reference, rfc3339, set_condition
from harness.embedded.store import Key

log = logging.getLogger(__name__)

DEPLOYMENTS: Key = ("apps", "deployments")
COMPONENT = "deployment-controller"
HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
_SAFE_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: dict[str, Any]) -> str:
    """Stable 10-character digest of a pod template, ignoring any ``pod-template-hash`` label already on it."""
    stripped = clone(template)
    labels = (stripped.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    digest = hashlib.sha256(json.dumps(stripped, sort_keys=True, separators=(",", ":")).encode()).digest()
    return "".join(_SAFE_CHARS[b % len(_SAFE_CHARS)] for b in digest[:10])


def resolve_int_or_percent(value: Any, total: int, *, round_up: bool) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        fraction = float(text[:-1]) * total / 100
        return math.ceil(fraction) if round_up else math.floor(fraction)
    return int(text)


def _replicas(obj: dict[str, Any]) -> int:
    value = (obj.get("spec") or {}).get("replicas")
    return int(value) if value is not None else 1


def _revision(rs: dict[str, Any]) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


class DeploymentController(PrimaryController):
    name = "deployment"
    primary: Key = DEPLOYMENTS
    kind = "Deployment"
    watches: tuple[Key, ...] = (DEPLOYMENTS, REPLICASETS)

    def sync(self, namespace: str, name: str, deploy: dict[str, Any]) -> float | None:
        if deploy["metadata"].get("deletionTimestamp"):
            return None
        spec = deploy.get("spec") or {}
        desired = _replicas(deploy)
        template = spec.get("template") or {}
        thash = template_hash(template)
        owned = self.ctx.owned(deploy, "ReplicaSet")
        new_rs = next((rs for rs in owned if (rs["metadata"].get("labels") or {}).get(HASH_LABEL) == thash), None)
        olds = [rs for rs in owned if rs is not new_rs]
        max_revision = max((_revision(rs) for rs in owned), default=0)
        strategy = spec.get("strategy") or {}
        rolling = strategy.get("type", "RollingUpdate") == "RollingUpdate"
        rolling_params = strategy.get("rollingUpdate") or {}
        surge = resolve_int_or_percent(rolling_params.get("maxSurge", "25%"), desired, round_up=True) if rolling else 0
        unavailable = (
            resolve_int_or_percent(rolling_params.get("maxUnavailable", "25%"), desired, round_up=False)
            if rolling
            else desired
        )
        if rolling and surge == 0 and unavailable == 0:
            unavailable = 1
        created_now = False
        old_active = sum(_replicas(rs) for rs in olds)

        if new_rs is None:
            if rolling:
                start = desired if old_active == 0 else max(0, min(desired, desired + surge - old_active))
            else:
                start = desired if not any(_status(rs, "replicas") for rs in olds) and old_active == 0 else 0
            new_rs = self._create_rs(
                deploy,
                template=template,
                thash=thash,
                replicas=start,
                revision=max_revision + 1,
                max_replicas=desired + surge,
            )
            if new_rs is None:
                return None
            created_now = True
            if start:
                self._event_scale(deploy, new_rs, 0, start)
        elif _revision(new_rs) < max_revision:
            # A rollback to an older template: its ReplicaSet becomes the newest revision again.
            new_rs = self._annotate(new_rs, {REVISION: str(max_revision + 1)}) or new_rs

        if not olds or all(_replicas(rs) == 0 and not _status(rs, "replicas") for rs in olds):
            # Not rolling: plain scaling goes straight to the new ReplicaSet.
            if _replicas(new_rs) != desired:
                new_rs = self._scale(deploy, new_rs, desired, desired + surge) or new_rs
        elif rolling:
            self._roll(deploy, new_rs=new_rs, olds=olds, desired=desired, surge=surge, unavailable=unavailable)
        else:
            for rs in olds:
                if _replicas(rs):
                    self._scale(deploy, rs, 0, desired)
            if not any(_status(rs, "replicas") for rs in olds) and _replicas(new_rs) != desired:
                self._scale(deploy, new_rs, desired, desired)

        self._cleanup(
            deploy,
            [rs for rs in self.ctx.owned(deploy, "ReplicaSet") if rs["metadata"]["uid"] != new_rs["metadata"]["uid"]],
        )
        self._write_status(deploy, new_rs, desired, unavailable, created_now)
        return None

    # ------------------------------------------------------------------ rolling
    def _roll(
        self,
        deploy: dict[str, Any],
        *,
        new_rs: dict[str, Any],
        olds: list[dict[str, Any]],
        desired: int,
        surge: int,
        unavailable: int,
    ) -> None:
        all_rs = [new_rs, *olds]
        total = sum(_replicas(rs) for rs in all_rs)
        new_replicas = _replicas(new_rs)
        if new_replicas < desired:
            step = min(desired + surge - total, desired - new_replicas)
            if step > 0:
                new_rs = self._scale(deploy, new_rs, new_replicas + step, desired + surge) or new_rs
                total += step
        elif new_replicas > desired:
            self._scale(deploy, new_rs, desired, desired + surge)
            return
        min_available = desired - unavailable
        new_unavailable = _replicas(new_rs) - _status(new_rs, "availableReplicas")
        budget = total - min_available - new_unavailable
        if budget <= 0:
            return
        olds_sorted = sorted(olds, key=lambda rs: (_revision(rs), rs["metadata"].get("creationTimestamp", "")))
        # Store objects are never edited in place: track the replica counts written during this pass here.
        counts = {rs["metadata"]["uid"]: _replicas(rs) for rs in olds_sorted}
        # First drop old pods that are not available anyway: it costs no availability.
        for rs in olds_sorted:
            if budget <= 0:
                break
            replicas = counts[rs["metadata"]["uid"]]
            unhealthy = replicas - _status(rs, "availableReplicas")
            cut = min(budget, unhealthy, replicas)
            if cut > 0:
                self._scale(deploy, rs, replicas - cut, desired + surge)
                budget -= cut
                counts[rs["metadata"]["uid"]] = replicas - cut
        available = sum(_status(rs, "availableReplicas") for rs in all_rs)
        budget = min(budget, available - min_available)
        for rs in olds_sorted:
            if budget <= 0:
                break
            replicas = counts[rs["metadata"]["uid"]]
            cut = min(budget, replicas)
            if cut > 0:
                self._scale(deploy, rs, replicas - cut, desired + surge)
                budget -= cut

    # ------------------------------------------------------------------ writes
    def _create_rs(
        self,
        deploy: dict[str, Any],
        *,
        template: dict[str, Any],
        thash: str,
        replicas: int,
        revision: int,
        max_replicas: int,
    ) -> dict[str, Any] | None:
        meta = deploy["metadata"]
        namespace = meta["namespace"]
        rs_template = clone(template)
        rs_template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = thash
        selector = clone((deploy.get("spec") or {}).get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = thash
        labels = dict(rs_template["metadata"]["labels"])
        rs: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta['name']}-{thash}",
                "labels": labels,
                "annotations": {
                    DESIRED: str(_replicas(deploy)),
                    MAX_REPLICAS: str(max_replicas),
                    REVISION: str(revision),
                },
                "ownerReferences": [owner_reference(deploy)],
            },
            "spec": {
                "replicas": replicas,
                "minReadySeconds": int((deploy.get("spec") or {}).get("minReadySeconds") or 0),
                "selector": selector,
                "template": rs_template,
            },
        }
        try:
            created = self.ctx.create(self.ctx.rtype(REPLICASETS), namespace, rs)
        except apierrors.ApiError as err:
            log.info("deployment %s/%s: replica set creation refused: %s", namespace, meta["name"], err.message)
            self.ctx.event(
                deploy,
                "FailedCreate",
                f'Failed to create new replica set "{rs["metadata"]["name"]}": {err.message}',
                component=COMPONENT,
                type_="Warning",
            )
            return None
        return created

    def _scale(
        self, deploy: dict[str, Any], rs: dict[str, Any], replicas: int, max_replicas: int
    ) -> dict[str, Any] | None:
        desired = str(_replicas(deploy))
        seen: list[int] = []

        def change(obj: dict[str, Any]) -> bool:
            seen.append(_replicas(obj))
            annotations = obj["metadata"].setdefault("annotations", {})
            if _replicas(obj) == replicas and annotations.get(DESIRED) == desired:
                return False
            obj["spec"]["replicas"] = replicas
            annotations[DESIRED] = desired
            annotations[MAX_REPLICAS] = str(max_replicas)
            return True

        meta = rs["metadata"]
        updated = self.ctx.store.mutate(self.ctx.rtype(REPLICASETS), meta["namespace"], meta["name"], change)
        if updated is not None and seen and seen[0] != replicas:
            self._event_scale(deploy, updated, seen[0], replicas)
        return updated

    def _annotate(self, rs: dict[str, Any], extra: dict[str, str]) -> dict[str, Any] | None:
        def change(obj: dict[str, Any]) -> bool:
            annotations = obj["metadata"].setdefault("annotations", {})
            if all(annotations.get(k) == v for k, v in extra.items()):
                return False
            annotations.update(extra)
            return True

        meta = rs["metadata"]
        return self.ctx.store.mutate(self.ctx.rtype(REPLICASETS), meta["namespace"], meta["name"], change)

    def _event_scale(self, deploy: dict[str, Any], rs: dict[str, Any], before: int, after: int) -> None:
        direction = "up" if after > before else "down"
        self.ctx.event(
            deploy,
            "ScalingReplicaSet",
            f"Scaled {direction} replica set {rs['metadata']['name']} from {before} to {after}",
            component=COMPONENT,
        )

    def _cleanup(self, deploy: dict[str, Any], olds: list[dict[str, Any]]) -> None:
        """Delete old, empty ReplicaSets beyond ``revisionHistoryLimit`` (oldest revisions first)."""
        limit = (deploy.get("spec") or {}).get("revisionHistoryLimit")
        limit = 10 if limit is None else int(limit)
        empty = [rs for rs in olds if _replicas(rs) == 0 and not _status(rs, "replicas")]
        excess = len(empty) - limit
        if excess <= 0:
            return
        rtype = self.ctx.rtype(REPLICASETS)
        for rs in sorted(empty, key=_revision)[:excess]:
            try:
                self.ctx.store.delete(rtype, rs["metadata"]["namespace"], rs["metadata"]["name"])
            except apierrors.ApiError as err:
                log.debug("cleanup of %s: %s", rs["metadata"]["name"], err.message)

    def _write_status(
        self, deploy: dict[str, Any], new_rs: dict[str, Any], desired: int, unavailable: int, created_now: bool
    ) -> None:
        owned = self.ctx.owned(deploy, "ReplicaSet")
        current_new = next((rs for rs in owned if rs["metadata"]["uid"] == new_rs["metadata"]["uid"]), new_rs)
        replicas = sum(_status(rs, "replicas") for rs in owned)
        ready = sum(_status(rs, "readyReplicas") for rs in owned)
        available = sum(_status(rs, "availableReplicas") for rs in owned)
        updated = _status(current_new, "replicas")
        old = deploy.get("status") or {}
        status: dict[str, Any] = {"observedGeneration": deploy["metadata"].get("generation", 1)}
        for key, value in (
            ("replicas", replicas),
            ("updatedReplicas", updated),
            ("readyReplicas", ready),
            ("availableReplicas", available),
            ("unavailableReplicas", max(0, replicas - available)),
        ):
            if value:
                status[key] = value
        status["conditions"] = [dict(c) for c in old.get("conditions") or ()]
        rs_name = current_new["metadata"]["name"]
        if available >= desired - unavailable:
            avail = ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        else:
            avail = ("False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
        complete = (
            updated == desired
            and replicas == desired
            and available >= desired
            and _replicas(current_new) == desired
            and (current_new.get("status") or {}).get("observedGeneration") == current_new["metadata"].get("generation")
        )
        if complete:
            prog = ("True", "NewReplicaSetAvailable", f'ReplicaSet "{rs_name}" has successfully progressed.')
        elif created_now:
            prog = ("True", "NewReplicaSetCreated", f'Created new replica set "{rs_name}"')
        else:
            prog = ("True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
        now = rfc3339()
        for ctype, (cstatus, reason, message) in (("Available", avail), ("Progressing", prog)):
            if set_condition(status, ctype, cstatus, reason, message):
                for cond in status["conditions"]:
                    if cond["type"] == ctype:
                        cond["lastUpdateTime"] = now
        if _revision(current_new) and (deploy["metadata"].get("annotations") or {}).get(REVISION) != str(
            _revision(current_new)
        ):

            def annotate(obj: dict[str, Any]) -> None:
                obj["metadata"].setdefault("annotations", {})[REVISION] = str(_revision(current_new))

            meta = deploy["metadata"]
            self.ctx.store.mutate(self.ctx.rtype(DEPLOYMENTS), meta["namespace"], meta["name"], annotate)
        if old == status:
            return

        def change(obj: dict[str, Any]) -> bool:
            if obj.get("status") == status:
                return False
            obj["status"] = status
            return True

        meta = deploy["metadata"]
        self.ctx.store.mutate(
            self.ctx.rtype(DEPLOYMENTS), meta["namespace"], meta["name"], change, subresource="status"
        )


def _status(rs: dict[str, Any], key: str) -> int:
    return int((rs.get("status") or {}).get(key) or 0)
