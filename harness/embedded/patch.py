"""The three PATCH content types of the Kubernetes API, applied to plain JSON dicts.

* ``application/merge-patch+json`` -> ``json_merge_patch`` (RFC 7386): maps merge, lists are replaced, ``null``
  deletes.
* ``application/json-patch+json`` -> ``json_patch`` (RFC 6902): an ordered list of operations on JSON pointers.
* ``application/strategic-merge-patch+json`` -> ``strategic_merge_patch``: kube's own dialect, which is what
  ``kubectl apply``/``kubectl patch`` send by default. Lists such as ``containers`` merge element-wise by a
  *merge key* instead of being replaced, and ``$``-directives delete or reorder elements.

Kube derives the strategic-merge rules from the Go struct tags (``patchStrategy``/``patchMergeKey``) of the
built-in types. The embedded server has no Go types, so the rules are keyed by field name, with context only
where one name means two things (``ports`` of a container merge by ``containerPort``, those of a Service by
``port``). That covers every built-in kind; custom resources have no such tags and kube answers a strategic
merge patch for them with **415 Unsupported Media Type** - the server must do the same *before* calling
``strategic_merge_patch`` rather than guessing.

All functions return a new object and never mutate their inputs, so a failed patch leaves the stored object
untouched and the server can compare old and new to decide whether to bump ``resourceVersion``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "ListRule",
    "PatchError",
    "json_merge_patch",
    "json_patch",
    "list_rule",
    "strategic_merge_patch",
]


class PatchError(ValueError):
    """A patch that cannot be applied; the server answers it with 422 (or 400 for a malformed patch)."""


# --- RFC 7386 --------------------------------------------------------------------------------------------------


def _merge_patch_value(target: Any, patch: Any) -> Any:
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result: dict[str, Any] = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch_value(result.get(key), value)
    return result


def json_merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Apply an RFC 7386 merge patch; untouched subtrees are deep-copied so the result shares nothing."""
    if not isinstance(patch, Mapping):
        raise PatchError("merge patch must be a JSON object")
    result = _merge_patch_value(copy.deepcopy(dict(target)), patch)
    return dict(result)


# --- RFC 6902 --------------------------------------------------------------------------------------------------


def _parse_pointer(pointer: Any, field: str = "path") -> list[str]:
    """Split an RFC 6901 pointer into unescaped tokens (``~1`` -> ``/``, ``~0`` -> ``~``)."""
    if not isinstance(pointer, str):
        raise PatchError(f"{field} must be a string JSON pointer, got {pointer!r}")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"invalid JSON pointer {pointer!r}: must be empty or start with '/'")
    tokens = []
    for raw in pointer[1:].split("/"):
        stripped = raw.replace("~0", "").replace("~1", "")
        if "~" in stripped:
            raise PatchError(f"invalid JSON pointer {pointer!r}: '~' must be escaped as ~0 or ~1")
        tokens.append(raw.replace("~1", "/").replace("~0", "~"))
    return tokens


def _array_index(token: str, length: int, pointer: str, *, allow_end: bool) -> int:
    """Resolve an array token; ``-`` (append) and ``index == length`` are only valid for ``add``."""
    if token == "-" and allow_end:
        return length
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r} in {pointer!r}")
    index = int(token)
    limit = length if allow_end else length - 1
    if index > limit:
        raise PatchError(f"array index {index} out of bounds in {pointer!r} (length {length})")
    return index


def _resolve(doc: Any, tokens: Sequence[str], pointer: str) -> Any:
    current = doc
    for token in tokens:
        if isinstance(current, dict):
            if token not in current:
                raise PatchError(f"doc is missing path: {pointer!r}")
            current = current[token]
        elif isinstance(current, list):
            current = current[_array_index(token, len(current), pointer, allow_end=False)]
        else:
            raise PatchError(f"doc is missing path: {pointer!r}")
    return current


