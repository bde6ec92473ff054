"""Small, hot helpers on Kubernetes object dicts shared by the store, controllers and kubelet.

Objects stay plain JSON dicts (DESIGN.md section 8). The store never hands out a dict it may later mutate, and
writers copy before they change anything, so watch events and earlier responses keep the version they saw.
"""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from typing import Any


def clone(obj: Any) -> Any:
    """Deep copy of JSON-shaped data. A pickle round trip in C: 17 us for a pod with kube's projected token volume
    against 24 us for a recursive copy in Python and about 3x that for :func:`copy.deepcopy`; the store clones on
    every write and watch, so this is on the pod-creation path many times per pod."""
    if type(obj) is dict or type(obj) is list:
        return pickle.loads(pickle.dumps(obj, pickle.HIGHEST_PROTOCOL))
    return obj


def rfc3339(moment: datetime | None = None) -> str:
    """Kubernetes' metav1.Time text (second precision, ``Z``)."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(moment: datetime | None = None) -> str:
    """metav1.MicroTime text, used by Event.eventTime."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """Parse metav1.Time / MicroTime text."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def meta(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj["metadata"]``, created when missing."""
    metadata: dict[str, Any] = obj.setdefault("metadata", {})
    return metadata


def labels_of(obj: dict[str, Any]) -> dict[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


def controller_ref(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The ownerReference marked ``controller: true``, if any."""
    ref: dict[str, Any]
    for ref in obj.get("metadata", {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


def owner_reference(owner: dict[str, Any], *, controller: bool = True) -> dict[str, Any]:
    """An ownerReference to ``owner`` as controllers set it (blockOwnerDeletion for foreground deletes)."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    cond: dict[str, Any]
    for cond in obj.get("status", {}).get("conditions") or ():
        if cond.get("type") == ctype:
            return cond
    return None


def set_condition(
    status: dict[str, Any], ctype: str, value: str, reason: str = "", message: str = "", *, probe_time: bool = False
) -> bool:
    """Set a status condition, keeping lastTransitionTime when the value did not change; True if anything changed."""
    conditions = status.setdefault("conditions", [])
    now = rfc3339()
    for cond in conditions:
        if cond.get("type") == ctype:
            if cond.get("status") == value and cond.get("reason", "") == reason and cond.get("message", "") == message:
                return False
            if cond.get("status") != value:
                cond["lastTransitionTime"] = now
            cond["status"] = value
            cond["reason"] = reason
            cond["message"] = message
            if probe_time:
                cond["lastProbeTime"] = now
            return True
    new: dict[str, Any] = {"type": ctype, "status": value, "lastTransitionTime": now}
    if reason:
        new["reason"] = reason
    if message:
        new["message"] = message
    if probe_time:
        new["lastProbeTime"] = now
    conditions.append(new)
    return True
