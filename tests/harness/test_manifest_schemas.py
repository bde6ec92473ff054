"""Every shipped manifest validates against the Kubernetes schemas of each supported version (and CRD schemas)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.catalog.render import render
from harness.catalog.spec import catalog_root, load_spec
from harness.catalog.validate import ManifestValidator
from harness.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
WORKLOADS = sorted(p.parent.name for p in catalog_root().glob("*/workload.yaml"))
CONTEXT = {"namespace": "aibench-t", "run_id": "r1", "scripts_configmap": "cm", "workload": "w"}
#: values for the parameters a suite must give (they have no default): realistic ones, so the schema sees real types
REQUIRED_EXAMPLES = {
    "storage_class": "standard-rwo",
    "host": "redis.kube-system.svc.cluster.local",
    "endpoint": "http://minio.minio.svc:9000",
    "bucket": "models",
    "secret": "s3-credentials",
    "server_node": "node-a",
    "client_node": "node-b",
    "node": "gpu-node-1",
}


def example_params(spec: object) -> dict[str, str]:
    return {name: REQUIRED_EXAMPLES[name] for name, param in spec.params.items() if param.default is None}


@pytest.fixture(scope="module")
def validator() -> ManifestValidator:
    return ManifestValidator()


@pytest.mark.parametrize("name", WORKLOADS)
def test_workload_manifests_validate(validator: ManifestValidator, name: str) -> None:
    spec = load_spec(catalog_root() / name / "workload.yaml")
    rendered = render(spec, example_params(spec), context=CONTEXT)
    problems = [p for doc in rendered.documents for p in validator.problems(doc, source=name)]
    assert not problems, "\n".join(map(str, problems))


@pytest.mark.parametrize("path", sorted((REPO / "deploy").glob("*.yaml")), ids=lambda p: p.name)
def test_deploy_manifests_validate(validator: ManifestValidator, path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    problems = [p for doc in docs for p in validator.problems(doc, source=path.name)]
    assert not problems, "\n".join(map(str, problems))


def test_a_wrong_field_is_named_with_its_path_and_version(validator: ManifestValidator) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "bad"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x", "resources": {"limits": 3}}]}}},
    }
    problems = validator.problems(job, source="bad.yaml")
    assert [p.version for p in problems] == ["1.31", "1.33", "1.35"]
    assert problems[0].path == "spec.template.spec.containers.0.resources.limits"
    assert "bad.yaml: Job/bad (Kubernetes 1.31)" in str(problems[0])


def test_an_unknown_field_is_rejected(validator: ManifestValidator) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [], "nodeSelektor": {}}}
    assert any("nodeSelektor" in p.message for p in validator.problems(pod, source="pod.yaml"))


def test_a_kind_without_schema_is_an_error_not_a_pass(validator: ManifestValidator) -> None:
    with pytest.raises(ConfigError, match=r"no schema for Widget \(example.com/v1\)"):
        validator.problems({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}, source="w")


def test_crd_schemas_validate_custom_resources(tmp_path: Path) -> None:
    group = tmp_path / "example.com"
    group.mkdir()
    (group / "widget_v1.json").write_text(
        '{"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": '
        '{"size": {"type": "integer", "nullable": true}, "port": {"x-kubernetes-int-or-string": true}}}}}}'
    )
    v = ManifestValidator(crd_dir=tmp_path)
    ok = {"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"size": None, "port": "http"}}
    bad = {"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"size": "big"}}
    assert v.problems(ok, source="ok") == []
    assert v.problems(bad, source="bad")[0].path == "spec.size"