@dataclass(slots=True, kw_only=True)
class _Doc:
    """Mutable holder so that operations on the root pointer ``""`` can replace the whole document."""

    root: Any

    def get(self, pointer: str) -> Any:
        return _resolve(self.root, _parse_pointer(pointer), pointer)

    def _parent(self, pointer: str) -> tuple[Any, str] | None:
        """The container the pointer's last token is in, and that token; None for the root pointer ``""``."""
        tokens = _parse_pointer(pointer)
        if not tokens:
            return None
        return _resolve(self.root, tokens[:-1], pointer), tokens[-1]

    def add(self, pointer: str, value: Any) -> None:
        self._put(pointer, value, replace=False)

    def remove(self, pointer: str) -> Any:
        found = self._parent(pointer)
        if found is None:
            raise PatchError("cannot remove the document root")
        parent, last = found
        if isinstance(parent, dict):
            if last not in parent:
                raise PatchError(f"unable to remove nonexistent key: {last!r} at {pointer!r}")
            return parent.pop(last)
        if isinstance(parent, list):
            return parent.pop(_array_index(last, len(parent), pointer, allow_end=False))
        raise PatchError(f"doc is missing path: {pointer!r}")

    def replace(self, pointer: str, value: Any) -> None:
        self._put(pointer, value, replace=True)

    def _put(self, pointer: str, value: Any, *, replace: bool) -> None:
        """``add`` and ``replace`` differ only in what must be there already: ``replace`` needs the key or the
        element it overwrites, ``add`` inserts into an array (``-`` appends) and sets an object's key."""
        found = self._parent(pointer)
        if found is None:
            self.root = value
            return
        parent, last = found
        if isinstance(parent, dict):
            if replace and last not in parent:
                raise PatchError(f"replace operation does not apply: doc is missing key: {pointer!r}")
            parent[last] = value
        elif isinstance(parent, list):
            index = _array_index(last, len(parent), pointer, allow_end=not replace)
            if replace:
                parent[index] = value
            else:
                parent.insert(index, value)
        elif replace:
            raise PatchError(f"doc is missing path: {pointer!r}")
        else:
            raise PatchError(f"doc is missing path: {pointer!r}: parent is not an object or array")


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: unlike Python's ``==``, ``true`` is not ``1`` and object key order is irrelevant."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _require(op: Mapping[str, Any], field: str, index: int) -> Any:
    if field not in op:
        raise PatchError(f"operation {index} ({op.get('op')!r}) is missing required field {field!r}")
    return op[field]


def json_patch(target: Mapping[str, Any], ops: Sequence[Any]) -> dict[str, Any]:
    """Apply an RFC 6902 patch atomically: any failing operation raises and nothing is changed."""
    if not isinstance(ops, list):
        raise PatchError("JSON patch must be an array of operations")
    doc = _Doc(root=copy.deepcopy(dict(target)))
    for index, op in enumerate(ops):
        if not isinstance(op, Mapping):
            raise PatchError(f"operation {index} is not an object")
        name = op.get("op")
        path = _require(op, "path", index)
        if name == "add":
            doc.add(path, copy.deepcopy(_require(op, "value", index)))
        elif name == "remove":
            doc.remove(path)
        elif name == "replace":
            doc.replace(path, copy.deepcopy(_require(op, "value", index)))
        elif name in ("move", "copy"):
            source = _require(op, "from", index)
            source_tokens = _parse_pointer(source, "from")
            if name == "move":
                dest_tokens = _parse_pointer(path)
                if len(dest_tokens) > len(source_tokens) and dest_tokens[: len(source_tokens)] == source_tokens:
                    raise PatchError(f"cannot move {source!r} into its own child {path!r}")
                if source == path:
                    doc.get(source)
                    continue
                doc.add(path, doc.remove(source))
            else:
                doc.add(path, copy.deepcopy(doc.get(source)))
        elif name == "test":
            expected = _require(op, "value", index)
            actual = doc.get(path)
            if not _json_equal(actual, expected):
                raise PatchError(f"testing value {path!r} failed: expected {expected!r}, found {actual!r}")
        else:
            raise PatchError(f"unexpected kind of operation {name!r} at index {index}")
    if not isinstance(doc.root, dict):
        raise PatchError("patched document is not a JSON object")
    return doc.root


