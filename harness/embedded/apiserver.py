"""The API verbs of the embedded server, independent of HTTP: create, get, list, update, patch, delete, watch.

The HTTP layer (:mod:`harness.embedded.httpserver`) parses a request into a :class:`Request` and calls
:meth:`ApiServer.handle`; everything about Kubernetes semantics lives here, so tests of semantics do not need
sockets and the transport stays small.
"""

from __future__ import annotations

import base64
import contextvars
import dataclasses
import json
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import yaml

from harness.embedded import apierrors, discovery, fieldvalidation, reviews
from harness.embedded.admission import AdmissionContext, admit, check_immutable
from harness.embedded.identity import (
    ADMIN,
    ServiceAccountTokens,
    UserInfo,
)
from harness.embedded.objects import clone, rfc3339
from harness.embedded.patch import PatchError, json_merge_patch, json_patch, strategic_merge_patch
from harness.embedded.podsubresources import ExecHook, ExecTarget, LogSource, PodSubresources
from harness.embedded.resources import Registry, ResourceType, crd_resource_types
from harness.embedded.schemas import FieldTree, SchemaSet, shared_schema_set
from harness.embedded.selectors import SelectorError, parse_field_selector, parse_label_selector
from harness.embedded.store import Store, Watcher, WatchEvent

if TYPE_CHECKING:
    from harness.embedded.tables import IncludeObject

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 3 * 1024 * 1024  # kube-apiserver's default request body limit
CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")

# Warnings of the request being handled (kube's warning.AddWarning): one list per request, per thread.
_warnings: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("warnings", default=None)


def add_warning(text: str) -> None:
    """Attach a ``Warning: 299`` header to the current request's response."""
    current = _warnings.get()
    if current is not None and text not in current:
        current.append(text)


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """A parsed API request. ``rtype`` is None for non-resource paths (handled by the HTTP layer)."""

    verb: str  # get list watch create update patch delete deletecollection
    rtype: ResourceType
    namespace: str
    name: str = ""
    subresource: str = ""
    query: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_type: str = "application/json"
    accept: str = "application/json"
    user: UserInfo = ADMIN


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    """A complete (non-streaming) reply."""

    code: int
    body: dict[str, Any] | bytes
    content_type: str = "application/json"
    warnings: tuple[str, ...] = ()


@dataclass(slots=True, kw_only=True)
class WatchStream:
    """An open watch: backlog first, then live events from ``watcher`` until ``deadline`` (monotonic)."""

    watcher: Watcher
    backlog: list[WatchEvent]
    matches: Callable[[dict[str, Any]], bool]
    bookmarks: bool
    timeout_s: float
    kind: str
    api_version: str
    initial_events_end: bool = False


class DeletionHook(Protocol):
    """Decides whether deleting an object is graceful (someone must finish it, e.g. a running pod)."""

    def __call__(self, rtype: ResourceType, obj: dict[str, Any], grace_period_s: int | None) -> bool: ...


def _never_graceful(rtype: ResourceType, obj: dict[str, Any], grace_period_s: int | None) -> bool:
    return False


