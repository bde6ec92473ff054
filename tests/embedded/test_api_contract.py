"""Contract of the embedded API server, driven only through the official client over real HTTP."""

from __future__ import annotations

import json
import os
import stat
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest
from eventually import eventually
from kubernetes import client, dynamic, watch
from kubernetes.client.rest import ApiException

from harness.embedded.cluster import EmbeddedCluster
from harness.podnet.ranges import on_this_machine

CM = client.V1ConfigMap


def _cm(name: str, labels: dict[str, str] | None = None, **meta: Any) -> client.V1ConfigMap:
    return CM(metadata=client.V1ObjectMeta(name=name, labels=labels, **meta), data={"k": "v"})


def _status(exc: ApiException) -> dict[str, Any]:
    return json.loads(exc.body)


def _raw(
    cluster: EmbeddedCluster,
    path: str,
    *,
    token: str | None = None,
    method: str = "GET",
    body: bytes | None = None,
    content_type: str = "application/json",
) -> tuple[int, dict[str, Any] | str]:
    request = urllib.request.Request(cluster.server_url + path, data=body, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=10, context=cluster.tls.client_context()) as response:
            text = response.read().decode()
            code = response.status
    except urllib.error.HTTPError as exc:
        text, code = exc.read().decode(), exc.code
    try:
        return code, json.loads(text)
    except ValueError:
        return code, text


# ----------------------------------------------------------------------------- server, auth, discovery
def test_kubeconfig_is_private_and_token_required(host_cluster: EmbeddedCluster) -> None:
    mode = stat.S_IMODE(os.stat(host_cluster.kubeconfig_path).st_mode)
    assert mode == 0o600
    code, body = _raw(host_cluster, "/api/v1/namespaces")
    assert code == 401 and body["reason"] == "Unauthorized" and body["kind"] == "Status"
    code, body = _raw(host_cluster, "/api/v1/namespaces", token="wrong")
    assert code == 401
    code, body = _raw(host_cluster, "/api/v1/namespaces", token=host_cluster.token)
    assert code == 200 and body["kind"] == "NamespaceList"
    assert _raw(host_cluster, "/healthz") == (200, "ok")
    assert _raw(host_cluster, "/readyz")[0] == 200


def test_version_has_every_field(api: client.ApiClient) -> None:
    info = client.VersionApi(api).get_code()
    assert info.major == "1" and info.minor.isdigit()
    assert info.git_version.startswith("v1.") and info.platform.startswith("linux/")
    assert info.build_date and info.go_version and info.compiler and info.git_tree_state


def test_discovery_serves_every_required_group(api: client.ApiClient) -> None:
    core = client.CoreApi(api).get_api_versions()
    assert core.versions == ["v1"]
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert {
        "batch",
        "apps",
        "networking.k8s.io",
        "storage.k8s.io",
        "scheduling.k8s.io",
        "apiextensions.k8s.io",
    } <= groups
    resources = {r.name for r in client.CoreV1Api(api).get_api_resources().resources}
    assert {
        "pods",
        "pods/status",
        "pods/log",
        "services",
        "endpoints",
        "configmaps",
        "secrets",
        "events",
        "persistentvolumeclaims",
        "persistentvolumes",
        "serviceaccounts",
        "resourcequotas",
        "limitranges",
        "namespaces",
        "nodes",
    } <= resources


def test_dynamic_client_resolves_kinds(api: client.ApiClient, ns: str) -> None:
    dyn = dynamic.DynamicClient(api)
    jobs = dyn.resources.get(api_version="batch/v1", kind="Job")
    assert jobs.namespaced and jobs.name == "jobs"
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    cms.create(
        body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dyn"}, "data": {"a": "1"}}, namespace=ns
    )
    assert cms.get(name="dyn", namespace=ns).data.a == "1"


