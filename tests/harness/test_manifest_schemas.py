"""Every shipped manifest validates against the Kubernetes schemas of each supported version (and CRD schemas)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.catalog.render import render
from harness.catalog.spec import catalog_root, load_spec
from harness.catalog.validate import CRD_SCHEMA_DIR, SUPPORTED_VERSIONS, ManifestValidator
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


WIDGET = {
    "openAPIV3Schema": {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "x-kubernetes-validations": [{"rule": "self.size > 0", "message": "ignored offline"}],
                "properties": {
                    "mode": {"type": "string", "enum": ["A", "B"], "nullable": True},
                    "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                              "properties": {"known": {"type": "object", "properties": {"n": {"type": "integer"}}}}},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "child": {"type": "object", "x-kubernetes-embedded-resource": True,
                              "properties": {"spec": {"type": "object"}}},
                    "match": {"type": "object",
                              "properties": {"exact": {"type": "string"}, "prefix": {"type": "string"}},
                              "oneOf": [{"required": ["exact"]}, {"required": ["prefix"]}]},
                    "description": {"type": "string", "description": "a field named like a keyword stays a field"},
                },
            },
        },
    }
}  # fmt: skip


@pytest.fixture
def widgets(tmp_path: Path) -> ManifestValidator:
    (tmp_path / "example.com").mkdir()
    (tmp_path / "example.com" / "widget_v1.json").write_text(json.dumps(WIDGET))
    return ManifestValidator(crd_dir=tmp_path)


def widget(**spec: object) -> dict:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "labels": {"a": "b"}},
            "spec": spec}  # fmt: skip


def first_problem(validator: ManifestValidator, doc: dict) -> tuple[str, str] | None:
    problems = validator.problems(doc, source="w")
    return (problems[0].path, problems[0].message) if problems else None


def test_fields_the_crd_does_not_name_are_flagged_because_the_server_prunes_them(widgets: ManifestValidator) -> None:
    assert first_problem(widgets, widget(mode="A", tags=["x"], labels={"k": "v"}, description="d")) is None
    path, message = first_problem(widgets, widget(mdoe="A"))
    assert path == "spec" and "'mdoe' was unexpected" in message
    # an object that names no fields keeps none of them on a real server either
    path, message = first_problem(widgets, widget(child={"spec": {"x": 1}}))
    assert path == "spec.child.spec" and "'x' was unexpected" in message


def test_preserve_unknown_fields_and_embedded_resources_stay_open_where_the_server_keeps_fields(
    widgets: ManifestValidator,
) -> None:
    assert first_problem(widgets, widget(extra={"anything": {"goes": 1}, "known": {"n": 1}})) is None
    # below a preserved object, the fields it names are still structural (and pruned)
    assert first_problem(widgets, widget(extra={"known": {"m": 1}}))[0] == "spec.extra.known"
    child = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "b"}}, "spec": {}}
    assert first_problem(widgets, widget(child=child)) is None


def test_openapi_keywords_map_to_json_schema(widgets: ManifestValidator) -> None:
    assert first_problem(widgets, widget(mode=None)) is None  # nullable enum
    assert "is not one of" in first_problem(widgets, widget(mode="C"))[1]
    assert "non-unique" in first_problem(widgets, widget(tags=["x", "x"]))[1]  # list-type set
    # oneOf branches only validate values: they do not close the object to the fields they mention
    assert first_problem(widgets, widget(match={"exact": "a"})) is None
    assert "valid under each of" in first_problem(widgets, widget(match={"exact": "a", "prefix": "b"}))[1]


def test_a_crd_validator_is_built_once_and_shared_by_every_kubernetes_version(widgets: ManifestValidator) -> None:
    assert first_problem(widgets, widget()) is None
    validators = {id(widgets._validator(version, "example.com/v1", "Widget")) for version in SUPPORTED_VERSIONS}
    assert len(validators) == 1


def test_shipped_crd_schemas_name_their_source_and_flag_pruned_fields(validator: ManifestValidator) -> None:
    for path in sorted(CRD_SCHEMA_DIR.glob("*/*.json")):
        document = json.loads(path.read_text())
        assert set(document) == {"x-aibench-source", "openAPIV3Schema"}, path
        source = document["x-aibench-source"]
        assert "\n" not in source and (source.startswith("HAND-KEPT SUBSET") or ", version " in source), path
    job = {
        "apiVersion": "jobset.x-k8s.io/v1alpha2",
        "kind": "JobSet",
        "metadata": {"name": "j"},
        "spec": {
            "replicatedJobs": [
                {
                    "name": "w",
                    "template": {
                        "spec": {
                            "template": {
                                "spec": {
                                    "restartPolicy": "Never",
                                    "containers": [{"name": "c", "image": "i", "imagePullPolcy": "Always"}],
                                }
                            }
                        }
                    },
                }
            ]
        },
    }
    problems = validator.problems(job, source="jobset")
    assert problems[0].path == "spec.replicatedJobs.0.template.spec.template.spec.containers.0"
    assert "'imagePullPolcy' was unexpected" in problems[0].message
