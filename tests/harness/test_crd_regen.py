"""crd_regen: CRD schema files come from the pinned modules' YAML (served versions, one provenance line, stable
bytes), --check fails on drift without writing, hand-kept files are left alone, and a missing Go is one clear line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.catalog import crd_regen
from harness.catalog.crd_regen import CrdSource, generate, main
from harness.catalog.gomod import GO_MODULE_DIR, Module, RegenError, resolve_modules

CRDS = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, properties: {spec: {type: object}}}}
  - name: v1beta1
    served: true
    storage: false
    schema: {openAPIV3Schema: {type: object}}
  - name: v1alpha1
    served: false
    storage: false
    schema: {openAPIV3Schema: {type: object}}
---
# a second CRD in the same file that the suite does not use
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.com}
spec:
  group: example.com
  names: {kind: Gadget, plural: gadgets}
  versions:
  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}
"""
SOURCE = CrdSource(module="example.com/widgets", path="crds/all.yaml", kinds=("Widget",))


@pytest.fixture
def module(tmp_path: Path) -> Module:
    (tmp_path / "mod" / "crds").mkdir(parents=True)
    (tmp_path / "mod" / "crds" / "all.yaml").write_text(CRDS)
    return Module(path=SOURCE.module, version="v1.2.3", directory=tmp_path / "mod")


def test_every_served_version_of_a_wanted_kind_is_written_with_its_provenance(module: Module) -> None:
    files = generate([SOURCE], {SOURCE.module: module})
    assert sorted(files) == ["example.com/widget_v1.json", "example.com/widget_v1beta1.json"]
    v1 = files["example.com/widget_v1.json"]
    assert v1["x-aibench-source"] == "example.com/widgets@v1.2.3 crds/all.yaml, version v1"
    assert v1["openAPIV3Schema"] == {"type": "object", "properties": {"spec": {"type": "object"}}}


def test_a_kind_missing_from_its_file_is_a_named_error(module: Module) -> None:
    source = CrdSource(module=SOURCE.module, path=SOURCE.path, kinds=("Widget", "Sprocket"))
    with pytest.raises(RegenError, match=r"example.com/widgets@v1.2.3 crds/all.yaml: no CRD for Sprocket"):
        generate([source], {SOURCE.module: module})


def test_check_fails_on_drift_writes_nothing_and_leaves_hand_kept_files(
    module: Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(crd_regen, "SOURCES", (SOURCE,))
    monkeypatch.setattr(crd_regen, "resolve_modules", lambda modules, go_module_dir: {SOURCE.module: module})
    monkeypatch.setattr(crd_regen, "HAND_KEPT", {"example.com/legacy_v1alpha2.json": "gone upstream"})
    schemas = tmp_path / "schemas"
    (schemas / "example.com").mkdir(parents=True)
    (schemas / "example.com" / "legacy_v1alpha2.json").write_text("{}")
    (schemas / "example.com" / "stale_v1.json").write_text("{}")
    args = ["--schema-dir", str(schemas)]

    assert main([*args, "--check"]) == 1
    out = capsys.readouterr().out
    assert "would write example.com/widget_v1.json" in out and "would delete example.com/stale_v1.json" in out
    assert not (schemas / "example.com" / "widget_v1.json").exists()

    assert main(args) == 0
    assert main([*args, "--check"]) == 0
    assert sorted(p.name for p in (schemas / "example.com").iterdir()) == [
        "legacy_v1alpha2.json",
        "widget_v1.json",
        "widget_v1beta1.json",
    ]
    text = (schemas / "example.com" / "widget_v1.json").read_text()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"  # stable bytes for --check


def test_without_go_on_path_the_error_is_one_line_saying_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["--check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("crd_regen: go list: no `go` on PATH: install Go")
    with pytest.raises(RegenError, match="go mod download"):
        resolve_modules(["sigs.k8s.io/jobset"])


def test_the_shipped_schemas_match_the_pinned_modules() -> None:
    """The CI form of ``python -m harness.catalog.crd_regen --check`` (skips where the modules cannot be listed)."""
    go = shutil.which("go")
    if go is None or not (GO_MODULE_DIR / "go.mod").is_file():
        pytest.skip("needs Go and deploy/local-kube/go.mod")
    modules = sorted({s.module for s in crd_regen.SOURCES})
    listed = subprocess.run(
        [go, "list", "-m", "-f", "{{.Dir}}", *modules],
        cwd=GO_MODULE_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "GOWORK": "off", "GOFLAGS": "-mod=readonly", "GOPROXY": "off"},
    )
    if listed.returncode != 0 or not all(line.strip() for line in listed.stdout.splitlines()):
        pytest.skip("the pinned modules are not in the module cache (go mod download in deploy/local-kube)")
    assert main(["--check"]) == 0, "crd_schemas/ drifted from go.mod: run python -m harness.catalog.crd_regen"
