"""Strict field validation as kube-apiserver does it: unknown and duplicate fields under ``fieldValidation``.

kube decodes every write into its Go type (built-in kinds) or prunes it with the CRD's structural schema (custom
resources). A field the type does not know is dropped; what happens then depends on the request's
``fieldValidation`` parameter (KEP-2885):

* ``Strict`` (kubectl's default): the request fails, 400 ``Pod in version "v1" cannot be handled as a Pod:
  strict decoding error: unknown field "spec.containers[0].resources.limit"`` (all violations, comma separated);
* ``Warn`` (the server's default when the parameter is absent): the write succeeds without the field and each
  violation comes back as a ``Warning: 299`` header (kubectl prints ``Warning: unknown field ...``);
* ``Ignore``: the write succeeds without the field, silently.

Duplicate keys in a JSON object are violations too (``duplicate field "spec.replicas"``); the last one wins.
Messages and paths follow sigs.k8s.io/json (built-in kinds: document order) and the apiextensions pruning
(custom resources: paths sorted, ``metadata`` ones first). Unknown fields are never stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from harness.embedded.schemas import FieldTree

Directive = Literal["Strict", "Warn", "Ignore"]
DIRECTIVES: tuple[Directive, ...] = ("Ignore", "Strict", "Warn")
_META_FIELDS = frozenset(("apiVersion", "kind", "metadata"))


class DuplicateKeysDict(dict[str, Any]):
    """A decoded JSON/YAML object that had repeated keys (the last value kept, as Go's decoder does)."""

    __slots__ = ("duplicates",)

    def __init__(self, pairs: list[tuple[str, Any]], duplicates: list[str]) -> None:
        super().__init__(pairs)
        self.duplicates = duplicates


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    seen: set[str] = set()
    duplicates: list[str] = []
    for key, _ in pairs:
        if key in seen and key not in duplicates:
            duplicates.append(key)
        seen.add(key)
    return DuplicateKeysDict(pairs, duplicates)


def loads_json(data: bytes) -> Any:
    """``json.loads`` that remembers duplicate keys (one Python call per object; no cost without duplicates)."""
    return json.loads(data, object_pairs_hook=_object_pairs)


class _DuplicateAwareLoader(yaml.SafeLoader):
    """SafeLoader whose mappings remember duplicate keys instead of silently keeping the last one."""


def _construct_mapping(loader: _DuplicateAwareLoader, node: yaml.MappingNode) -> dict[str, Any]:
    loader.flatten_mapping(node)
    pairs = [(loader.construct_object(k, deep=True), loader.construct_object(v, deep=True)) for k, v in node.value]
    return _object_pairs(pairs)


_DuplicateAwareLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def loads_yaml(data: bytes) -> Any:
    return yaml.load(data, Loader=_DuplicateAwareLoader)


@dataclass(slots=True)
class _Walk:
    violations: list[str]
    prune: bool


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _walk(tree: FieldTree, value: Any, path: str, walk: _Walk) -> None:
    if isinstance(value, dict):
        if isinstance(value, DuplicateKeysDict):
            walk.violations.extend(f'duplicate field "{_join(path, key)}"' for key in value.duplicates)
        properties = tree.properties
        additional = tree.additional
        if properties is None and additional is None:
            return
        for key in list(value):
            child = properties.get(key) if properties is not None else None
            if child is None:
                child = additional
            if child is None:
                if tree.preserve_unknown or (tree.embedded_resource and key in _META_FIELDS):
                    continue
                walk.violations.append(f'unknown field "{_join(path, key)}"')
                if walk.prune:
                    del value[key]
                continue
            sub = value[key]
            if isinstance(sub, dict | list):
                _walk(child, sub, _join(path, key), walk)
    elif isinstance(value, list):
        items = tree.items
        if items is None:
            return
        for index, item in enumerate(value):
            if isinstance(item, dict | list):
                _walk(items, item, f"{path}[{index}]", walk)


def violations(tree: FieldTree, obj: dict[str, Any], *, custom: bool, prune: bool = True) -> list[str]:
    """Unknown and duplicate fields of ``obj`` (pruned from it in place when ``prune``), in kube's order and
    wording: document order for built-in kinds, sorted (metadata first) for custom resources."""
    walk = _Walk(violations=[], prune=prune)
    _walk(tree, obj, "", walk)
    if custom and walk.violations:
        meta = [v for v in walk.violations if v.startswith(('unknown field "metadata.', 'duplicate field "metadata.'))]
        duplicates = [v for v in walk.violations if v.startswith("duplicate") and v not in meta]
        rest = sorted(v for v in walk.violations if v not in meta and v not in duplicates)
        walk.violations = duplicates + meta + rest
    return walk.violations


def strict_message(violations_found: list[str]) -> str:
    """``runtime.strictDecodingError``'s text."""
    return "strict decoding error: " + ", ".join(violations_found)


def duplicate_fields(value: Any, path: str = "") -> list[str]:
    """``duplicate field`` violations anywhere in a decoded document (a patch body, which has no schema)."""
    found: list[str] = []
    if isinstance(value, dict):
        if isinstance(value, DuplicateKeysDict):
            found.extend(f'duplicate field "{_join(path, key)}"' for key in value.duplicates)
        for key, sub in value.items():
            if isinstance(sub, dict | list):
                found.extend(duplicate_fields(sub, _join(path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, dict | list):
                found.extend(duplicate_fields(item, f"{path}[{index}]"))
    return found
