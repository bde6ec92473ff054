"""The layering of ``harness/``, read from the source (``ast``, nothing imported) and enforced.

Why a test: each rule below once broke silently (the cluster layer started the embedded target, a parser imported
the cluster layer for one dataclass, the accelerator probes imported the runners that import the cluster layer).
A rule that only lives in DESIGN.md drifts; this one fails naming the module, the line and the import.

Every import counts, also one inside a function or under ``TYPE_CHECKING``: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "harness"

#: Modules every layer may use: errors, configuration values, YAML reading, units, the measurement model, the label
#: keys shared with the embedded target, the Prometheus sample type.
FOUNDATION = frozenset(
    {
        "harness",
        "harness.errors",
        "harness.config",
        "harness.yamlfile",
        "harness.units",
        "harness.measurement",
        "harness.labels",
        "harness.series",
        "harness.redact",
        "harness.statistics",
    }
)

#: Modules that start a target (a process group the run owns). Only the face may start one.
STARTERS = frozenset({"harness.embedded.cluster", "harness.localkube.controlplane"})
FACE = frozenset({"harness.cli", "harness.suite_run", "harness.pytest_plugin", "harness.targets"})


@dataclass(frozen=True, slots=True)
class Import:
    module: str  # the importing module, dotted
    path: Path
    line: int
    target: str  # the imported module, dotted (``from a.b import c`` gives ``a.b.c`` when that is a module)

    def __str__(self) -> str:
        return f"{self.path.relative_to(HARNESS.parent)}:{self.line}: {self.module} imports {self.target}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(HARNESS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(HARNESS.rglob("*.py"))}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


@functools.cache
def imports() -> tuple[Import, ...]:
    """Every ``harness`` import in ``harness/``; ``from pkg import mod`` resolves to ``pkg.mod`` when it is one."""
    return tuple(_read_imports())


def _read_imports() -> Iterator[Import]:
    modules = _modules()
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "harness":
                        yield Import(module, path, node.lineno, alias.name)
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, path.name == "__init__.py", node)
                if base.split(".")[0] != "harness":
                    continue
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    yield Import(module, path, node.lineno, full if full in modules else base)


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _violations(layer: str, allowed: frozenset[str]) -> list[str]:
    return [
        str(i)
        for i in imports()
        if _in(i.module, layer) and not _in(i.target, layer) and i.target not in allowed
        and not any(_in(i.target, a) for a in allowed if a != "harness")
    ]  # fmt: skip


def test_the_graph_is_read() -> None:
    """Guard against a vacuous pass: the reader sees the imports this test is about."""
    found = {(i.module, i.target) for i in imports()}
    assert ("harness.targets", "harness.embedded.cluster") in found
    assert ("harness.parsers.exposition", "harness.series") in found
    assert len(found) > 300


def test_the_cluster_layer_only_talks_to_clusters() -> None:
    """``harness.cluster`` (apply, wait, logs, exec, discovery) imports only itself and the foundation: not the
    embedded target or the local control plane (the face starts those), not parsers, thresholds or reporting, not
    runners, the catalog or domain probes (they use the cluster layer, never the other way round)."""
    assert not _violations("harness.cluster", FOUNDATION), "\n".join(_violations("harness.cluster", FOUNDATION))


@pytest.mark.parametrize(
    ("layer", "extra"),
    [
        ("harness.parsers", frozenset()),
        ("harness.thresholds", frozenset({"harness.parsers"})),
    ],
)
def test_parsers_and_judging_do_not_touch_a_cluster(layer: str, extra: frozenset[str]) -> None:
    """Parsers read text, thresholds judge measurements: neither imports the cluster layer, runners, probes, the
    embedded target or reporting, so both run on a saved log without any cluster (``report import``, re-judging)."""
    found = _violations(layer, FOUNDATION | extra)
    assert not found, "\n".join(found)


def test_reporting_does_not_import_the_cluster_layer() -> None:
    """Reports are built from the run record, never by asking the cluster again."""
    found = [str(i) for i in imports() if _in(i.module, "harness.reporting") and _in(i.target, "harness.cluster")]
    assert not found, "\n".join(found)


def test_only_the_face_starts_a_target() -> None:
    """Starting the embedded target or the real local control plane is the face's job (CLI, suite run, pytest
    plugin, :mod:`harness.targets`); a target's own package may use its parts."""
    found = [
        str(i)
        for i in imports()
        if i.target in STARTERS and i.module not in FACE and not _in(i.module, i.target.rsplit(".", 1)[0])
    ]
    assert not found, "\n".join(found)


def test_probes_do_not_judge() -> None:
    """Domain probes return evidence; the verdicts on it are rules in :mod:`harness.thresholds.verdicts`, so a probe
    imports no threshold module (and the cluster layer, checked above, imports no probe)."""
    found = [str(i) for i in imports() if _in(i.module, "harness.probes") and _in(i.target, "harness.thresholds")]
    assert not found, "\n".join(found)


def test_a_violation_names_the_module_and_the_line(tmp_path: Path) -> None:
    """The failure text carries file:line and both module names (what a red run must say)."""
    line = Import("harness.cluster.x", HARNESS / "cluster" / "x.py", 7, "harness.embedded.cluster")
    assert str(line) == "harness/cluster/x.py:7: harness.cluster.x imports harness.embedded.cluster"
