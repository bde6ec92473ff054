"""``workload.yaml``: what a workload is, which parameters it takes, how its output is parsed.

Loading is strict: unknown keys, wrong types and undeclared placeholders are :class:`ConfigError` lines naming the
file and key path, because a typo in a workload must fail the run's set-up, not silently run the default.

Example::

    name: cpu-burn
    kind: job                     # job | mpijob | jobset | rayjob (KubeRay) | service: picks the runner
    description: ...
    manifests: [job.yaml]         # plain YAML with ${param} placeholders
    scripts: [burn.py]            # shipped to pods in a ConfigMap named ${workload_config}
    parser: sentinel              # a name in harness.parsers.MODULES, or none: the module that reads the output
    timeout_s: 120
    requires: [gpu]
    images: {python: "docker.io/library/python:3.11-slim"}   # referenced as ${image.python}
    params:
      seconds: {default: "2", description: "how long to burn"}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.parsers import MODULES, NO_PARSER
from harness.yamlfile import read_yaml

#: The workload kinds, each run by its runner (harness.runners.registry): the top object's shape, not a label.
KINDS = ("job", "mpijob", "jobset", "rayjob", "service")
PARSERS = (*MODULES, NO_PARSER)
_TOP_KEYS = {
    "name",
    "kind",
    "description",
    "manifests",
    "scripts",
    "parser",
    "timeout_s",
    "requires",
    "images",
    "params",
    "result_container",
    "placement_only",
}
_PARAM_KEYS = {"default", "description", "choices"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Param:
    name: str
    default: str | None
    description: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadSpec:
    """A loaded workload; ``directory`` holds its manifests and scripts."""

    name: str
    kind: str
    description: str
    directory: Path
    manifests: tuple[str, ...]
    scripts: tuple[str, ...] = ()
    parser: str = "sentinel"
    timeout_s: float = 300.0
    requires: tuple[str, ...] = ()
    images: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Param] = field(default_factory=dict)
    result_container: str = ""
    # True for workloads that measure nothing and only check where pods land (gang/topology placement): the
    # harness then lets them onto emulated nodes, which exist exactly for such scheduler checks.
    placement_only: bool = False


def _fail(path: Path, key: str, message: str) -> ConfigError:
    return ConfigError(f"{path}: {key}: {message}")


def _strings(path: Path, key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(path, key, "must be a list of non-empty strings")
    return tuple(value)


def load_spec(path: Path) -> WorkloadSpec:
    """Load and check one ``workload.yaml`` (files it names must exist)."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping of workload fields")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise _fail(path, unknown[0], f"unknown key (allowed: {', '.join(sorted(_TOP_KEYS))})")
    for key in ("name", "kind", "manifests"):
        if key not in data:
            raise _fail(path, key, "required")
    name = data["name"]
    if not isinstance(name, str) or name != path.parent.name:
        raise _fail(path, "name", f"must equal the directory name {path.parent.name!r} (got {name!r})")
    kind = data["kind"]
    if kind not in KINDS:
        raise _fail(path, "kind", f"must be one of {', '.join(KINDS)} (got {kind!r})")
    parser = data.get("parser", "sentinel")
    if parser not in PARSERS:
        raise _fail(path, "parser", f"must be one of {', '.join(PARSERS)} (got {parser!r})")
    timeout = data.get("timeout_s", 300)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        raise _fail(path, "timeout_s", f"must be a positive number of seconds (got {timeout!r})")
    manifests = _strings(path, "manifests", data["manifests"])
    if not manifests:
        raise _fail(path, "manifests", "must name at least one manifest")
    scripts = _strings(path, "scripts", data.get("scripts"))
    for key, files in (("manifests", manifests), ("scripts", scripts)):
        for i, rel in enumerate(files):
            if not (path.parent / rel).is_file():
                raise _fail(path, f"{key}[{i}]", f"no such file {path.parent / rel}")
    names = [Path(rel).name for rel in scripts]
    if len(set(names)) != len(names):
        raise _fail(path, "scripts", "two scripts share a file name (they become keys of one ConfigMap)")
    images = data.get("images") or {}
    if not isinstance(images, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in images.items()):
        raise _fail(path, "images", "must map names to image references")
    for key, image in images.items():
        if ":" not in image.rsplit("/", 1)[-1] and "@" not in image:
            raise _fail(path, f"images.{key}", f"must be pinned to a tag or digest (got {image!r})")
        if image.endswith(":latest"):
            raise _fail(path, f"images.{key}", "must not use the 'latest' tag")
    params: dict[str, Param] = {}
    for pname, pdata in (data.get("params") or {}).items():
        where = f"params.{pname}"
        if not isinstance(pdata, dict):
            raise _fail(path, where, "must be a mapping with default/description")
        extra = sorted(set(pdata) - _PARAM_KEYS)
        if extra:
            raise _fail(path, f"{where}.{extra[0]}", f"unknown key (allowed: {', '.join(sorted(_PARAM_KEYS))})")
        default = pdata.get("default")
        choices = tuple(str(c) for c in pdata.get("choices") or ())
        if default is not None and choices and str(default) not in choices:
            raise _fail(path, f"{where}.default", f"must be one of {', '.join(choices)}")
        params[pname] = Param(
            name=pname,
            default=None if default is None else str(default),
            description=str(pdata.get("description", "")),
            choices=choices,
        )
    return WorkloadSpec(
        name=name,
        kind=kind,
        description=str(data.get("description", "")),
        directory=path.parent,
        manifests=manifests,
        scripts=scripts,
        parser=parser,
        timeout_s=float(timeout),
        requires=_strings(path, "requires", data.get("requires")),
        images=images,
        params=params,
        result_container=str(data.get("result_container", "")),
        placement_only=_flag(path, "placement_only", data.get("placement_only", False)),
    )


def _flag(path: Path, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, key, f"must be true or false (got {value!r})")
    return value


def catalog_root() -> Path:
    """``workloads/`` next to the ``harness`` package (the repository layout, also in an editable install)."""
    return Path(__file__).resolve().parents[2] / "workloads"


def load_workload(name: str, root: Path | None = None) -> WorkloadSpec:
    base = root or catalog_root()
    path = base / name / "workload.yaml"
    if not path.is_file():
        known = sorted(p.name for p in base.iterdir() if (p / "workload.yaml").is_file()) if base.is_dir() else []
        raise ConfigError(f"workload {name!r}: no {path} (known: {', '.join(known) or 'none'})")
    return load_spec(path)
