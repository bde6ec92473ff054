"""The schemas the embedded API server publishes and validates against: kube's for built-in kinds, CRDs' own.

Built-in kinds come from ``openapi_v3.json.gz`` (kube's generated spec, see :mod:`harness.embedded.openapi_regen`);
a custom resource's schema is its CRD version's ``openAPIV3Schema``, read from the stored CRD. Both feed two uses:

* ``/openapi/v3`` documents (:meth:`SchemaSet.openapi_document`), which ``kubectl explain`` and kubectl's
  client-side apply read;
* :class:`FieldTree` walks for strict field validation (:mod:`harness.embedded.fieldvalidation`), compiled once
  per kind: a tree of known fields with the ``$ref``/``allOf`` indirections resolved, so a walk costs a dict
  lookup per field.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from harness.embedded.openapi_regen import DATA_PATH, REF_PREFIX, load, ref_closure
from harness.embedded.resources import Registry, ResourceType

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_PARAMETERS = [
    {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
    for name in ("dryRun", "fieldManager", "fieldValidation")
]


@dataclass(slots=True, eq=False)
class FieldTree:
    """Known fields of one schema node, as the decoder of its kind sees them.

    ``properties`` None means "any content" (RawExtension, FieldsV1, a schema-less node of a built-in kind);
    an empty dict means "no field is known" (a structural CRD object without properties: everything is pruned).
    """

    properties: dict[str, FieldTree] | None = None
    items: FieldTree | None = None
    additional: FieldTree | None = None
    preserve_unknown: bool = False  # x-kubernetes-preserve-unknown-fields (CRDs)
    embedded_resource: bool = False  # x-kubernetes-embedded-resource, and every resource root

    @property
    def checks_fields(self) -> bool:
        return self.properties is not None or self.additional is not None


ANY = FieldTree()


def _deref(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    if ref is None and schema.get("allOf"):
        ref = schema["allOf"][0].get("$ref")
    return ref[len(REF_PREFIX) :] if isinstance(ref, str) and ref.startswith(REF_PREFIX) else None


class _BuiltinCompiler:
    """Go-struct semantics: a node with properties rejects other fields, one without accepts anything."""

    def __init__(self, schemas: dict[str, Any]) -> None:
        self.schemas = schemas
        self.done: dict[str, FieldTree] = {}

    def named(self, name: str) -> FieldTree:
        tree = self.done.get(name)
        if tree is None:
            tree = FieldTree()
            self.done[name] = tree  # before filling: schemas are recursive (JSONSchemaProps)
            self._fill(tree, self.schemas[name])
        return tree

    def node(self, schema: Any) -> FieldTree:
        if not isinstance(schema, dict):
            return ANY
        name = _deref(schema)
        if name is not None:
            return self.named(name)
        tree = FieldTree()
        self._fill(tree, schema)
        return tree

    def _fill(self, tree: FieldTree, schema: dict[str, Any]) -> None:
        if isinstance(schema.get("properties"), dict):
            tree.properties = {key: self.node(sub) for key, sub in schema["properties"].items()}
        if isinstance(schema.get("items"), dict):
            tree.items = self.node(schema["items"])
        if isinstance(schema.get("additionalProperties"), dict):
            tree.additional = self.node(schema["additionalProperties"])
        elif schema.get("additionalProperties") is True:
            tree.additional = ANY


def structural_tree(schema: Any, object_meta: FieldTree, *, root: bool = False) -> FieldTree:
    """A CRD's ``openAPIV3Schema`` with the apiextensions pruning rules: an object node knows its properties
    (and ``additionalProperties``) only, unless it preserves unknown fields; a resource root and every embedded
    resource keep ``apiVersion``/``kind`` and validate ``metadata`` as ObjectMeta."""
    if not isinstance(schema, dict):
        return FieldTree(properties={})
    tree = FieldTree(
        preserve_unknown=bool(schema.get("x-kubernetes-preserve-unknown-fields")),
        embedded_resource=root or bool(schema.get("x-kubernetes-embedded-resource")),
    )
    props = schema.get("properties")
    tree.properties = {
        key: structural_tree(sub, object_meta) for key, sub in (props.items() if isinstance(props, dict) else ())
    }
    if tree.embedded_resource:
        tree.properties["metadata"] = object_meta
        tree.properties.setdefault("apiVersion", ANY)
        tree.properties.setdefault("kind", ANY)
    if isinstance(schema.get("items"), dict):
        tree.items = structural_tree(schema["items"], object_meta)
    additional = schema.get("additionalProperties")
    if isinstance(additional, dict):
        tree.additional = structural_tree(additional, object_meta)
    elif additional is True:
        tree.additional = ANY
    return tree


@dataclass
class SchemaSet:
    """Loaded schemas, compiled trees (per kind, on first use) and rendered OpenAPI documents (cached)."""

    data_path: Path = DATA_PATH
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _trees: dict[tuple[str, str], FieldTree | None] = field(default_factory=dict)
    _crd_trees: dict[tuple[str, str, str], tuple[str, FieldTree]] = field(default_factory=dict)
    _documents: dict[str, bytes] = field(default_factory=dict)

    @cached_property
    def data(self) -> dict[str, Any]:
        return load(self.data_path)

    @cached_property
    def _compiler(self) -> _BuiltinCompiler:
        return _BuiltinCompiler(self.data["schemas"])

    @property
    def source(self) -> str:
        return str(self.data["x-aibench-source"])

    def builtin_schema_name(self, api_version: str, kind: str) -> str | None:
        entry = self.data["groupVersions"].get(api_version)
        return entry["kinds"].get(kind) if entry else None

    def builtin_group_version(self, group: str, version: str) -> bool:
        return (f"{group}/{version}" if group else version) in self.data["groupVersions"]

    def builtin_tree(self, api_version: str, kind: str) -> FieldTree | None:
        """The field tree of a built-in kind; None when kube's spec has none for it."""
        key = (api_version, kind)
        with self._lock:
            if key not in self._trees:
                name = self.builtin_schema_name(api_version, kind)
                self._trees[key] = self._compiler.named(name) if name else None
            return self._trees[key]

    def object_meta_tree(self) -> FieldTree:
        with self._lock:
            return self._compiler.named(OBJECT_META)

    def crd_tree(self, crd: dict[str, Any], version: str) -> FieldTree | None:
        """The pruning tree of one version of a stored CRD (cached per CRD resourceVersion); None without a
        schema (a CRD that preserves everything)."""
        schema = _crd_version_schema(crd, version)
        if schema is None:
            return None
        meta = crd.get("metadata") or {}
        key = (str(meta.get("uid", "")), str(meta.get("name", "")), version)
        rv = str(meta.get("resourceVersion", ""))
        cached = self._crd_trees.get(key)
        if cached is not None and cached[0] == rv:
            return cached[1]
        tree = structural_tree(schema, self.object_meta_tree(), root=True)
        self._crd_trees[key] = (rv, tree)
        return tree

    # ------------------------------------------------------------------ OpenAPI v3 documents
    def openapi_document(
        self, registry: Registry, crds: list[dict[str, Any]], group: str, version: str
    ) -> bytes | None:
        """``/openapi/v3/<gv>``: kube's component schemas of the served kinds (custom ones from their CRD) and
        the create/patch/update operations the server routes, with the parameters kubectl looks for."""
        api_version = f"{group}/{version}" if group else version
        types = sorted(
            (t for t in registry.types() if t.group == group and t.version == version), key=lambda t: t.plural
        )
        if not types:
            return None
        custom = [t for t in types if not t.builtin]
        cache_key = api_version if not custom else ""
        if cache_key and cache_key in self._documents:
            return self._documents[cache_key]
        schemas: dict[str, Any] = {}
        entry = self.data["groupVersions"].get(api_version)
        if entry:
            for name in entry["schemas"]:
                schemas[name] = self.data["schemas"][name]
        refs: dict[str, str] = {}
        for rtype in custom:
            crd = next((c for c in crds if _crd_serves(c, rtype)), None)
            name, schema = _crd_component(crd, rtype)
            schemas[name] = schema
            refs[rtype.kind] = name
        if custom:
            for name in ref_closure([OBJECT_META], self.data["schemas"]):
                schemas.setdefault(name, self.data["schemas"][name])
        paths = {}
        for rtype in types:
            builtin_name = entry["kinds"].get(rtype.kind) if entry else None
            schema_name = builtin_name if rtype.builtin else refs.get(rtype.kind)
            paths.update(_operations(rtype, schema_name))
        document = {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "unversioned"},
            "paths": paths,
            "components": {"schemas": schemas},
        }
        body = json.dumps(document, separators=(",", ":")).encode()
        if cache_key:
            self._documents[cache_key] = body
        return body

    def document_hash(self, body: bytes) -> str:
        return hashlib.sha512(body).hexdigest()[:64].upper()