# ----------------------------------------------------------------------------- object metadata and errors
def test_create_fills_metadata_and_global_resource_version(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    first = core.create_namespaced_config_map(ns, _cm("a"))
    second = core.create_namespaced_secret(
        ns, client.V1Secret(metadata=client.V1ObjectMeta(name="s"), string_data={"p": "x"})
    )
    assert first.metadata.uid and first.metadata.creation_timestamp is not None
    assert first.metadata.generation == 1 and first.metadata.namespace == ns
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    assert second.data == {"p": "eA=="} and second.type == "Opaque"
    generated = core.create_namespaced_config_map(ns, CM(metadata=client.V1ObjectMeta(generate_name="gen-")))
    assert generated.metadata.name.startswith("gen-") and len(generated.metadata.name) == 9


def test_status_errors_have_reason_and_code(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, _cm("dup"))
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map(ns, _cm("dup"))
    assert exc.value.status == 409 and _status(exc.value)["reason"] == "AlreadyExists"
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("missing", ns)
    body = _status(exc.value)
    assert (
        exc.value.status == 404 and body["reason"] == "NotFound" and body["message"] == 'configmaps "missing" not found'
    )
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map("no-such-namespace", _cm("x"))
    assert exc.value.status == 404 and _status(exc.value)["details"]["kind"] == "namespaces"


def test_invalid_objects_get_422_with_causes(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map(ns, _cm("Not_A_Valid_Name"))
    body = _status(exc.value)
    assert exc.value.status == 422 and body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_pod(
            ns, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}}
        )
    assert exc.value.status == 422 and "spec.containers" in _status(exc.value)["message"]
    with pytest.raises(ApiException) as exc:
        client.BatchV1Api(api).create_namespaced_job(
            ns,
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": "j"},
                "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}},
            },
        )
    assert exc.value.status == 422 and "restartPolicy" in _status(exc.value)["message"]


def test_bad_input_gets_4xx_and_server_keeps_serving(host_cluster: EmbeddedCluster, ns: str) -> None:
    token = host_cluster.token
    path = f"/api/v1/namespaces/{ns}/configmaps"
    code, body = _raw(host_cluster, path, token=token, method="POST", body=b"{not json")
    assert code == 400 and body["reason"] == "BadRequest"
    code, body = _raw(host_cluster, path, token=token, method="POST", body=b"[1, 2]")
    assert code == 400
    wrong = json.dumps({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}}).encode()
    code, body = _raw(host_cluster, path, token=token, method="POST", body=wrong)
    assert code == 400 and "API version" in body["message"]
    code, body = _raw(host_cluster, f"/api/v1/namespaces/{ns}/widgets", token=token)
    assert code == 404
    huge = json.dumps({"metadata": {"name": "big"}, "data": {"x": "y" * (4 * 1024 * 1024)}}).encode()
    code, body = _raw(host_cluster, path, token=token, method="POST", body=huge)
    assert code == 413 and body["reason"] == "RequestEntityTooLarge"
    yaml_body = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-yaml}\n"
    code, body = _raw(host_cluster, path, token=token, method="POST", body=yaml_body, content_type="application/yaml")
    assert code == 201 and body["metadata"]["name"] == "from-yaml"
    assert _raw(host_cluster, "/api/v1/namespaces", token=token)[0] == 200


# ----------------------------------------------------------------------------- updates and patches
def test_update_is_optimistic_and_status_is_a_subresource(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    svc = core.create_namespaced_service(
        ns,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="web"), spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)])
        ),
    )
    assert on_this_machine(svc.spec.cluster_ip) and svc.spec.type == "ClusterIP"
    assert svc.spec.ports[0].target_port == 80 and svc.spec.ports[0].protocol == "TCP"
    stale = svc.metadata.resource_version
    svc.metadata.labels = {"tier": "front"}
    svc.status = client.V1ServiceStatus(
        load_balancer=client.V1LoadBalancerStatus(ingress=[client.V1LoadBalancerIngress(ip="127.0.0.9")])
    )
    updated = core.replace_namespaced_service("web", ns, svc)
    assert updated.metadata.labels == {"tier": "front"}
    assert not updated.status.load_balancer.ingress, "status written through the main resource must be ignored"
    svc.metadata.resource_version = stale
    with pytest.raises(ApiException) as exc:
        core.replace_namespaced_service("web", ns, svc)
    assert exc.value.status == 409 and _status(exc.value)["reason"] == "Conflict"
    patched = core.patch_namespaced_service_status(
        "web", ns, {"status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.9"}]}}}
    )
    assert patched.status.load_balancer.ingress[0].ip == "127.0.0.9"