class ApiServer:
    """Kubernetes API semantics over a :class:`Store`."""

    def __init__(
        self,
        store: Store,
        admission: AdmissionContext,
        *,
        logs: LogSource | None = None,
        graceful_delete: DeletionHook = _never_graceful,
        exec_hook: ExecHook | None = None,
        max_watch_s: float = 1800.0,
        schemas: SchemaSet | None = None,
    ) -> None:
        self.store = store
        self.registry: Registry = store.registry
        self.admission = admission
        self.logs = logs
        self.graceful_delete = graceful_delete
        self.exec_hook = exec_hook
        self.max_watch_s = max_watch_s
        self.schemas = schemas if schemas is not None else shared_schema_set()
        self.tokens = ServiceAccountTokens(self._lookup)
        self.pods = PodSubresources(store, tokens=self.tokens, logs=logs, exec_hook=exec_hook)
        self.build_date = rfc3339()
        self._verbs: dict[str, Callable[[Request], Response | WatchStream | Iterator[bytes]]] = {
            "get": self._get,
            "list": self._list,
            "watch": self._watch,
            "create": self._create,
            "update": self._update,
            "patch": self._patch,
            "delete": self._delete,
            "deletecollection": self._delete_collection,
        }
        store.add_listener(self._on_event)

    def _lookup(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        rtype = self.registry.for_kind("v1", kind)
        return self.store.find(rtype.key, namespace, name) if rtype is not None else None

    # ------------------------------------------------------------------ CRDs become routable on creation
    def _on_event(self, event: WatchEvent) -> None:
        if event.key != ("apiextensions.k8s.io", "customresourcedefinitions"):
            return
        if event.type == "DELETED":
            spec = event.obj.get("spec", {})
            self.registry.remove_group_resource(spec.get("group", ""), spec.get("names", {}).get("plural", ""))
            self._purge(spec.get("group", ""), spec.get("names", {}).get("plural", ""))
        else:
            for rtype in crd_resource_types(event.obj):
                self.registry.add(rtype)

    def _purge(self, group: str, plural: str) -> None:
        """Remove every object of a resource whose CRD is gone (kube's customresourcecleanup finalizer)."""
        key = (group, plural)
        for obj in list(self.store.iter(key)):
            metadata = obj["metadata"]
            rtype = crd_resource_types(
                {
                    "spec": {
                        "group": group,
                        "names": {"plural": plural, "kind": obj["kind"]},
                        "versions": [{"name": obj["apiVersion"].split("/")[-1]}],
                        "scope": "Namespaced" if metadata.get("namespace") else "Cluster",
                    }
                }
            )[0]
            self.store.finish_delete(rtype, metadata.get("namespace", ""), metadata["name"])

    # ------------------------------------------------------------------ dispatch
    def handle(self, req: Request) -> Response | WatchStream | Iterator[bytes]:
        """Serve one request; warnings raised while serving it travel on the :class:`Response`."""
        collected: list[str] = []
        token = _warnings.set(collected)
        try:
            result = self._handle(req)
        finally:
            _warnings.reset(token)
        if collected and isinstance(result, Response):
            return dataclasses.replace(result, warnings=tuple(collected))
        return result

    def _handle(self, req: Request) -> Response | WatchStream | Iterator[bytes]:
        if req.subresource == "log":
            return self._log(req)
        serve = self._verbs.get(req.verb)
        if serve is None:
            raise apierrors.method_not_allowed(req.verb, req.rtype.plural)
        return serve(req)

    # ------------------------------------------------------------------ reads
    def _get(self, req: Request) -> Response:
        obj = self.store.get(req.rtype, req.namespace, req.name)
        return Response(code=200, body=_scale_of(obj) if req.subresource == "scale" else obj)

    def _selected(self, req: Request) -> Callable[[dict[str, Any]], bool]:
        try:
            labels = parse_label_selector(req.query["labelSelector"]) if req.query.get("labelSelector") else None
            fields = parse_field_selector(req.query["fieldSelector"]) if req.query.get("fieldSelector") else None
        except SelectorError as exc:
            raise apierrors.bad_request(str(exc)) from exc
        if labels is None and fields is None:
            return lambda obj: True

        def matches(obj: dict[str, Any]) -> bool:
            if labels is not None and not labels.matches(obj["metadata"].get("labels") or {}):
                return False
            return fields is None or fields.matches(obj)

        return matches

    def _list(self, req: Request) -> Response:
        matches = self._selected(req)
        namespace = req.namespace if req.rtype.namespaced and req.namespace else None
        with self.store.lock:
            rv = self.store.resource_version
            items = [obj for obj in self.store.iter(req.rtype.key, namespace) if matches(obj)]
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        list_meta: dict[str, Any] = {"resourceVersion": str(rv)}
        start = 0
        if req.query.get("continue"):
            try:
                token = json.loads(base64.urlsafe_b64decode(req.query["continue"]))
                after = (token["ns"], token["name"])
            except (ValueError, KeyError, TypeError) as exc:
                raise apierrors.bad_request(f"invalid continue token: {exc}") from exc
            start = next(
                (i for i, o in enumerate(items) if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > after),
                len(items),
            )
        limit = _int_param(req.query, "limit", 0)
        page = items[start : start + limit] if limit > 0 else items[start:]
        if limit > 0 and start + limit < len(items):
            last = page[-1]["metadata"]
            list_meta["continue"] = base64.urlsafe_b64encode(
                json.dumps({"ns": last.get("namespace", ""), "name": last["name"], "rv": rv}).encode()
            ).decode()
            list_meta["remainingItemCount"] = len(items) - start - limit
        if "as=Table" in req.accept:
            from harness.embedded.tables import to_table

            include = _include_object(req.query)
            return Response(
                code=200,
                body=to_table(req.rtype.kind, page, now=datetime.now(UTC), list_meta=list_meta, include_object=include),
            )
        return Response(
            code=200,
            body={
                "kind": req.rtype.list_kind,
                "apiVersion": req.rtype.api_version,
                "metadata": list_meta,
                "items": page,
            },
        )

    def table_for(self, req: Request, obj: dict[str, Any]) -> dict[str, Any]:
        """Table rendering of a single object (``kubectl get pod x``)."""
        from harness.embedded.tables import to_table

        return to_table(
            req.rtype.kind,
            [obj],
            now=datetime.now(UTC),
            list_meta={"resourceVersion": obj["metadata"].get("resourceVersion", "")},
            include_object=_include_object(req.query),
        )

    def _watch(self, req: Request) -> WatchStream:
        matches = self._selected(req)
        if req.name:
            base, name = matches, req.name

            def matches(obj: dict[str, Any]) -> bool:
                return obj["metadata"]["name"] == name and base(obj)

        rv_text = req.query.get("resourceVersion", "")
        since = None
        if rv_text not in ("", "0"):
            try:
                since = int(rv_text)
            except ValueError as exc:
                raise apierrors.bad_request(f"invalid resource version: {rv_text!r}") from exc
        initial = req.query.get("sendInitialEvents") in ("true", "1")
        namespace = req.namespace if req.rtype.namespaced and req.namespace else None
        watcher, backlog = self.store.watch(req.rtype.key, namespace, None if initial else since)
        timeout = float(_int_param(req.query, "timeoutSeconds", 0)) or self.max_watch_s
        return WatchStream(
            watcher=watcher,
            backlog=backlog,
            matches=matches,
            bookmarks=req.query.get("allowWatchBookmarks") in ("true", "1"),
            timeout_s=min(timeout, self.max_watch_s),
            kind=req.rtype.kind,
            api_version=req.rtype.api_version,
            initial_events_end=initial,
        )

    def _log(self, req: Request) -> Response | Iterator[bytes]:
        if req.rtype.kind != "Pod" or req.verb != "get":
            raise apierrors.method_not_allowed(req.verb, f"{req.rtype.plural}/log")
        body = self.pods.log(req.namespace, req.name, req.query)
        return Response(code=200, body=body, content_type="text/plain") if isinstance(body, bytes) else body

    # ------------------------------------------------------------------ writes
    def _decode(self, req: Request) -> Any:
        if len(req.body) > MAX_BODY_BYTES:
            raise apierrors.ApiError(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728")
        if not req.body:
            raise apierrors.bad_request("the request body is empty")
        try:
            if "yaml" in req.content_type:
                return fieldvalidation.loads_yaml(req.body)
            return fieldvalidation.loads_json(req.body)
        except (ValueError, yaml.YAMLError) as exc:
            raise apierrors.bad_request(
                f"the body of the request could not be decoded: {str(exc).splitlines()[0]}"
            ) from exc

    def _dry_run(self, req: Request) -> bool:
        return req.query.get("dryRun") == "All"

    # ------------------------------------------------------------------ strict field validation
    def _directive(self, req: Request, options_kind: str) -> fieldvalidation.Directive:
        text = req.query.get("fieldValidation") or "Warn"
        for directive in fieldvalidation.DIRECTIVES:
            if text == directive:
                return directive
        raise apierrors.ApiError(
            422,
            "Invalid",
            f'{options_kind}.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "{text}": '
            'supported values: "Ignore", "Strict", "Warn"',
        )

    def field_tree(self, rtype: ResourceType, subresource: str = "") -> FieldTree | None:
        """What the decoder of ``rtype`` knows: kube's schema for built-in kinds, the CRD's for custom ones."""
        body_kind = _SUBRESOURCE_BODIES.get(subresource)
        if body_kind is not None:
            return self.schemas.builtin_tree(*body_kind)
        if rtype.builtin:
            return self.schemas.builtin_tree(rtype.api_version, rtype.kind)
        crd = self.store.find(CRDS, "", f"{rtype.plural}.{rtype.group}")
        return self.schemas.crd_tree(crd, rtype.version) if crd is not None else None

    def _check_fields(self, req: Request, obj: Any, options_kind: str) -> list[str]:
        """Prune unknown fields from ``obj``; answer per the request's ``fieldValidation``: the violations
        (Strict: the caller fails the request), warnings (Warn) or nothing (Ignore)."""
        directive = self._directive(req, options_kind)
        tree = self.field_tree(req.rtype, req.subresource) if isinstance(obj, dict) else None
        if tree is None:
            return []
        found = fieldvalidation.violations(tree, obj, custom=not req.rtype.builtin)
        if directive == "Warn":
            for text in found:
                add_warning(text)
        return found if directive == "Strict" else []

    def _warn_unenforced(self, rtype: ResourceType) -> None:
        """Objects the target keeps but does not act on say so on every write (kubectl prints the Warning)."""
        if rtype.group == "admissionregistration.k8s.io":
            add_warning(f"the embedded target stores {rtype.kind} objects but does not evaluate admission policies")

    def _strict_decode(self, req: Request, obj: Any, options_kind: str) -> None:
        """create/update: a Strict violation is a 400 worded as kube's transformDecodeError."""
        found = self._check_fields(req, obj, options_kind)
        if found:
            api_version, kind = _SUBRESOURCE_BODIES.get(req.subresource, (req.rtype.api_version, req.rtype.kind))
            version = api_version.rpartition("/")[2]
            raise apierrors.bad_request(
                f'{kind} in version "{version}" cannot be handled as a {kind}: {fieldvalidation.strict_message(found)}'
            )

    def _create(self, req: Request) -> Response:
        if req.subresource == "binding" or req.rtype.kind == "Binding":
            return self._bind(req)
        if req.subresource == "eviction":
            return self._evict(req)
        if req.subresource == "token":
            return self._token_request(req)
        if req.rtype.kind in reviews.REVIEW_KINDS:
            return Response(code=201, body=reviews.answer(req.rtype, self._decode(req), req.user))
        if req.subresource:
            raise apierrors.method_not_allowed("create", f"{req.rtype.plural}/{req.subresource}")
        obj = self._decode(req)
        self._strict_decode(req, obj, "CreateOptions")
        self._warn_unenforced(req.rtype)
        uid = str(uuid.uuid4())
        obj = admit(req.rtype, obj, namespace=req.namespace, ctx=self.admission, uid=uid, creating=True)
        if self._dry_run(req):
            return Response(code=201, body=obj)
        return Response(code=201, body=self.store.create(req.rtype, req.namespace, obj, uid=uid))

    def _update(self, req: Request) -> Response:
        obj = self._decode(req)
        if not isinstance(obj, dict):
            raise apierrors.bad_request("the body of the request must be a JSON object")
        self._strict_decode(req, obj, "UpdateOptions")
        self._warn_unenforced(req.rtype)
        return Response(code=200, body=self._write(req, obj))

    def _write(self, req: Request, obj: dict[str, Any]) -> dict[str, Any]:
        rtype = req.rtype
        body_name = (obj.get("metadata") or {}).get("name")
        if body_name and body_name != req.name:
            raise apierrors.bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({req.name})"
            )
        obj.setdefault("metadata", {})["name"] = req.name
        if req.subresource == "scale":
            return self._write_scale(req, obj)
        if req.subresource not in ("", "status", "finalize"):
            raise apierrors.method_not_allowed("update", f"{rtype.plural}/{req.subresource}")
        current = self.store.get(rtype, req.namespace, req.name)
        if req.subresource == "finalize":
            updated = clone(current)
            updated["spec"]["finalizers"] = (obj.get("spec") or {}).get("finalizers") or []
            return self.store.replace(rtype, req.namespace, req.name, updated)
        if not req.subresource:
            obj = admit(
                rtype, obj, namespace=req.namespace, ctx=self.admission, uid=current["metadata"]["uid"], creating=False
            )
            if rtype.builtin:
                check_immutable(rtype, current, obj)
        expect_rv = (obj.get("metadata") or {}).get("resourceVersion") or None
        if self._dry_run(req):
            return obj
        return self.store.replace(
            rtype, req.namespace, req.name, obj, subresource=req.subresource or None, expect_rv=expect_rv
        )

    def _patch(self, req: Request) -> Response:
        rtype = req.rtype
        content_type = req.content_type.split(";")[0].strip()
        patch = self._decode(req)
        if content_type == "application/apply-patch+yaml":
            return self._apply(req, patch)
        current = self.store.get(rtype, req.namespace, req.name)
        base = _scale_of(current) if req.subresource == "scale" else current
        try:
            if content_type == "application/json-patch+json":
                if not isinstance(patch, list):
                    raise apierrors.bad_request("a JSON patch must be a list of operations")
                patched = json_patch(base, patch)
            elif content_type == "application/merge-patch+json":
                _require_object(patch)
                patched = json_merge_patch(base, patch)
            elif content_type == "application/strategic-merge-patch+json":
                if not rtype.builtin:
                    raise apierrors.unsupported_media_type(content_type)
                _require_object(patch)
                patched = strategic_merge_patch(base, patch, rtype.kind)
            else:
                raise apierrors.unsupported_media_type(content_type)
        except PatchError as exc:
            raise apierrors.ApiError(422, "Invalid", str(exc)) from exc
        if not isinstance(patched, dict):
            raise apierrors.bad_request("the patched object is not a JSON object")
        self._strict_patch(req, patch, patched)
        patched_rv = (patched.get("metadata") or {}).get("resourceVersion")
        if req.subresource != "scale" and patched_rv != current["metadata"]["resourceVersion"]:
            # A patch that names a resourceVersion is a precondition (kube semantics); otherwise it is dropped.
            patch_meta = patch.get("metadata") if isinstance(patch, dict) else None
            if not (isinstance(patch_meta, dict) and "resourceVersion" in patch_meta):
                patched.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
        return Response(code=200, body=self._write(req, patched))

    def _strict_patch(self, req: Request, patch: Any, patched: dict[str, Any]) -> None:
        """A patch's duplicate keys and the patched object's unknown fields; a Strict violation is kube's 422
        on the field ``patch``."""
        duplicates = fieldvalidation.duplicate_fields(patch)
        found = self._check_fields(req, patched, "PatchOptions")
        directive = self._directive(req, "PatchOptions")
        if directive == "Warn":
            for text in duplicates:
                add_warning(text)
        if directive == "Strict" and (duplicates or found):
            message = fieldvalidation.strict_message(list(dict.fromkeys(duplicates + found)))
            body = f"Invalid value: {json.dumps(json.dumps(patched, separators=(',', ':')))}: {message}"
            raise apierrors.ApiError(
                422,
                "Invalid",
                f' "" is invalid: patch: {body}',
                details={"causes": [{"reason": "FieldValueInvalid", "message": body, "field": "patch"}]},
            )

    def _apply(self, req: Request, applied: Any) -> Response:
        """Server-side apply, approximated: create when absent, else merge the applied intent (no field managers).

        Field ownership and conflict detection are not modelled; a second manager's apply simply wins, as if
        ``force=true`` were always given. Documented in the embedded target's README.
        """
        _require_object(applied)
        existing = self.store.find(req.rtype.key, req.namespace if req.rtype.namespaced else "", req.name)
        if existing is None:
            created = self._create(
                Request(
                    verb="create",
                    rtype=req.rtype,
                    namespace=req.namespace,
                    query=req.query,
                    body=json.dumps(applied).encode(),
                )
            )
            return created
        self._strict_decode(req, applied, "PatchOptions")
        merged = (
            strategic_merge_patch(existing, applied, req.rtype.kind)
            if req.rtype.builtin
            else json_merge_patch(existing, applied)
        )
        merged.setdefault("metadata", {})["resourceVersion"] = existing["metadata"]["resourceVersion"]
        return Response(code=200, body=self._write(req, merged))

    def _write_scale(self, req: Request, scale: dict[str, Any]) -> dict[str, Any]:
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise apierrors.invalid(
                "autoscaling",
                "Scale",
                req.name,
                [("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0")],
            )

        def change(obj: dict[str, Any]) -> None:
            obj["spec"]["replicas"] = replicas

        updated = self.store.mutate(req.rtype, req.namespace, req.name, change)
        if updated is None:
            raise apierrors.not_found(req.rtype.group, req.rtype.plural, req.name)
        return _scale_of(updated)

    def _bind(self, req: Request) -> Response:
        binding = self._decode(req)
        _require_object(binding)
        self.pods.bind(req.namespace, req.name, binding)
        return _SUCCESS_201

    def _evict(self, req: Request) -> Response:
        self.pods.respect_disruption_budget(self.store.get(req.rtype, req.namespace, req.name))
        self._delete(Request(verb="delete", rtype=req.rtype, namespace=req.namespace, name=req.name))
        return _SUCCESS_201

    def _token_request(self, req: Request) -> Response:
        request = self._decode(req)
        _require_object(request)
        self._strict_decode(req, request, "CreateOptions")
        return Response(code=201, body=self.pods.token_request(req.namespace, req.name, request))

    def pod_token(self, pod: dict[str, Any], projection: dict[str, Any]) -> str:
        """The kubelet's TokenRequest for a projected ServiceAccount token (see :meth:`PodSubresources.pod_token`)."""
        return self.pods.pod_token(pod, projection)

    def exec_target(self, namespace: str, name: str, container: str) -> ExecTarget:
        return self.pods.exec_target(namespace, name, container)

    def portforward_target(self, namespace: str, name: str) -> tuple[str, str]:
        return self.pods.portforward_target(namespace, name)

    # ------------------------------------------------------------------ deletes
    def _delete_options(self, req: Request) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if req.body:
            decoded = self._decode(req)
            if isinstance(decoded, dict):
                options = decoded
        for key in ("propagationPolicy", "gracePeriodSeconds", "dryRun"):
            if key in req.query:
                options[key] = req.query[key]
        if options.get("orphanDependents") in (True, "true") and "propagationPolicy" not in options:
            options["propagationPolicy"] = "Orphan"
        policy = options.get("propagationPolicy")
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise apierrors.bad_request(
                f'unsupported propagationPolicy "{policy}": use Orphan, Background or Foreground'
            )
        return options

    def _delete_one(
        self, rtype: ResourceType, namespace: str, name: str, options: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        grace = options.get("gracePeriodSeconds")
        grace_s = int(grace) if grace not in (None, "") else None
        preconditions = options.get("preconditions") or {}
        current = self.store.get(rtype, namespace, name)
        graceful = rtype.kind == "Namespace" or self.graceful_delete(rtype, current, grace_s)
        if options.get("dryRun") in ("All", ["All"]):
            return current, False
        return self.store.delete(
            rtype,
            namespace,
            name,
            propagation=options.get("propagationPolicy"),
            precondition_uid=preconditions.get("uid"),
            precondition_rv=preconditions.get("resourceVersion"),
            graceful=graceful,
            grace_period_s=0 if rtype.kind == "Namespace" else grace_s,
        )

    def _delete(self, req: Request) -> Response:
        if req.subresource:
            raise apierrors.method_not_allowed("delete", f"{req.rtype.plural}/{req.subresource}")
        options = self._delete_options(req)
        obj, removed = self._delete_one(req.rtype, req.namespace, req.name, options)
        if req.rtype.kind == "Namespace" and not removed:
            obj = self.store.mutate(req.rtype, "", req.name, _mark_terminating, subresource="status") or obj
        if req.rtype.returns_deleted_object or not removed:
            return Response(code=200 if removed else 202 if req.rtype.kind != "Pod" else 200, body=obj)
        details: dict[str, Any] = {"name": req.name, "kind": req.rtype.plural, "uid": obj["metadata"]["uid"]}
        if req.rtype.group:
            details["group"] = req.rtype.group
        return Response(
            code=200,
            body={"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details},
        )

    def _delete_collection(self, req: Request) -> Response:
        options = self._delete_options(req)
        matches = self._selected(req)
        namespace = req.namespace if req.rtype.namespaced else None
        for obj in [o for o in self.store.iter(req.rtype.key, namespace) if matches(o)]:
            try:
                self._delete_one(req.rtype, obj["metadata"].get("namespace", ""), obj["metadata"]["name"], options)
            except apierrors.ApiError as exc:
                if exc.code != 404:
                    raise
        return Response(code=200, body={"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})

    # ------------------------------------------------------------------ OpenAPI v3
    def openapi_group_version(self, group: str, version: str) -> bytes | None:
        """``/openapi/v3/<gv>``: kube's schemas for built-in kinds, the CRD's for custom ones."""
        crds = list(self.store.iter(CRDS)) if group and not self.schemas.builtin_group_version(group, version) else []
        return self.schemas.openapi_document(self.registry, crds, group, version)

    def openapi_root(self) -> dict[str, Any]:
        """``/openapi/v3``: one entry per served group-version, its URL carrying a hash of the content (kubectl
        caches documents by it)."""
        paths: dict[str, Any] = {}
        for group, version in sorted({(t.group, t.version) for t in self.registry.types()}):
            body = self.openapi_group_version(group, version)
            if body is None:
                continue
            path = f"apis/{group}/{version}" if group else f"api/{version}"
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={self.schemas.document_hash(body)}"}
        return {"paths": paths}

    def version(self) -> dict[str, str]:
        return discovery.version_info(self.build_date)


#: Subresources whose body is a kind of its own (kube's decoder for them knows that kind's fields).
_SUBRESOURCE_BODIES: dict[str, tuple[str, str]] = {
    "scale": ("autoscaling/v1", "Scale"),
    "token": ("authentication.k8s.io/v1", "TokenRequest"),
}


_SUCCESS_201 = Response(
    code=201, body={"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
)


_INCLUDE_OBJECT: dict[str, IncludeObject] = {"None": "None", "Metadata": "Metadata", "Object": "Object"}


def _include_object(query: Mapping[str, str]) -> IncludeObject:
    """The Table request's ``includeObject`` (default Metadata); anything else is a 400, as kube validates it."""
    text = query.get("includeObject", "Metadata")
    if text not in _INCLUDE_OBJECT:
        raise apierrors.bad_request(f"includeObject must be None, Metadata or Object, not {text!r}")
    return _INCLUDE_OBJECT[text]


def _mark_terminating(ns: dict[str, Any]) -> bool:
    if ns.get("status", {}).get("phase") == "Terminating":
        return False
    ns.setdefault("status", {})["phase"] = "Terminating"
    return True


def _scale_of(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj["metadata"]
    selector = (obj.get("spec") or {}).get("selector") or {}
    text = ",".join(f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items())
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: metadata[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in metadata
        },
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
        "status": {"replicas": (obj.get("status") or {}).get("replicas", 0), "selector": text},
    }


def _require_object(body: Any) -> None:
    if not isinstance(body, dict):
        raise apierrors.bad_request(f"the body of the request must be a JSON object, not {type(body).__name__}")


def _int_param(query: Mapping[str, str], name: str, default: int) -> int:
    text = query.get(name)
    if text in (None, ""):
        return default
    try:
        return int(text)
    except ValueError as exc:
        raise apierrors.bad_request(f"invalid value for query parameter {name}: {text!r}") from exc