def _crd_serves(crd: dict[str, Any], rtype: ResourceType) -> bool:
    spec = crd.get("spec") or {}
    return spec.get("group") == rtype.group and (spec.get("names") or {}).get("plural") == rtype.plural


def _crd_version_schema(crd: dict[str, Any], version: str) -> dict[str, Any] | None:
    spec = crd.get("spec") or {}
    for entry in spec.get("versions") or ():
        if entry.get("name") == version:
            schema = ((entry.get("schema") or {}).get("openAPIV3Schema")) or None
            return schema if isinstance(schema, dict) else None
    return None


def _reverse_domain(group: str) -> str:
    return ".".join(reversed(group.split(".")))


def _crd_component(crd: dict[str, Any] | None, rtype: ResourceType) -> tuple[str, dict[str, Any]]:
    """A CRD version's schema as the apiextensions server publishes it: the kind's GVK extension, apiVersion
    and kind described, metadata a reference to ObjectMeta."""
    name = f"{_reverse_domain(rtype.group)}.{rtype.version}.{rtype.kind}"
    schema = dict(_crd_version_schema(crd, rtype.version) or {} if crd else {})
    schema.setdefault("type", "object")
    properties = dict(schema.get("properties") or {})
    properties["apiVersion"] = {
        "type": "string",
        "description": "APIVersion defines the versioned schema of this representation of an object.",
    }
    properties["kind"] = {"type": "string", "description": "Kind is a string value representing the REST resource."}
    properties["metadata"] = {
        "allOf": [{"$ref": REF_PREFIX + OBJECT_META}],
        "description": "Standard object's metadata.",
    }
    schema["properties"] = properties
    schema["x-kubernetes-group-version-kind"] = [{"group": rtype.group, "version": rtype.version, "kind": rtype.kind}]
    return name, schema


