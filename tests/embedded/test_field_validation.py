"""Strict field validation and the OpenAPI v3 schemas it shares with ``kubectl explain``.

The wording is kube-apiserver's (apiserver/pkg/endpoints/handlers, sigs.k8s.io/json, apiextensions pruning), so
what a user sees from kubectl against the embedded target is what a real cluster prints.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from harness.embedded import fieldvalidation
from harness.embedded.cluster import EmbeddedCluster
from harness.embedded.openapi_regen import served_kinds
from harness.embedded.resources import BUILTIN_TYPES
from harness.embedded.schemas import shared_schema_set

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on PATH")


def _raw(
    cluster: EmbeddedCluster, method: str, path: str, body: bytes, content_type: str = "application/json"
) -> tuple[int, dict[str, Any], list[str]]:
    request = urllib.request.Request(cluster.server_url + path, data=body, method=method)
    request.add_header("Authorization", f"Bearer {cluster.token}")
    request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=10, context=cluster.tls.client_context()) as response:
            return response.status, json.loads(response.read()), response.headers.get_all("Warning") or []
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers.get_all("Warning") or []


def _pod(name: str, **resources: Any) -> dict[str, Any]:
    container = {"name": "c", "image": "busybox", "command": ["true"], "resources": resources}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [container]}}


# ----------------------------------------------------------------------------- the schemas
def test_every_served_builtin_kind_has_kubes_schema() -> None:
    schemas = shared_schema_set()
    assert schemas.source.startswith("k8s.io/kubernetes@v")
    for rtype in BUILTIN_TYPES:
        assert schemas.builtin_tree(rtype.api_version, rtype.kind) is not None, rtype.kind
    assert set(served_kinds()) == set(schemas.data["groupVersions"]), "run python -m harness.embedded.openapi_regen"


def test_violations_paths_and_pruning_for_a_builtin_kind() -> None:
    tree = shared_schema_set().builtin_tree("v1", "Pod")
    assert tree is not None
    pod = _pod("p", limit={"cpu": "1"}, limits={"cpu": "1"})
    pod["spec"]["containers"][0]["env"] = [{"name": "A", "valu": "1"}]
    pod["metadata"]["annotations"] = {"any.key/x": "v"}  # a map: every key is known
    found = fieldvalidation.violations(tree, pod, custom=False)
    assert found == [
        'unknown field "spec.containers[0].resources.limit"',
        'unknown field "spec.containers[0].env[0].valu"',
    ]
    assert pod["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "1"}}
    assert pod["spec"]["containers"][0]["env"] == [{"name": "A"}]


def test_duplicate_keys_are_reported_and_the_last_wins() -> None:
    tree = shared_schema_set().builtin_tree("apps/v1", "Deployment")
    assert tree is not None
    body = fieldvalidation.loads_json(b'{"kind":"Deployment","spec":{"replicas":1,"replicas":3}}')
    assert body["spec"]["replicas"] == 3
    assert fieldvalidation.violations(tree, body, custom=False) == ['duplicate field "spec.replicas"']
    yaml_body = fieldvalidation.loads_yaml(b"spec:\n  replicas: 1\n  replicas: 2\n")
    assert fieldvalidation.violations(tree, yaml_body, custom=False) == ['duplicate field "spec.replicas"']


# ----------------------------------------------------------------------------- over HTTP: Strict, Warn, Ignore
def test_strict_is_kubes_400(host_cluster: EmbeddedCluster, ns: str) -> None:
    code, status, _ = _raw(
        host_cluster,
        "POST",
        f"/api/v1/namespaces/{ns}/pods?fieldValidation=Strict",
        json.dumps(_pod("strict", limit={"cpu": "1"})).encode(),
    )
    assert code == 400 and status["reason"] == "BadRequest"
    assert status["message"] == (
        'Pod in version "v1" cannot be handled as a Pod: strict decoding error: '
        'unknown field "spec.containers[0].resources.limit"'
    )
    body = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"d"},"data":{"a":"1"},"data":{"a":"2"}}'
    code, status, _ = _raw(host_cluster, "POST", f"/api/v1/namespaces/{ns}/configmaps?fieldValidation=Strict", body)
    assert (code, status["message"]) == (
        400,
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: duplicate field "data"',
    )


def test_warn_is_the_default_prunes_and_sends_warning_headers(
    host_cluster: EmbeddedCluster, api: client.ApiClient, ns: str
) -> None:
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w"}, "dataa": {"a": "1"}})
    code, created, warnings = _raw(host_cluster, "POST", f"/api/v1/namespaces/{ns}/configmaps", body.encode())
    assert code == 201 and "dataa" not in created
    assert warnings == ['299 - "unknown field \\"dataa\\""']
    stored = client.CoreV1Api(api).read_namespaced_config_map("w", ns)
    assert stored.data is None


def test_ignore_prunes_silently_and_bad_directives_are_refused(host_cluster: EmbeddedCluster, ns: str) -> None:
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "i"}, "dataa": {"a": "1"}})
    path = f"/api/v1/namespaces/{ns}/configmaps"
    code, created, warnings = _raw(host_cluster, "POST", path + "?fieldValidation=Ignore", body.encode())
    assert code == 201 and "dataa" not in created and warnings == []
    code, status, _ = _raw(host_cluster, "POST", path + "?fieldValidation=Loud", body.encode())
    assert code == 422 and status["message"] == (
        'CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Loud": '
        'supported values: "Ignore", "Strict", "Warn"'
    )


def test_patches_and_updates_are_checked_too(host_cluster: EmbeddedCluster, api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="p"), data={"a": "1"}))
    path = f"/api/v1/namespaces/{ns}/configmaps/p"
    code, status, _ = _raw(
        host_cluster, "PATCH", path + "?fieldValidation=Strict", b'{"dataa":{"b":"2"}}', "application/merge-patch+json"
    )
    assert code == 422 and status["details"]["causes"][0]["field"] == "patch"
    assert status["message"].endswith('strict decoding error: unknown field "dataa"')
    current = core.read_namespaced_config_map("p", ns).to_dict()
    update = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "p"}, "data": {"a": "3"}, "x": 1}
    update["metadata"]["resourceVersion"] = current["metadata"]["resource_version"]
    code, status, _ = _raw(host_cluster, "PUT", path + "?fieldValidation=Strict", json.dumps(update).encode())
    assert (code, status["message"]) == (
        400,
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "x"',
    )


WIDGETS = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.fv.example.com"},
    "spec": {
        "group": "fv.example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "description": "What the widget should be.",
                                "properties": {
                                    "size": {"type": "integer", "description": "Size in widget units."},
                                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                                },
                            }
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture
def widgets(api: client.ApiClient) -> Any:
    ext = client.ApiextensionsV1Api(api)
    ext.create_custom_resource_definition(WIDGETS)
    yield
    ext.delete_custom_resource_definition(WIDGETS["metadata"]["name"])


def test_custom_resources_are_pruned_by_their_crd_schema(host_cluster: EmbeddedCluster, ns: str, widgets: Any) -> None:
    body = {
        "apiVersion": "fv.example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "bogus": 1},
        "spec": {"size": 3, "sise": 4, "free": {"anything": {"goes": 1}}},
        "extra": 1,
    }
    path = f"/apis/fv.example.com/v1/namespaces/{ns}/widgets"
    code, status, _ = _raw(host_cluster, "POST", path + "?fieldValidation=Strict", json.dumps(body).encode())
    assert (code, status["message"]) == (
        400,
        'Widget in version "v1" cannot be handled as a Widget: strict decoding error: unknown field "metadata.bogus", '
        'unknown field "extra", unknown field "spec.sise"',
    )
    code, created, warnings = _raw(host_cluster, "POST", path, json.dumps(body).encode())
    assert code == 201 and len(warnings) == 3
    assert created["spec"] == {"size": 3, "free": {"anything": {"goes": 1}}} and "extra" not in created
    assert "bogus" not in created["metadata"]


# ----------------------------------------------------------------------------- kubectl, as a user runs it
def _kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


TYPO_POD = """\
apiVersion: v1
kind: Pod
metadata: {name: typo, namespace: NS}
spec:
  containers:
  - name: c
    image: busybox
    command: [sleep, "1"]
    resources:
      limit: {cpu: "1"}
