"""Regenerate ``openapi_v3.json.gz``, the built-in kinds' schemas, from kube's own generated OpenAPI v3 spec.

Why: the embedded API server publishes OpenAPI v3 (``kubectl explain``, kubectl's client-side apply) and enforces
strict field validation (``fieldValidation=Strict``) with the same schemas. Hand-written schemas would drift from
what kube-apiserver serves; the spec files kube generates from its Go types
(``api/openapi-spec/v3/*.json`` in the ``k8s.io/kubernetes`` module) cannot. The module version is the one
``deploy/local-kube/go.mod`` pins, so the embedded target and the real control-plane lane publish the same schemas.

Only what the embedded target serves is kept: for every group-version of :data:`~harness.embedded.resources.
BUILTIN_TYPES` (plus the subresource bodies in :data:`SUBRESOURCE_KINDS`) the kinds' schemas and everything they
reference, descriptions included (``kubectl explain`` prints them). Operations (``paths``) are not copied: the
server generates those for what it really routes. The data is compact JSON, gzipped; ``--check`` compares the
decompressed document, not gzip bytes (which vary with the zlib build).

Usage (from the repository root; needs Go and the module in the module cache: ``go mod download`` in
deploy/local-kube)::

    python -m harness.embedded.openapi_regen          # rewrite harness/embedded/openapi_v3.json.gz
    python -m harness.embedded.openapi_regen --check  # exit 1 if it would change (CI)

Exit status: 0 up to date / written, 1 ``--check`` found drift, 2 a step failed (one line names it and the cause).
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.catalog.gomod import OutputOption, Regeneration, RegenError, regen_main, resolve_modules
from harness.embedded.resources import BUILTIN_TYPES

KUBE_MODULE = "k8s.io/kubernetes"
SPEC_DIR = "api/openapi-spec/v3"
DATA_PATH = Path(__file__).with_name("openapi_v3.json.gz")
REF_PREFIX = "#/components/schemas/"

#: Bodies of subresources that are not resources of their own: (document's apiVersion, body's apiVersion, kind).
SUBRESOURCE_KINDS: tuple[tuple[str, str, str], ...] = (
    ("apps/v1", "autoscaling/v1", "Scale"),
    ("v1", "autoscaling/v1", "Scale"),
    ("v1", "policy/v1", "Eviction"),
    ("v1", "authentication.k8s.io/v1", "TokenRequest"),
)


def kind_key(document_version: str, api_version: str, kind: str) -> str:
    """How a kind is named in a document's ``kinds``: bare when it belongs to the document's group-version."""
    return kind if api_version == document_version else f"{api_version}/{kind}"


def served_kinds() -> dict[str, list[tuple[str, str]]]:
    """Document apiVersion -> (apiVersion, kind) the embedded target serves in it (resources and subresource
    bodies), sorted."""
    out: dict[str, set[tuple[str, str]]] = {}
    for rtype in BUILTIN_TYPES:
        out.setdefault(rtype.api_version, set()).add((rtype.api_version, rtype.kind))
    for document, api_version, kind in SUBRESOURCE_KINDS:
        out.setdefault(document, set()).add((api_version, kind))
    return {gv: sorted(kinds) for gv, kinds in sorted(out.items())}


def spec_file(api_version: str) -> str:
    """kube's file name for a group-version's document (``apis__apps__v1_openapi.json``)."""
    group, _, version = api_version.rpartition("/")
    return f"apis__{group}__{version}_openapi.json" if group else f"api__{version}_openapi.json"


def schema_refs(node: Any) -> list[str]:
    """The schema names ``node`` references (``$ref: #/components/schemas/<name>``), at any depth."""
    out: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            ref = current.get("$ref")
            if isinstance(ref, str) and ref.startswith(REF_PREFIX):
                out.append(ref[len(REF_PREFIX) :])
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
    return out


def ref_closure(roots: Iterable[str], schemas: Mapping[str, Any]) -> set[str]:
    """The schemas ``roots`` reach through ``$ref``, roots included; a reference ``schemas`` does not define raises
    KeyError naming it (the generator turns it into a RegenError, the served document never has one)."""
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        if name not in schemas:
            raise KeyError(name)
        seen.add(name)
        pending.extend(schema_refs(schemas[name]))
    return seen


def _schema_for_kind(schemas: Mapping[str, Any], api_version: str, kind: str) -> str | None:
    group, _, version = api_version.rpartition("/")
    for name, schema in schemas.items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or ():
            if gvk.get("group", "") == group and gvk.get("version") == version and gvk.get("kind") == kind:
                return name
    return None


def generate(spec_dir: Path, module_version: str, wanted: Mapping[str, Sequence[tuple[str, str]]]) -> dict[str, Any]:
    """The data document: per group-version its kinds and schema closure, and every kept schema once."""
    all_schemas: dict[str, Any] = {}
    group_versions: dict[str, Any] = {}
    for document_version, kinds in wanted.items():
        name = spec_file(document_version)
        where = f"{KUBE_MODULE}@{module_version} {SPEC_DIR}/{name}"
        try:
            document = json.loads((spec_dir / name).read_text())
        except OSError as exc:
            raise RegenError(f"read {where}: {exc.strerror}") from None
        except ValueError as exc:
            raise RegenError(f"parse {where}: {exc}") from None
        schemas = (document.get("components") or {}).get("schemas") or {}
        roots: dict[str, str] = {}
        for api_version, kind in kinds:
            found = _schema_for_kind(schemas, api_version, kind)
            if found is None:
                raise RegenError(f"read {where}: no schema for {api_version} {kind}")
            roots[kind_key(document_version, api_version, kind)] = found
        try:
            closure = ref_closure(roots.values(), schemas)
        except KeyError as exc:
            raise RegenError(f"{where}: $ref to {exc.args[0]}, which the document does not define") from None
        for schema_name in closure:
            previous = all_schemas.setdefault(schema_name, schemas[schema_name])
            if previous != schemas[schema_name]:
                raise RegenError(f"read {where}: {schema_name} differs from the same schema in another group-version")
        group_versions[document_version] = {"file": f"{SPEC_DIR}/{name}", "kinds": roots, "schemas": sorted(closure)}
    return {
        "x-aibench-source": f"{KUBE_MODULE}@{module_version} {SPEC_DIR} (python -m harness.embedded.openapi_regen)",
        "groupVersions": group_versions,
        "schemas": dict(sorted(all_schemas.items())),
    }


def render(document: Mapping[str, Any]) -> bytes:
    """The one compact byte form (sorted keys), gzipped without a timestamp."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return gzip.compress(text, compresslevel=9, mtime=0)


def load(path: Path = DATA_PATH) -> dict[str, Any]:
    """The committed data document (what the server reads at start)."""
    loaded: dict[str, Any] = json.loads(gzip.decompress(path.read_bytes()))
    return loaded


def regenerate(go_module_dir: Path, output: Path) -> Regeneration:
    """Rewrite ``output`` when its document differs from the one kube's spec (pinned in go.mod) gives now; an
    unreadable ``output`` is said on stderr and counts as different."""
    module = resolve_modules([KUBE_MODULE], go_module_dir=go_module_dir)[KUBE_MODULE]
    document = generate(module.directory / SPEC_DIR, module.version, served_kinds())
    current: dict[str, Any] | None = None
    if output.is_file():
        try:
            current = load(output)
        except (OSError, ValueError, EOFError) as exc:
            print(f"openapi_regen: read {output}: {exc}", file=sys.stderr)

    def apply() -> None:
        if current != document:
            output.write_bytes(render(document))
            print(f"wrote {output} ({len(document['schemas'])} schemas, {len(document['groupVersions'])} versions)")

    return Regeneration(changes=[] if current == document else [f"write {output}"], apply=apply, subject=str(output))


def main(argv: Sequence[str] | None = None) -> int:
    return regen_main(
        argv,
        module="harness.embedded.openapi_regen",
        description="Regenerate the embedded target's OpenAPI v3 schemas from kube's spec pinned in go.mod.",
        output=OutputOption(flag="--output", default=DATA_PATH, help="the gzipped JSON to write or check"),
        regenerate=regenerate,
    )


if __name__ == "__main__":
    sys.exit(main())
