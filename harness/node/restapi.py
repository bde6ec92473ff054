"""A real kube-apiserver as the kubelet's control plane (:class:`harness.node.api.NodeApi` over REST).

The kubelet keeps what it reads often in informer caches (list, then watch from the list's resourceVersion, relist
on 410 Gone or a broken stream): the pods bound to its node (``fieldSelector=spec.nodeName``), Services and
Endpoints (hosts files and the service proxy), ConfigMaps and Secrets (volume refresh). Writes are what a kubelet
sends: JSON merge patches of ``pods/status`` (and of the annotations once, at the first write), DELETE with grace
period 0 and a UID precondition once a deleted pod's containers have stopped, and core/v1 Events it bumps.

It speaks JSON through the official client's ``ApiClient`` (``_preload_content=False``): every kubeconfig auth
the client knows works (certificates, tokens, exec plugins), without paying for model deserialisation.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict, Unpack

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from harness.embedded.events import event_name, new_event
from harness.embedded.volumes import VolumeError
from harness.node.api import (
    CONFIGMAPS,
    ENDPOINTS,
    NADS,
    NAMESPACES,
    NETWORK_POLICIES,
    PODS,
    PVCS,
    PVS,
    SECRETS,
    SERVICES,
    EventKind,
    Key,
    ObjectEvent,
)

log = logging.getLogger(__name__)

WATCH_TIMEOUT_S = 300  # the server ends each watch after this; the informer then watches again from its version
RETRY_S = 1.0
REQUEST_TIMEOUT_S = 30.0


class RequestOptions(TypedDict, total=False):
    """What one request may carry besides its method and path: query parameters, a JSON body and its content type
    (``application/json`` unless a patch type is named), and the timeout (``REQUEST_TIMEOUT_S`` unless given;
    a (connect, read) pair for a watch)."""

    query: dict[str, str]
    body: object
    content_type: str
    timeout_s: float | tuple[float, float]


# The collection path of every resource the agent reads (namespaced ones listed across all namespaces).
_LISTS: dict[Key, str] = {
    PODS: "/api/v1/pods",
    SERVICES: "/api/v1/services",
    ENDPOINTS: "/api/v1/endpoints",
    CONFIGMAPS: "/api/v1/configmaps",
    SECRETS: "/api/v1/secrets",
    PVCS: "/api/v1/persistentvolumeclaims",
    PVS: "/api/v1/persistentvolumes",
    NAMESPACES: "/api/v1/namespaces",
    NETWORK_POLICIES: "/apis/networking.k8s.io/v1/networkpolicies",
    NADS: "/apis/k8s.cni.cncf.io/v1/network-attachment-definitions",
}
_CLUSTER_SCOPED = {PVS, NAMESPACES}
# Informed (listed and watched): the pods of every node (NetworkPolicy peers are pods anywhere; the kubelet's own
# are those with its nodeName), and what hosts files, Service routing, volume refresh and policies follow.
_INFORMED: tuple[Key, ...] = (PODS, SERVICES, ENDPOINTS, CONFIGMAPS, SECRETS, NAMESPACES, NETWORK_POLICIES, NADS)
_OPTIONAL = {NADS}  # a CRD a cluster may not serve (no Multus): an empty informer, listed again now and then
OPTIONAL_RETRY_S = 30.0


@dataclass(frozen=True, slots=True)
class Change:
    """One informer change (the shape the kubelet's listener reads)."""

    key: Key
    type: str
    obj: dict[str, Any]


class Gone(Exception):
    """The watch's resourceVersion is too old (410): relist."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class RestNodeApi:
    """:class:`NodeApi` for one node of a real API server."""

    def __init__(self, api_client: client.ApiClient, node_name: str) -> None:
        self.api_client = api_client
        self.node_name = node_name
        self._cache: dict[Key, dict[tuple[str, str], dict[str, Any]]] = {key: {} for key in _INFORMED}
        self._synced: dict[Key, threading.Event] = {key: threading.Event() for key in _INFORMED}
        self._listeners: list[Callable[[ObjectEvent], None]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._events: dict[str, int] = {}  # Event name -> count (repeats are bumped, as the kubelet bumps them)
        self._streams: set[Any] = set()  # open watch responses, shut down on stop so no read blocks the exit

    # ------------------------------------------------------------------ HTTP
    def request(self, method: str, path: str, **options: Unpack[RequestOptions]) -> Any:
        """One JSON request; raises ApiException for a non-2xx answer."""
        response = self._call(method, path, **options)
        try:
            raw = response.data
        finally:
            response.release_conn()
        return json.loads(raw) if raw else None

    def _call(self, method: str, path: str, **options: Unpack[RequestOptions]) -> Any:
        """The raw urllib3 response of one request (streamed: the caller reads and releases it)."""
        headers = {"Accept": "application/json"}
        body = options.get("body")
        if body is not None:
            headers["Content-Type"] = options.get("content_type", "application/json")
        query = options.get("query") or {}
        api: Any = self.api_client  # the client's stubs predate its raw-request methods
        method, url, headers, _, _ = api.param_serialize(
            method, path, query_params=list(query.items()), header_params=headers, auth_settings=["BearerToken"]
        )
        timeout_s = options.get("timeout_s", REQUEST_TIMEOUT_S)
        response = api.call_api(
            method, url, header_params=headers, body=body, _request_timeout=timeout_s
        ).response  # the client JSON-encodes */*+json
        if not 200 <= response.status < 300:
            data = response.data
            response.release_conn()
            error = ApiException(status=response.status, reason=response.reason)
            error.body = data.decode(errors="replace") if isinstance(data, bytes) else data
            raise error
        return response

    # ------------------------------------------------------------------ informers
    def start(self, timeout_s: float = 60.0) -> None:
        """Start the informers and wait until each has listed once (the kubelet starts from a synced view)."""
        for key in _INFORMED:
            thread = threading.Thread(target=self._inform, args=(key,), name=f"node-informer-{key[1]}", daemon=True)
            thread.start()
            self._threads.append(thread)
        deadline = time.monotonic() + timeout_s
        for key, synced in self._synced.items():
            if not synced.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"the node agent could not list {key[1]} from the API server in {timeout_s:g}s")

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            streams = list(self._streams)
        for response in streams:  # a watch blocked in read() would otherwise hold its connection for minutes
            response.shutdown()
        for thread in self._threads:
            thread.join(timeout=2)
        self._threads.clear()

    def _list_path(self, key: Key) -> str:
        return _LISTS[key]

    def _selector(self, key: Key) -> dict[str, str]:
        return {}

    def _inform(self, key: Key) -> None:
        while not self._stop.is_set():
            try:
                version = self._relist(key)
                self._synced[key].set()
                while not self._stop.is_set():
                    version = self._watch(key, version)
            except Gone:
                continue
            except ApiException as exc:
                if key in _OPTIONAL and exc.status == 404:  # not served here: nothing to inform about, for now
                    self._synced[key].set()
                    self._stop.wait(OPTIONAL_RETRY_S)
                    continue
                if self._stop.is_set():
                    return
                log.info("node informer for %s: %s; relisting in %gs", key[1], exc, RETRY_S)
                self._stop.wait(RETRY_S)
            except (HTTPError, OSError, ValueError) as exc:
                if self._stop.is_set():
                    return
                log.info("node informer for %s: %s; relisting in %gs", key[1], exc, RETRY_S)
                self._stop.wait(RETRY_S)

    def _relist(self, key: Key) -> str:
        listed = self.request("GET", self._list_path(key), query=self._selector(key))
        fresh = {(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in listed.get("items") or []}
        with self._lock:
            old = self._cache[key]
            self._cache[key] = fresh
        for ref, obj in old.items():
            if ref not in fresh:
                self._emit(Change(key, "DELETED", obj))
        for ref, obj in fresh.items():
            previous = old.get(ref)
            if previous is None:
                self._emit(Change(key, "ADDED", obj))
            elif previous["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
                self._emit(Change(key, "MODIFIED", obj))
        return str(listed["metadata"]["resourceVersion"])

    def _watch(self, key: Key, version: str) -> str:
        query = {
            **self._selector(key),
            "watch": "true",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_TIMEOUT_S),
        }
        response = self._call("GET", self._list_path(key), query=query, timeout_s=(10.0, WATCH_TIMEOUT_S + 30.0))
        with self._lock:
            self._streams.add(response)
        try:
            for line in _lines(response):
                if self._stop.is_set():
                    break
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone(obj.get("message", "too old resource version"))
                    raise ValueError(f"watch error: {obj.get('message', obj)}")
                version = str(obj.get("metadata", {}).get("resourceVersion") or version)
                if kind == "BOOKMARK":
                    continue
                ref = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
                with self._lock:
                    if kind == "DELETED":
                        self._cache[key].pop(ref, None)
                    else:
                        self._cache[key][ref] = obj
                self._emit(Change(key, str(kind), obj))
        finally:
            with self._lock:
                self._streams.discard(response)
            response.release_conn()
        return version

    def _emit(self, change: Change) -> None:
        for listener in list(self._listeners):
            listener(change)

    # ------------------------------------------------------------------ NodeApi
    def find(self, key: Key, namespace: str, name: str) -> dict[str, Any] | None:
        if key in self._cache:
            with self._lock:
                return self._cache[key].get((namespace, name))
        path = _object_path(key, namespace, name)
        try:
            found: dict[str, Any] = self.request("GET", path)
            return found
        except ApiException as exc:
            if exc.status in (403, 404):
                return None
            raise

    def iter(self, key: Key, namespace: str | None = None) -> Iterable[dict[str, Any]]:
        with self._lock:
            items = list(self._cache.get(key, {}).items())
        return [obj for (ns, _), obj in items if namespace is None or ns == namespace]

    def update_pod(
        self, namespace: str, name: str, change: Callable[[dict[str, Any]], bool], *, with_metadata: bool = False
    ) -> None:
        current = self.find(PODS, namespace, name)
        if current is None:
            return
        copy = json.loads(json.dumps(current))
        if change(copy) is False:
            return
        path = _object_path(PODS, namespace, name)
        try:
            if with_metadata:
                annotations = copy["metadata"].get("annotations") or {}
                if annotations != (current["metadata"].get("annotations") or {}):
                    self.request(
                        "PATCH",
                        path,
                        body={"metadata": {"annotations": annotations}},
                        content_type="application/merge-patch+json",
                    )
            updated = self.request(
                "PATCH",
                f"{path}/status",
                body={"status": copy.get("status") or {}},
                content_type="application/merge-patch+json",
            )
        except ApiException as exc:
            if exc.status == 404:
                return  # deleted meanwhile: normal
            raise
        with self._lock:  # read-your-writes before the watch delivers the same version
            if (namespace, name) in self._cache[PODS]:
                self._cache[PODS][(namespace, name)] = updated

    def finish_pod_delete(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": meta["uid"]},
        }
        try:
            self.request("DELETE", _object_path(PODS, meta["namespace"], meta["name"]), body=body)
        except ApiException as exc:
            if exc.status not in (404, 409):  # gone already, or a new pod of the same name
                log.warning("finishing the deletion of pod %s/%s: %s", meta["namespace"], meta["name"], exc.reason)

    def event(
        self, involved: dict[str, Any], *, type_: EventKind, reason: str, message: str, component: str = "kubelet"
    ) -> None:
        meta = involved.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        name = event_name(involved, reason=reason, message=message, component=component)
        now = _now()
        try:
            count = self._events.get(name)
            if count is not None:
                self.request(
                    "PATCH",
                    f"/api/v1/namespaces/{namespace}/events/{name}",
                    body={"count": count + 1, "lastTimestamp": now},
                    content_type="application/merge-patch+json",
                )
                self._events[name] = count + 1
                return
            # objects from a list or watch carry no kind: the kubelet's are pods
            typed = {"apiVersion": "v1", "kind": "Pod", **involved}
            body = new_event(
                typed,
                name=name,
                type_=type_,
                reason=reason,
                message=message[:1024],  # the API refuses longer notes
                component=component,
                host=self.node_name,
                now=now,
            )
            self.request("POST", f"/api/v1/namespaces/{namespace}/events", body=body)
            self._events[name] = 1
        except (ApiException, HTTPError, OSError) as exc:  # an Event is not worth failing a pod for
            log.info("event %s for %s/%s not recorded: %s", reason, namespace, meta.get("name"), exc)

    def pod_token(self, pod: dict[str, Any], projection: dict[str, Any]) -> str:
        """The kubelet's TokenRequest for a projected ``serviceAccountToken`` source: a token of the pod's
        ServiceAccount, bound to the pod (:data:`harness.embedded.volumes.TokenSource`)."""
        meta = pod["metadata"]
        account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        spec: dict[str, Any] = {
            "expirationSeconds": max(600, int(projection.get("expirationSeconds") or 3607)),
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]},
        }
        if projection.get("audience"):
            spec["audiences"] = [projection["audience"]]
        try:
            answer = self.request(
                "POST",
                f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{account}/token",
                body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
            )
        except ApiException as exc:
            raise VolumeError(
                f'failed to fetch token: serviceaccounts "{account}": {exc.status} {exc.reason}'
            ) from None
        return str(answer["status"]["token"])

    def subscribe(self, listener: Callable[[ObjectEvent], None]) -> None:
        self._listeners.append(listener)


def _object_path(key: Key, namespace: str, name: str) -> str:
    collection = _LISTS[key]
    if key in _CLUSTER_SCOPED:
        return f"{collection}/{name}"
    base, plural = collection.rsplit("/", 1)
    return f"{base}/namespaces/{namespace}/{plural}/{name}"


def _lines(response: Any) -> Iterator[bytes]:
    """The newline-delimited JSON of a watch stream, as it arrives."""
    pending = b""
    for chunk in response.stream(65536, decode_content=True):
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if line.strip():
                yield line
    if pending.strip():
        yield pending
