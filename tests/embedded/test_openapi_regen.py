"""openapi_regen: the built-in schemas come from kube's generated spec (only the served kinds and what they
reference, provenance recorded), and the committed data is what the pinned module yields."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.catalog.gomod import RegenError
from harness.embedded import openapi_regen

REF = "#/components/schemas/"


def _spec(tmp_path: Path) -> Path:
    schemas = {
        "io.k8s.api.apps.v1.Widget": {
            "x-kubernetes-group-version-kind": [{"group": "apps", "version": "v1", "kind": "Widget"}],
            "properties": {"spec": {"allOf": [{"$ref": REF + "io.k8s.api.apps.v1.WidgetSpec"}]}},
        },
        "io.k8s.api.apps.v1.WidgetSpec": {"properties": {"size": {"type": "integer"}}},
        "io.k8s.api.apps.v1.Unserved": {"properties": {}},
    }
    (tmp_path / "apis__apps__v1_openapi.json").write_text(json.dumps({"components": {"schemas": schemas}}))
    return tmp_path


def test_only_served_kinds_and_their_references_are_kept(tmp_path: Path) -> None:
    document = openapi_regen.generate(_spec(tmp_path), "v9.9.9", {"apps/v1": [("apps/v1", "Widget")]})
    assert document["x-aibench-source"].startswith("k8s.io/kubernetes@v9.9.9 api/openapi-spec/v3")
    assert sorted(document["schemas"]) == ["io.k8s.api.apps.v1.Widget", "io.k8s.api.apps.v1.WidgetSpec"]
    assert document["groupVersions"]["apps/v1"]["kinds"] == {"Widget": "io.k8s.api.apps.v1.Widget"}


def test_a_kind_missing_from_the_spec_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RegenError, match="no schema for apps/v1 Gadget"):
        openapi_regen.generate(_spec(tmp_path), "v9.9.9", {"apps/v1": [("apps/v1", "Gadget")]})


def test_committed_data_matches_the_pinned_module() -> None:
    if shutil.which("go") is None:
        pytest.skip("no `go` on PATH: the pinned k8s.io/kubernetes module cannot be resolved")
    assert openapi_regen.main(["--check"]) == 0, "run python -m harness.embedded.openapi_regen"