def _gv_path(group: str, version: str) -> str:
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


def _operations(rtype: ResourceType, schema_name: str | None) -> dict[str, Any]:
    """create on the collection; read, replace and patch on an object, each with the GVK extension."""
    gvk = {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}
    base = _gv_path(rtype.group, rtype.version) + ("/namespaces/{namespace}" if rtype.namespaced else "")
    body: dict[str, Any] = {}
    if schema_name:
        content = {"application/json": {"schema": {"$ref": REF_PREFIX + schema_name}}}
        body = {"requestBody": {"content": content, "required": True}}

    def op(action: str, op_id: str, with_body: bool) -> dict[str, Any]:
        operation: dict[str, Any] = {
            "operationId": f"{op_id}{rtype.kind}",
            "parameters": _PARAMETERS,
            "responses": {"200": {"description": "OK"}},
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
        }
        if with_body:
            operation.update(body)
        return operation

    out: dict[str, Any] = {f"{base}/{rtype.plural}": {"post": op("post", "create", True)}}
    if "get" in rtype.verbs:
        out[f"{base}/{rtype.plural}/{{name}}"] = {
            "get": op("get", "read", False),
            "put": op("put", "replace", True),
            "patch": op("patch", "patch", False),
        }
    return out


@cache
def shared_schema_set() -> SchemaSet:
    """One loaded, compiled set per process: every embedded cluster of a test session shares it."""
    return SchemaSet()