# --- strategic merge patch ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ListRule:
    """How a list field merges: by ``merge_key`` for lists of objects, or as a set for primitive lists."""

    merge_key: str | None


_PRIMITIVE_SET: Final = ListRule(merge_key=None)

# patchMergeKey of built-in list fields (k8s.io/api struct tags), keyed by field name; see ``list_rule`` for the
# names whose meaning depends on where they occur. Fields not listed (tolerations, envFrom, args, command,
# readinessGates, containerStatuses, ...) are atomic and replaced as a whole, exactly as in kube.
_MERGE_KEYS: Final[Mapping[str, str]] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "volumes": "name",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "schedulingGates": "name",
    "ownerReferences": "uid",
    "podIPs": "ip",
    "hostIPs": "ip",
}
_CONTAINER_LISTS: Final = frozenset({"containers", "initContainers", "ephemeralContainers"})


def list_rule(path: Sequence[str], kind: str | None = None) -> ListRule | None:
    """The merge rule for the list at ``path`` (object keys only, list positions omitted); None = replace.

    ``kind`` only disambiguates; the field-name table is good for every built-in kind.
    """
    if not path:
        return None
    field = path[-1]
    parent = path[-2] if len(path) > 1 else ""
    if field == "ports":
        if parent in _CONTAINER_LISTS:
            return ListRule(merge_key="containerPort")
        if tuple(path) == ("spec", "ports") and kind in (None, "Service"):
            return ListRule(merge_key="port")
        return None
    if field == "finalizers":
        return _PRIMITIVE_SET if parent == "metadata" else None
    if field == "conditions":
        return ListRule(merge_key="type") if parent == "status" else None
    if field == "addresses":
        return ListRule(merge_key="type") if tuple(path) == ("status", "addresses") else None
    if field == "secrets" and kind in (None, "ServiceAccount") and len(path) == 1:
        return ListRule(merge_key="name")
    key = _MERGE_KEYS.get(field)
    return ListRule(merge_key=key) if key else None


_DIRECTIVE: Final = "$patch"
_RETAIN_KEYS: Final = "$retainKeys"
_DELETE_PRIMITIVE: Final = "$deleteFromPrimitiveList/"
_SET_ORDER: Final = "$setElementOrder/"


class _Deleted:
    """Sentinel returned for a map carrying ``$patch: delete``: its parent drops the key or element."""


_DELETED: Final = _Deleted()


def _merge_value(original: Any, patch: Any, path: tuple[str, ...], kind: str | None) -> Any:
    if isinstance(patch, Mapping):
        return _merge_map(original if isinstance(original, Mapping) else {}, patch, path, kind)
    if isinstance(patch, list):
        rule = list_rule(path, kind)
        base = original if isinstance(original, list) and rule is not None else []
        return _merge_list(base, patch, rule, path, kind)
    return copy.deepcopy(patch)


def _merge_map(
    original: Mapping[str, Any], patch: Mapping[str, Any], path: tuple[str, ...], kind: str | None
) -> dict[str, Any] | _Deleted:
    directive = patch.get(_DIRECTIVE)
    if directive == "delete":
        return _DELETED
    if directive == "replace":
        rest = {k: v for k, v in patch.items() if k != _DIRECTIVE}
        return _merge_map({}, rest, path, kind)
    if directive not in (None, "merge"):
        raise PatchError(f"unknown patch type: {directive!r} in map at {'.'.join(path) or '<root>'}")

    result: dict[str, Any] = dict(original)  # shallow: the caller deep-copied the target once
    retain = patch.get(_RETAIN_KEYS)
    if retain is not None:
        if not isinstance(retain, list) or not all(isinstance(k, str) for k in retain):
            raise PatchError(f"$retainKeys must be a list of field names at {'.'.join(path) or '<root>'}")
        for key in list(result):
            if key not in retain:
                del result[key]

    # $deleteFromPrimitiveList applies to the original list before the patch's additions, like kube.
    for key, value in patch.items():
        if key.startswith(_DELETE_PRIMITIVE):
            field = key[len(_DELETE_PRIMITIVE) :]
            if not isinstance(value, list):
                raise PatchError(f"{key} must be a list")
            current = result.get(field)
            if isinstance(current, list):
                result[field] = [item for item in current if item not in value]

    for key, value in patch.items():
        if key in (_DIRECTIVE, _RETAIN_KEYS) or key.startswith((_DELETE_PRIMITIVE, _SET_ORDER)):
            continue
        if value is None:
            result.pop(key, None)
            continue
        merged = _merge_value(result.get(key), value, (*path, key), kind)
        if merged is _DELETED:
            result.pop(key, None)
        else:
            result[key] = merged

    for key, value in patch.items():
        if key.startswith(_SET_ORDER):
            field = key[len(_SET_ORDER) :]
            current = result.get(field)
            rule = list_rule((*path, field), kind)
            if isinstance(current, list) and isinstance(value, list) and rule is not None:
                result[field] = _apply_order(current, value, rule)
    return result


