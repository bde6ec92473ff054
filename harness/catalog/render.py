"""Render a workload's manifests: ``${param}`` substitution, image rewriting for a registry mirror.

Unknown placeholders and undeclared parameters are errors (a misspelt ``${sise}`` must not become an empty
string), and every image goes through :func:`rewrite_image` so an air-gapped cluster pulls from its mirror.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.catalog.spec import WorkloadSpec
from harness.errors import ConfigError

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)\}")
DOCKER_HUB = "docker.io"


@dataclass(frozen=True, slots=True, kw_only=True)
class Rendered:
    """Manifests ready to apply, the scripts for the ConfigMap, and the effective parameters."""

    documents: tuple[dict[str, Any], ...]
    scripts: Mapping[str, str]
    params: Mapping[str, str]


def rewrite_image(image: str, registry: str | None) -> str:
    """``docker.io/library/python:3.11`` -> ``mirror.example/library/python:3.11`` (also for short names).

    A reference with both tag and digest (``fio:v1.2.0@sha256:...``, as a release pins our images) keeps only the
    tag in the mirror: ``images build --push`` rebuilds our images there, and a rebuild (or a copy that drops the
    multi-arch index) has another digest, so the released one would never resolve. A digest-only reference keeps
    its digest: it names nothing a mirror could hold under a tag."""
    if not registry:
        return image
    name, _, digest = image.partition("@")
    if digest and ":" in name.rsplit("/", 1)[-1]:
        image = name
    first, _, rest = image.partition("/")
    has_registry = bool(rest) and ("." in first or ":" in first or first == "localhost")
    path = rest if has_registry else (image if "/" in image else f"library/{image}")
    return f"{registry}/{path}"


def effective_params(spec: WorkloadSpec, given: Mapping[str, Any]) -> dict[str, str]:
    unknown = sorted(set(given) - set(spec.params))
    if unknown:
        raise ConfigError(
            f"workload {spec.name}: unknown parameter {unknown[0]!r} "
            f"(declared: {', '.join(sorted(spec.params)) or 'none'})"
        )
    params: dict[str, str] = {}
    for name, param in spec.params.items():
        value = given.get(name, param.default)
        if value is None:
            raise ConfigError(f"workload {spec.name}: parameter {name!r} has no default and was not given")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if param.choices and text not in param.choices:
            raise ConfigError(
                f"workload {spec.name}: parameter {name}={text!r} must be one of {', '.join(param.choices)}"
            )
        params[name] = text
    return params


def render(
    spec: WorkloadSpec, given: Mapping[str, Any], *, context: Mapping[str, str], image_registry: str | None = None
) -> Rendered:
    """Substitute parameters, images (``${image.<key>}``) and context values (``${namespace}``...)."""
    params = effective_params(spec, given)
    values: dict[str, str] = dict(context)
    values.update(params)
    values.update({f"image.{k}": rewrite_image(v, image_registry) for k, v in spec.images.items()})
    documents: list[dict[str, Any]] = []
    for rel in spec.manifests:
        path = spec.directory / rel
        text = path.read_text()

        def substitute(match: re.Match[str], where: str = str(path)) -> str:
            key = match.group(1)
            if key not in values:
                raise ConfigError(
                    f"{where}: unknown placeholder ${{{key}}} (parameters: {', '.join(sorted(params)) or 'none'})"
                )
            return values[key]

        rendered = _PLACEHOLDER.sub(substitute, text)
        try:
            docs = [d for d in yaml.safe_load_all(rendered) if d]
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML after rendering ({exc})") from None
        for doc in docs:
            if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
                raise ConfigError(f"{path}: every document needs apiVersion and kind")
            _rewrite_images(doc, image_registry)
            documents.append(doc)
    # ConfigMap keys are file names: a workload may share a sibling's scripts (``../fio/matrix.fio``)
    scripts = {Path(rel).name: (spec.directory / rel).read_text() for rel in spec.scripts}
    return Rendered(documents=tuple(documents), scripts=scripts, params=params)


def _rewrite_images(node: Any, registry: str | None) -> None:
    """Rewrite images written literally in manifests too (placeholders are already rewritten)."""
    if not registry:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str) and not value.startswith(registry + "/"):
                node[key] = rewrite_image(value, registry)
            else:
                _rewrite_images(value, registry)
    elif isinstance(node, list):
        for item in node:
            _rewrite_images(item, registry)