def test_merge_strategic_and_json_patch(api: client.ApiClient, host_cluster: EmbeddedCluster, ns: str) -> None:
    apps = client.AppsV1Api(api)
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "labels": {"a": "1"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {
                    "containers": [
                        {"name": "one", "image": "x:1", "command": ["sleep", "1"]},
                        {"name": "two", "image": "y:1", "command": ["sleep", "1"]},
                    ]
                },
            },
        },
    }
    created = apps.create_namespaced_deployment(ns, body)
    assert created.spec.strategy.type == "RollingUpdate" and created.spec.revision_history_limit == 10
    # strategic merge: containers merge by name
    smp = apps.patch_namespaced_deployment(
        "d", ns, {"spec": {"template": {"spec": {"containers": [{"name": "two", "image": "y:2"}]}}}}
    )
    images = {c.name: c.image for c in smp.spec.template.spec.containers}
    assert images == {"one": "x:1", "two": "y:2"}
    assert smp.metadata.generation == 2
    # JSON merge patch (sent raw: the client picks strategic merge for dict bodies): null deletes, lists replace
    code, merged = _raw(
        host_cluster,
        f"/apis/apps/v1/namespaces/{ns}/deployments/d",
        token=host_cluster.token,
        method="PATCH",
        content_type="application/merge-patch+json",
        body=json.dumps({"metadata": {"labels": {"a": None, "b": "2"}}}).encode(),
    )
    assert code == 200 and merged["metadata"]["labels"] == {"b": "2"}
    apps.patch_namespaced_deployment("d", ns, {"metadata": {"labels": {"a": "1", "b": None}}})
    json_patched = apps.patch_namespaced_deployment(
        "d",
        ns,
        [
            {"op": "test", "path": "/metadata/labels/a", "value": "1"},
            {"op": "replace", "path": "/spec/replicas", "value": 0},
            {"op": "add", "path": "/metadata/labels/c", "value": "3"},
        ],
    )
    assert json_patched.metadata.labels == {"a": "1", "c": "3"}
    with pytest.raises(ApiException) as exc:
        apps.patch_namespaced_deployment("d", ns, [{"op": "test", "path": "/metadata/labels/a", "value": "nope"}])
    assert exc.value.status == 422


def test_deletecollection_with_label_selector(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    for i in range(4):
        core.create_namespaced_config_map(ns, _cm(f"c{i}", {"group": "a" if i < 3 else "b"}))
    core.delete_collection_namespaced_config_map(ns, label_selector="group=a")
    left = [c.metadata.name for c in core.list_namespaced_config_map(ns, label_selector="group").items]
    assert left == ["c3"]


# ----------------------------------------------------------------------------- list and selectors
def test_label_and_field_selectors(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, _cm("x1", {"env": "prod", "tier": "web"}))
    core.create_namespaced_config_map(ns, _cm("x2", {"env": "dev", "tier": "web"}))
    core.create_namespaced_config_map(ns, _cm("x3", {"env": "qa"}))

    def names(**kw: str) -> list[str]:
        return [
            c.metadata.name
            for c in core.list_namespaced_config_map(ns, **kw).items
            if c.metadata.name != "kube-root-ca.crt"
        ]

    assert names(label_selector="env=prod") == ["x1"]
    assert names(label_selector="env!=prod,tier") == ["x2"]
    assert names(label_selector="env in (dev,qa)") == ["x2", "x3"]
    assert names(label_selector="env notin (dev),!tier") == ["x3"]
    assert names(field_selector="metadata.name=x2") == ["x2"]
    assert names(field_selector="metadata.name!=x2", label_selector="env") == ["x1", "x3"]
    with pytest.raises(ApiException) as exc:
        core.list_namespaced_config_map(ns, label_selector="env in (")
    assert exc.value.status == 400


def test_list_pagination(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    for i in range(7):
        core.create_namespaced_config_map(ns, _cm(f"p{i}", {"page": "yes"}))
    seen, token = [], None
    while True:
        page = core.list_namespaced_config_map(ns, label_selector="page", limit=3, _continue=token)
        seen += [c.metadata.name for c in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert seen == [f"p{i}" for i in range(7)]


# ----------------------------------------------------------------------------- watch
def test_watch_resume_selectors_and_timeout(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    start = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, _cm("w1", {"w": "yes"}))
    core.create_namespaced_config_map(ns, _cm("w2", {"w": "no"}))
    core.patch_namespaced_config_map("w1", ns, {"data": {"k": "v2"}})
    core.patch_namespaced_config_map("w1", ns, {"metadata": {"labels": {"w": "no"}}})
    core.delete_namespaced_config_map("w2", ns)
    events = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(
            core.list_namespaced_config_map, ns, resource_version=start, label_selector="w=yes", timeout_seconds=1
        )
    ]
    # w1 added, modified, then leaves the selector: kube reports that as DELETED
    assert events == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]
    everything = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(core.list_namespaced_config_map, ns, resource_version=start, timeout_seconds=1)
    ]
    assert everything[-1] == ("DELETED", "w2") and len(everything) == 5