"""


@needs_kubectl
def test_kubectl_create_with_a_typo(kubeconfig: Path, ns: str) -> None:
    manifest = TYPO_POD.replace("NS", ns)
    done = _kubectl(kubeconfig, "create", "-f", "-", stdin=manifest)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        'Error from server (BadRequest): error when creating "STDIN": Pod in version "v1" cannot be handled as a Pod: '
        'strict decoding error: unknown field "spec.containers[0].resources.limit"'
    )
    done = _kubectl(kubeconfig, "create", "--validate=warn", "-f", "-", stdin=manifest)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == 'Warning: unknown field "spec.containers[0].resources.limit"'
    done = _kubectl(kubeconfig, "apply", "--validate=ignore", "-f", "-", stdin=manifest.replace("typo,", "typo2,"))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    done = _kubectl(kubeconfig, "get", "pod", "typo2", "-n", ns, "-o", "jsonpath={.spec.containers[0].resources}")
    assert done.stdout == "{}", "the unknown field was stored"


@needs_kubectl
def test_kubectl_explain_builtin_kinds(kubeconfig: Path) -> None:
    done = _kubectl(kubeconfig, "explain", "pod.spec.containers")
    assert done.returncode == 0, done.stderr
    assert "KIND:       Pod" in done.stdout and "FIELD: containers <[]Container>" in done.stdout
    assert "resources\t<ResourceRequirements>" in done.stdout
    done = _kubectl(kubeconfig, "explain", "deployment.spec")
    assert done.returncode == 0, done.stderr
    assert "GROUP:      apps" in done.stdout and "strategy\t<DeploymentStrategy>" in done.stdout


@needs_kubectl
def test_kubectl_explain_a_served_crd(kubeconfig: Path, widgets: Any) -> None:
    done = _kubectl(kubeconfig, "explain", "widgets.spec")
    assert done.returncode == 0, done.stderr
    assert "GROUP:      fv.example.com" in done.stdout and "What the widget should be." in done.stdout
    assert "size\t<integer>" in done.stdout and "Size in widget units." in done.stdout
