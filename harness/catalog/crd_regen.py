"""Regenerate ``crd_schemas/`` from the upstream CRDs pinned in ``deploy/local-kube/go.mod``.

Why: the offline schema check (:mod:`harness.catalog.validate`) is only as good as its schemas. Hand-kept subsets
drift from what the operators really serve and miss whole subtrees (pod templates, CEL-free enums, list bounds); the
real ``openAPIV3Schema`` of each CRD, taken from the very module versions the real control-plane lane builds, cannot.
One pin (go.mod) therefore decides both what runs in the local-kube lane and what the offline check accepts.

Usage (from the repository root; needs Go and the modules in the module cache, ``go mod download`` in
deploy/local-kube fetches them)::

    python -m harness.catalog.crd_regen          # rewrite crd_schemas/ (one JSON per kind and served version)
    python -m harness.catalog.crd_regen --check  # exit 1 if any file would change (CI)

Exit status: 0 up to date / written, 1 ``--check`` found drift, 2 a step failed (one line names it and the cause).

This lives in ``harness/catalog`` beside the validator and its output rather than with the Go build: it is Python
that writes a Python package's data, is linted and typed with the harness, and only *reads* go.mod.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.catalog.gomod import (
    Module,
    OutputOption,
    Regeneration,
    RegenError,
    regen_main,
    resolve_modules,
)
from harness.catalog.validate import CRD_SCHEMA_DIR


@dataclass(frozen=True, slots=True, kw_only=True)
class CrdSource:
    """One upstream CRD file and the kinds the suite takes from it (a file may hold many CRDs, e.g. Istio's)."""

    module: str
    path: str
    kinds: tuple[str, ...]


#: Only the kinds the workloads and harness create: every served version of each is written.
SOURCES: tuple[CrdSource, ...] = (
    CrdSource(
        module="sigs.k8s.io/jobset", path="config/components/crd/bases/jobset.x-k8s.io_jobsets.yaml", kinds=("JobSet",)
    ),
    CrdSource(
        module="sigs.k8s.io/kueue",
        path="config/components/crd/bases/kueue.x-k8s.io_resourceflavors.yaml",
        kinds=("ResourceFlavor",),
    ),
    CrdSource(
        module="sigs.k8s.io/kueue",
        path="config/components/crd/bases/kueue.x-k8s.io_clusterqueues.yaml",
        kinds=("ClusterQueue",),
    ),
    CrdSource(
        module="sigs.k8s.io/kueue",
        path="config/components/crd/bases/kueue.x-k8s.io_localqueues.yaml",
        kinds=("LocalQueue",),
    ),
    CrdSource(
        module="github.com/ray-project/kuberay/ray-operator",
        path="config/crd/bases/ray.io_rayclusters.yaml",
        kinds=("RayCluster",),
    ),
    CrdSource(
        module="github.com/ray-project/kuberay/ray-operator",
        path="config/crd/bases/ray.io_rayjobs.yaml",
        kinds=("RayJob",),
    ),
    CrdSource(
        module="github.com/kubeflow/mpi-operator", path="manifests/base/kubeflow.org_mpijobs.yaml", kinds=("MPIJob",)
    ),
    CrdSource(
        module="sigs.k8s.io/gateway-api",
        path="config/crd/standard/gateway.networking.k8s.io_httproutes.yaml",
        kinds=("HTTPRoute",),
    ),
    CrdSource(
        module="sigs.k8s.io/gateway-api-inference-extension",
        path="config/crd/bases/inference.networking.k8s.io_inferencepools.yaml",
        kinds=("InferencePool",),
    ),
    CrdSource(
        module="github.com/prometheus-operator/prometheus-operator",
        path="example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
        kinds=("ServiceMonitor",),
    ),
    CrdSource(
        module="istio.io/api",
        path="kubernetes/customresourcedefinitions.gen.yaml",
        kinds=("VirtualService", "DestinationRule", "PeerAuthentication"),
    ),
    CrdSource(
        module="github.com/k8snetworkplumbingwg/network-attachment-definition-client",
        path="artifacts/networks-crd.yaml",
        kinds=("NetworkAttachmentDefinition",),
    ),
)

#: Files under crd_schemas/ that no pinned module provides; the script neither rewrites nor deletes them.
HAND_KEPT: Mapping[str, str] = {
    "scheduling.volcano.sh/podgroup_v1beta1.json": "volcano.sh/volcano is not served by the module proxy",
    "inference.networking.x-k8s.io/inferencepool_v1alpha2.json": (
        "gateway-api-inference-extension no longer ships v1alpha2 (InferencePool is inference.networking.k8s.io/v1)"
    ),
    "inference.networking.x-k8s.io/inferencemodel_v1alpha2.json": (
        "gateway-api-inference-extension no longer ships InferenceModel"
    ),
}


def _crds(source: CrdSource, module: Module) -> list[dict[str, Any]]:
    path = module.directory / source.path
    try:
        text = path.read_text()
    except OSError as exc:
        raise RegenError(f"read {source.module}@{module.version} {source.path}: {exc.strerror}") from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        documents = list(yaml.load_all(text, Loader=loader))
    except yaml.YAMLError as exc:
        raise RegenError(
            f"parse {source.module}@{module.version} {source.path}: {' '.join(str(exc).split())}"
        ) from None
    return [d for d in documents if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"]


def generate(sources: Sequence[CrdSource], modules: Mapping[str, Module]) -> dict[str, dict[str, Any]]:
    """``<group>/<kind-lower>_<version>.json`` -> document, for every served version of every wanted kind."""
    out: dict[str, dict[str, Any]] = {}
    for source in sources:
        module = modules[source.module]
        seen: set[str] = set()
        for crd in _crds(source, module):
            spec = crd.get("spec") or {}
            kind = str((spec.get("names") or {}).get("kind", ""))
            if kind not in source.kinds:
                continue
            seen.add(kind)
            for version in spec.get("versions") or ():
                if not version.get("served"):
                    continue
                schema = (version.get("schema") or spec.get("validation") or {}).get("openAPIV3Schema")
                if not isinstance(schema, dict):
                    raise RegenError(
                        f"read {source.module}@{module.version} {source.path}: {kind} {version['name']} has no "
                        "openAPIV3Schema"
                    )
                name = f"{spec['group']}/{kind.lower()}_{version['name']}.json"
                out[name] = {
                    "x-aibench-source": f"{source.module}@{module.version} {source.path}, version {version['name']}",
                    "openAPIV3Schema": schema,
                }
        if missing := sorted(set(source.kinds) - seen):
            raise RegenError(f"read {source.module}@{module.version} {source.path}: no CRD for {', '.join(missing)}")
    return out


def render(document: Mapping[str, Any]) -> str:
    """The one byte form of a schema file (sorted keys, two-space indent), so --check compares text."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def plan(wanted: Mapping[str, Mapping[str, Any]], schema_dir: Path) -> tuple[dict[str, str], list[str]]:
    """(files to write with their text, stale files to delete): what differs from ``schema_dir`` now."""
    writes = {}
    for name, document in sorted(wanted.items()):
        text = render(document)
        target = schema_dir / name
        if not target.is_file() or target.read_text() != text:
            writes[name] = text
    present = {p.relative_to(schema_dir).as_posix() for p in schema_dir.glob("*/*.json")}
    stale = sorted(present - set(wanted) - set(HAND_KEPT))
    return writes, stale


def regenerate(go_module_dir: Path, schema_dir: Path) -> Regeneration:
    """The schema files to write and the stale ones to delete under ``schema_dir``, from the modules go.mod in
    ``go_module_dir`` pins."""
    modules = resolve_modules((s.module for s in SOURCES), go_module_dir=go_module_dir)
    wanted = generate(SOURCES, modules)
    if overlap := sorted(set(wanted) & set(HAND_KEPT)):
        raise RegenError(f"generate: {', '.join(overlap)} now come from upstream; drop them from HAND_KEPT")
    writes, stale = plan(wanted, schema_dir)

    def apply() -> None:
        for name, text in writes.items():
            target = schema_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            print(f"wrote {name}")
        for name in stale:
            (schema_dir / name).unlink()
            print(f"deleted {name}")

    changes = [*(f"write {name}" for name in writes), *(f"delete {name}" for name in stale)]
    return Regeneration(changes=changes, apply=apply, subject="crd_schemas/")


def main(argv: Sequence[str] | None = None) -> int:
    return regen_main(
        argv,
        module="harness.catalog.crd_regen",
        description="Regenerate crd_schemas/ from the CRDs pinned in go.mod.",
        output=OutputOption(flag="--schema-dir", default=CRD_SCHEMA_DIR, help="where the JSON schemas live"),
        regenerate=regenerate,
    )


if __name__ == "__main__":
    sys.exit(main())