def test_watch_sees_live_events_and_bookmarks(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    seen: list[tuple[str, str]] = []
    w = watch.Watch()
    ready = threading.Event()

    def consume() -> None:
        ready.set()
        for event in w.stream(core.list_namespaced_config_map, ns, timeout_seconds=3, allow_watch_bookmarks=True):
            seen.append((event["type"], event["object"].metadata.name))
            if event["type"] == "DELETED":
                w.stop()

    thread = threading.Thread(target=consume)
    thread.start()
    ready.wait()
    eventually(lambda: ("ADDED", "kube-root-ca.crt") in seen or seen == [], what="watch to start")
    core.create_namespaced_config_map(ns, _cm("live"))
    core.delete_namespaced_config_map("live", ns)
    thread.join(timeout=10)
    assert ("ADDED", "live") in seen and ("DELETED", "live") in seen


def test_watch_from_compacted_version_is_410(api: client.ApiClient, host_cluster: EmbeddedCluster, ns: str) -> None:
    core = client.CoreV1Api(api)
    old = core.create_namespaced_config_map(ns, _cm("old")).metadata.resource_version
    core.create_namespaced_config_map(ns, _cm("newer"))
    host_cluster.store.compact()
    with pytest.raises(ApiException) as exc:
        list(watch.Watch().stream(core.list_namespaced_config_map, ns, resource_version=old, timeout_seconds=1))
    assert exc.value.status == 410


# ----------------------------------------------------------------------------- deletion semantics
def test_finalizers_hold_deletion(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, _cm("held", finalizers=["example.com/hold"]))
    core.delete_namespaced_config_map("held", ns)
    held = core.read_namespaced_config_map("held", ns)
    assert held.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("held", ns, {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("held", ns)
    assert exc.value.status == 404


@pytest.mark.parametrize(("policy", "dependents_left"), [("Background", 0), ("Foreground", 0), ("Orphan", 2)])
def test_owner_reference_garbage_collection(api: client.ApiClient, ns: str, policy: str, dependents_left: int) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(ns, _cm("owner"))
    ref = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid, block_owner_deletion=True
    )
    for i in range(2):
        core.create_namespaced_config_map(ns, _cm(f"dep{i}", {"dep": "yes"}, owner_references=[ref]))
    core.delete_namespaced_config_map("owner", ns, propagation_policy=policy)

    def remaining() -> list[client.V1ConfigMap]:
        return core.list_namespaced_config_map(ns, label_selector="dep").items

    eventually(lambda: len(remaining()) == dependents_left, what=f"{policy} GC to leave {dependents_left}")
    with pytest.raises(ApiException):
        eventually(lambda: core.read_namespaced_config_map("owner", ns) and False, timeout_s=0.1)
    eventually(lambda: _gone(core, "owner", ns), what="owner removed")
    if policy == "Orphan":
        assert all(not c.metadata.owner_references for c in remaining())


def _gone(core: client.CoreV1Api, name: str, ns: str) -> bool:
    try:
        core.read_namespaced_config_map(name, ns)
    except ApiException as exc:
        return exc.status == 404
    return False


def test_namespace_deletion_cascades(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="cascade-me")))
    core.create_namespaced_config_map("cascade-me", _cm("inside"))
    deleted = core.delete_namespace("cascade-me")
    assert deleted is not None
    eventually(
        lambda: all(n.metadata.name != "cascade-me" for n in core.list_namespace().items), what="namespace cascade"
    )
    assert core.list_config_map_for_all_namespaces(field_selector="metadata.namespace=cascade-me").items == []


# ----------------------------------------------------------------------------- custom resources
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "mpijobs.kubeflow.org"},
    "spec": {
        "group": "kubeflow.org",
        "scope": "Namespaced",
        "names": {"plural": "mpijobs", "singular": "mpijob", "kind": "MPIJob", "shortNames": ["mj"]},
        "versions": [
            {
                "name": "v2beta1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                "subresources": {"status": {}},
            }
        ],
    },
}