def _merge_list(
    original: list[Any], patch: list[Any], rule: ListRule | None, path: tuple[str, ...], kind: str | None
) -> list[Any]:
    replace = any(isinstance(item, Mapping) and item.get(_DIRECTIVE) == "replace" and len(item) == 1 for item in patch)
    items = [item for item in patch if not (isinstance(item, Mapping) and len(item) == 1 and _DIRECTIVE in item)]
    if rule is None or replace:
        fresh = [_merge_value(None, item, path, kind) for item in items]
        return [item for item in fresh if item is not _DELETED]
    if rule.merge_key is None:
        result = list(original)
        for item in items:
            if item not in result:
                result.append(copy.deepcopy(item))
        return result

    key = rule.merge_key
    result = list(original)
    for item in items:
        if not isinstance(item, Mapping):
            raise PatchError(f"list {'.'.join(path)} must contain objects merged by {key!r}, got {item!r}")
        if key not in item:
            raise PatchError(f"map: {dict(item)!r} does not contain declared merge key: {key}")
        wanted = item[key]
        if item.get(_DIRECTIVE) == "delete":
            result = [r for r in result if not (isinstance(r, Mapping) and r.get(key) == wanted)]
            continue
        for index, existing in enumerate(result):
            if isinstance(existing, Mapping) and existing.get(key) == wanted:
                merged = _merge_map(existing, item, path, kind)
                if merged is _DELETED:
                    del result[index]
                else:
                    result[index] = merged
                break
        else:
            merged = _merge_map({}, item, path, kind)
            if not isinstance(merged, _Deleted):
                result.append(merged)
    return result


def _apply_order(current: list[Any], order: list[Any], rule: ListRule) -> list[Any]:
    """Honour ``$setElementOrder``: listed elements take the given order, others keep their slots.

    Kube interleaves server-only elements by their original position; keeping them in place is the same for
    every list ``kubectl apply`` produces, and anything unusable (unhashable keys) leaves the list untouched.
    """
    key = rule.merge_key

    def identity(item: Any) -> Any:
        return item.get(key) if key is not None and isinstance(item, Mapping) else item

    try:
        wanted = [identity(entry) for entry in order]
        rank = {value: position for position, value in enumerate(wanted)}
        listed = sorted((item for item in current if identity(item) in rank), key=lambda item: rank[identity(item)])
    except TypeError:
        return current
    slots = iter(listed)
    return [next(slots) if identity(item) in rank else item for item in current]


def strategic_merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any], kind: str | None) -> dict[str, Any]:
    """Apply a Kubernetes strategic merge patch to a built-in object.

    Supports ``null`` deletion, ``$patch: replace|delete`` in maps and list elements, a ``{"$patch":
    "replace"}`` element replacing a whole list, ``$deleteFromPrimitiveList/<field>``,
    ``$setElementOrder/<field>`` and ``$retainKeys``. Only call this for built-in kinds: for custom resources
    the server must answer 415 as kube does.
    """
    if not isinstance(patch, Mapping):
        raise PatchError("strategic merge patch must be a JSON object")
    result = _merge_map(copy.deepcopy(dict(target)), patch, (), kind)
    if isinstance(result, _Deleted):
        raise PatchError("$patch: delete at the top level would delete the whole object")
    return result
