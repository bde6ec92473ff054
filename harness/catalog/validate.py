"""Schema validation of rendered manifests: core kinds against kubernetes-validate, CRDs against shipped schemas.

Why one object: kubernetes-validate's ``validate()`` re-reads and re-parses the schema files on every call
(10-17 ms a manifest, measured in ../shared/research). :class:`ManifestValidator` loads each schema once, keeps
one ``jsonschema`` validator per (Kubernetes version, apiVersion, kind) and reuses it.

Custom resources (MPIJob, JobSet, RayJob, Istio VirtualService, Gateway API HTTPRoute, ServiceMonitor...) are not in
kubernetes-validate. Their ``openAPIV3Schema`` blocks, taken from the upstream CRDs at the versions named in each
file, live under ``harness/catalog/crd_schemas/<group>/<kind-lower>_<version>.json`` and are validated the same way.
A kind with no schema is an error, not a silent pass: every manifest we ship must be checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

#: Kubernetes minor versions the shipped manifests must be valid for (oldest supported GKE/EKS/AKS to newest).
SUPPORTED_VERSIONS: tuple[str, ...] = ("1.31", "1.33", "1.35")
CRD_SCHEMA_DIR = Path(__file__).with_name("crd_schemas")


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemaProblem:
    """One manifest that did not validate: where, against which version, and the first error's path and message."""

    source: str
    kind: str
    name: str
    version: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return f"{self.source}: {self.kind}/{self.name} (Kubernetes {self.version}){where}: {self.message}"


class ManifestValidator:
    """Validate manifest dicts; build once per process (module-scoped fixture, CLI command), reuse for all."""

    def __init__(self, *, versions: Iterable[str] = SUPPORTED_VERSIONS, crd_dir: Path = CRD_SCHEMA_DIR) -> None:
        self._versions = tuple(versions)
        self._crd_dir = crd_dir
        self._validators: dict[tuple[str, str, str], Any] = {}
        self._crd_schemas: dict[tuple[str, str], Any] = {}
        self._registries: dict[str, Any] = {}

    @cached_property
    def _schema_root(self) -> Path:
        try:
            import kubernetes_validate
        except ImportError:
            raise ConfigError(
                "manifest validation needs the kubernetes-validate package (pip install kubernetes-validate)"
            ) from None
        return Path(str(resources.files(kubernetes_validate).joinpath("kubernetes-json-schema")))

    def _schema_dir(self, version: str) -> Path:
        """The newest bundled schema set that is not newer than ``version`` (what kubernetes-validate does)."""
        wanted = _minor_tuple(version)
        candidates = sorted(
            (
                (_minor_tuple(p.name[1:].removesuffix("-local-strict")), p)
                for p in self._schema_root.iterdir()
                if p.name.startswith("v") and p.name.endswith("-local-strict")
            ),
            key=lambda item: item[0],
        )
        usable = [p for minor, p in candidates if minor <= wanted]
        if not usable:
            raise ConfigError(f"kubernetes-validate has no schemas for Kubernetes {version}")
        return usable[-1]

    def _core_validator(self, version: str, api_version: str, kind: str) -> Any | None:
        import jsonschema
        from referencing import Registry, Resource

        group_version = api_version.split("/")
        group = group_version[0].split(".")[0] if len(group_version) == 2 else ""
        suffix = f"{group}-{group_version[-1]}" if group else group_version[-1]
        directory = self._schema_dir(version)
        path = directory / f"{kind.lower()}-{suffix}.json"
        if not path.exists():
            return None
        registry = self._registries.get(str(directory))
        if registry is None:
            definitions = json.loads((directory / "_definitions.json").read_text())
            registry = Resource.from_contents(definitions) @ Registry()
            self._registries[str(directory)] = registry
        schema = json.loads(path.read_text())
        registry = Resource.from_contents(schema) @ registry
        return jsonschema.Draft202012Validator(schema, registry=registry)

    def _crd_validator(self, api_version: str, kind: str) -> Any | None:
        import jsonschema

        if "/" not in api_version:
            return None
        group, version = api_version.split("/", 1)
        path = self._crd_dir / group / f"{kind.lower()}_{version}.json"
        if not path.exists():
            return None
        document = json.loads(path.read_text())
        schema = document.get("openAPIV3Schema", document)
        self._crd_schemas[(api_version, kind)] = schema
        return jsonschema.Draft4Validator(_openapi_to_jsonschema(schema))

    def _validator(self, version: str, api_version: str, kind: str) -> Any:
        key = (version, api_version, kind)
        if key not in self._validators:
            validator = self._core_validator(version, api_version, kind) or self._crd_validator(api_version, kind)
            if validator is None:
                raise ConfigError(
                    f"no schema for {kind} ({api_version}): not a Kubernetes {version} kind and no CRD schema under "
                    f"{self._crd_dir}"
                )
            self._validators[key] = validator
        return self._validators[key]

    def _embedded_error(self, version: str, key: tuple[str, str], document: Mapping[str, Any]) -> Any | None:
        """The first error inside the core objects a CRD embeds (pod templates), with the full path."""
        schema = self._crd_schemas.get(key)
        for path, core_type, sub in _embedded_core_objects(schema, document) if schema is not None else ():
            validator = self._validator(version, "v1", core_type)
            error = next(iter(sorted(validator.iter_errors(sub), key=lambda e: list(e.path))), None)
            if error is not None:
                error.path.extendleft(reversed(path))
                return error
        return None

    def problems(self, document: Mapping[str, Any], *, source: str) -> list[SchemaProblem]:
        """Every supported version's first error for ``document`` (empty when it is valid everywhere)."""
        kind = str(document.get("kind", ""))
        api_version = str(document.get("apiVersion", ""))
        name = str((document.get("metadata") or {}).get("name", "?"))
        found: list[SchemaProblem] = []
        for version in self._versions:
            validator = self._validator(version, api_version, kind)
            error = next(iter(sorted(validator.iter_errors(document), key=lambda e: list(e.path))), None)
            if error is None:
                error = self._embedded_error(version, (api_version, kind), document)
            if error is not None:
                found.append(
                    SchemaProblem(
                        source=source,
                        kind=kind,
                        name=name,
                        version=version,
                        path=".".join(str(p) for p in error.absolute_path),
                        message=error.message,
                    )
                )
        return found