def test_custom_resources_of_any_crd(api: client.ApiClient, ns: str) -> None:
    ext = client.ApiextensionsV1Api(api)
    ext.create_custom_resource_definition(CRD)
    try:
        groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
        assert "kubeflow.org" in groups
        custom = client.CustomObjectsApi(api)
        body = {
            "apiVersion": "kubeflow.org/v2beta1",
            "kind": "MPIJob",
            "metadata": {"name": "allreduce"},
            "spec": {"slotsPerWorker": 8, "mpiReplicaSpecs": {"Worker": {"replicas": 2}}},
        }
        created = custom.create_namespaced_custom_object("kubeflow.org", "v2beta1", ns, "mpijobs", body)
        assert created["metadata"]["uid"] and created["spec"]["slotsPerWorker"] == 8
        listed = custom.list_namespaced_custom_object("kubeflow.org", "v2beta1", ns, "mpijobs")
        assert [o["metadata"]["name"] for o in listed["items"]] == ["allreduce"]
        patched = custom.patch_namespaced_custom_object(
            "kubeflow.org", "v2beta1", ns, "mpijobs", "allreduce", {"spec": {"slotsPerWorker": 4}}
        )
        assert patched["spec"]["slotsPerWorker"] == 4 and patched["spec"]["mpiReplicaSpecs"]
        dyn = dynamic.DynamicClient(api)
        assert dyn.resources.get(api_version="kubeflow.org/v2beta1", kind="MPIJob").namespaced
    finally:
        ext.delete_custom_resource_definition("mpijobs.kubeflow.org")
    eventually(
        lambda: "kubeflow.org" not in {g.name for g in client.ApisApi(api).get_api_versions().groups},
        what="CRD group to disappear",
    )


def test_system_objects_exist(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    names = {n.metadata.name for n in core.list_namespace().items}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names
    classes = client.StorageV1Api(api).list_storage_class().items
    default = [
        c
        for c in classes
        if (c.metadata.annotations or {}).get("storageclass.kubernetes.io/is-default-class") == "true"
    ]
    assert [c.metadata.name for c in default] == ["local-path"]
    nodes = core.list_node().items
    assert len(nodes) == 1
    node = nodes[0]
    assert int(node.status.capacity["cpu"]) >= 1 and node.status.capacity["memory"].endswith("Ki")
    assert node.status.node_info.kubelet_version and node.metadata.labels["kubernetes.io/os"] == "linux"


def test_bookmarks_are_sent_when_allowed(host_cluster: EmbeddedCluster, ns: str) -> None:
    # The host cluster fixture sends a bookmark every 0.5 s of idle watch time.
    request = urllib.request.Request(
        f"{host_cluster.server_url}/api/v1/namespaces/{ns}/configmaps?watch=true&allowWatchBookmarks=true"
        "&timeoutSeconds=2"
    )
    request.add_header("Authorization", f"Bearer {host_cluster.token}")
    with urllib.request.urlopen(request, timeout=10, context=host_cluster.tls.client_context()) as response:
        lines = [json.loads(line) for line in response.read().splitlines() if line.strip()]
    bookmarks = [e for e in lines if e["type"] == "BOOKMARK"]
    assert bookmarks, lines
    assert bookmarks[0]["object"]["kind"] == "ConfigMap" and int(bookmarks[0]["object"]["metadata"]["resourceVersion"])


def test_terminating_namespace_refuses_new_content(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="closing")))
    core.create_namespaced_config_map("closing", _cm("held", finalizers=["example.com/hold"]))
    core.delete_namespace("closing")
    assert core.read_namespace("closing").status.phase == "Terminating"
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map("closing", _cm("late"))
    assert exc.value.status == 403 and _status(exc.value)["reason"] == "Forbidden"
    core.patch_namespaced_config_map("held", "closing", {"metadata": {"finalizers": None}})
    eventually(
        lambda: "closing" not in {n.metadata.name for n in core.list_namespace().items},
        what="namespace gone once the finalizer is released",
    )


def test_server_side_apply_creates_then_updates(api: client.ApiClient, ns: str) -> None:
    dyn = dynamic.DynamicClient(api)
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "applied", "namespace": ns},
        "data": {"a": "1"},
    }
    first = cms.server_side_apply(body=body, name="applied", namespace=ns, field_manager="aibench")
    body["data"] = {"a": "2", "b": "3"}
    second = cms.server_side_apply(body=body, name="applied", namespace=ns, field_manager="aibench")
    assert first.metadata.uid == second.metadata.uid and dict(second.data) == {"a": "2", "b": "3"}


def test_cluster_ips_never_collide_with_reserved_ones(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    reserved = core.read_namespaced_service("kubernetes", "default").spec.cluster_ip
    ips = {
        core.list_service_for_all_namespaces().items[i].spec.cluster_ip
        for i in range(len(core.list_service_for_all_namespaces().items))
    }
    created = core.create_namespaced_service(
        ns,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="fresh"), spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)])
        ),
    )
    assert created.spec.cluster_ip != reserved and created.spec.cluster_ip not in ips
