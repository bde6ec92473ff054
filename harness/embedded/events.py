"""Kubernetes ``v1`` Events recorded by the embedded control plane (controllers, scheduler, kubelet).

Suites and people read ``kubectl describe`` / ``kubectl get events`` to learn why something happened, so the
components record the same reasons and messages kube does. Repeats are aggregated like client-go's event
correlator: same involved object (uid), reason and message -> one Event whose ``count`` and ``lastTimestamp`` grow.
The Event's name is derived from that triple (``<object>.<16 hex>``), so aggregation is one indexed lookup instead
of a scan of every Event in the namespace.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Literal

from harness.embedded import apierrors
from harness.embedded.objects import rfc3339
from harness.embedded.store import Store

log = logging.getLogger(__name__)

EventKind = Literal["Normal", "Warning"]

_EVENTS_KEY = ("", "events")
_MAX_NAME = 253


def record_event(
    store: Store,
    involved: dict[str, Any],
    *,
    type_: EventKind,
    reason: str,
    message: str,
    component: str,
    host: str | None = None,
) -> dict[str, Any] | None:
    """Create or bump the Event for ``involved``; never raises (an Event is not worth failing a reconcile for).

    Returns the stored Event, or None when it could not be written (namespace gone or terminating).
    """
    meta = involved.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    name = event_name(involved, reason=reason, message=message, component=component)
    rtype = store.registry.get("", "events")
    now = rfc3339()

    def bump(event: dict[str, Any]) -> bool:
        event["count"] = int(event.get("count") or 1) + 1
        event["lastTimestamp"] = now
        event["involvedObject"]["resourceVersion"] = meta.get("resourceVersion", "")
        return True

    try:
        with store.lock:
            if store.find(_EVENTS_KEY, namespace, name) is not None:
                return store.mutate(rtype, namespace, name, bump)
            event = new_event(
                involved,
                name=name,
                type_=type_,
                reason=reason,
                message=message,
                component=component,
                host=host,
                now=now,
            )
            return store.create(rtype, namespace, event)
    except apierrors.ApiError as err:
        # A terminating or missing namespace refuses new content; kube's recorder drops those Events too.
        log.debug("event %s %s on %s/%s not recorded: %s", reason, message, namespace, meta.get("name"), err.message)
        return None


def event_name(involved: dict[str, Any], *, reason: str, message: str, component: str) -> str:
    """``<object>.<16 hex>`` from (uid, reason, message, component): a repeat finds its Event by name."""
    meta = involved.get("metadata") or {}
    key = f"{meta.get('uid') or ''}\x00{reason}\x00{message}\x00{component}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"{(meta.get('name') or '')[: _MAX_NAME - 17]}.{digest}"


def new_event(
    involved: dict[str, Any],
    *,
    name: str,
    type_: EventKind,
    reason: str,
    message: str,
    component: str,
    host: str | None,
    now: str,
) -> dict[str, Any]:
    """A first occurrence's core/v1 Event (count 1), as the embedded store and the node agent's REST client create
    it; repeats bump ``count`` and ``lastTimestamp`` of the one named :func:`event_name`."""
    meta = involved.get("metadata") or {}
    source: dict[str, str] = {"component": component}
    if host:
        source["host"] = host
    involved_ref: dict[str, Any] = {
        "kind": involved.get("kind", ""),
        "apiVersion": involved.get("apiVersion", ""),
        "name": meta.get("name") or "",
        "uid": meta.get("uid") or "",
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    if meta.get("namespace"):
        involved_ref["namespace"] = meta["namespace"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": meta.get("namespace") or "default"},
        "involvedObject": involved_ref,
        "reason": reason,
        "message": message,
        "source": source,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "type": type_,
        "eventTime": None,
        "reportingComponent": component,
        "reportingInstance": host or "",
    }