def _embedded_core_objects(
    schema: Any, document: Any, path: tuple[Any, ...] = ()
) -> Iterator[tuple[tuple[Any, ...], str, Any]]:
    """(path, core type, sub-document) for each field a CRD schema marks ``x-aibench-core: <Type>``.

    Why: operators' CRDs (KubeRay, MPI Operator) embed pod templates, and a hand-kept CRD schema should not copy
    the whole PodSpec; marked fields are validated against the core type of the Kubernetes version instead.
    """
    if not isinstance(schema, dict):
        return
    if core := schema.get("x-aibench-core"):
        yield path, str(core), document
        return
    if isinstance(document, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key in document:
                yield from _embedded_core_objects(sub, document[key], (*path, key))
    elif isinstance(document, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(document):
            yield from _embedded_core_objects(schema["items"], item, (*path, index))


def _minor_tuple(version: str) -> tuple[int, int]:
    major, minor = version.lstrip("v").split(".")[:2]
    return int(major), int(minor)


def _openapi_to_jsonschema(schema: Any) -> Any:
    """OpenAPI v3 structural schema -> JSON Schema: ``nullable`` becomes a type union; x-kubernetes-* stay inert.

    ``x-kubernetes-int-or-string`` fields carry no ``type``; ``x-kubernetes-preserve-unknown-fields`` objects carry
    no ``properties`` and so accept anything, as the API server does.
    """
    if isinstance(schema, list):
        return [_openapi_to_jsonschema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: _openapi_to_jsonschema(value) for key, value in schema.items()}
    if converted.pop("nullable", False) and "type" in converted:
        converted["type"] = [converted["type"], "null"]
    if converted.get("x-kubernetes-int-or-string"):
        converted.pop("type", None)
        converted["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return converted
