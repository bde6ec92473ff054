"""PATCH semantics of the embedded API server (merge, JSON and strategic merge patch)."""

from __future__ import annotations

import copy
import json

import pytest

from harness.embedded.patch import (
    ListRule,
    PatchError,
    json_merge_patch,
    json_patch,
    list_rule,
    strategic_merge_patch,
)


def make_deployment() -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "team-a",
            "labels": {"app": "web", "aibench.io/run-id": "r1"},
            "finalizers": ["aibench.io/cleanup"],
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "u-1"}],
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "nginx:1.25",
                            "args": ["--a", "--b"],
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}],
                        },
                        {"name": "sidecar", "image": "busybox", "command": ["sleep", "inf"]},
                    ],
                    "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}],
                    "tolerations": [{"key": "gpu", "operator": "Exists"}],
                },
            },
        },
        "status": {
            "conditions": [
                {"type": "Available", "status": "True"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ]
        },
    }


def containers(obj: dict) -> list[dict]:
    return obj["spec"]["template"]["spec"]["containers"]


# --- RFC 7386 ------------------------------------------------------------------------------------------------


def test_merge_patch_rfc7386_semantics() -> None:
    target = make_deployment()
    before = copy.deepcopy(target)
    patch = {
        "metadata": {"labels": {"tier": "web", "aibench.io/run-id": None}},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "only"}]}}},
    }
    result = json_merge_patch(target, patch)
    assert target == before  # inputs untouched
    assert result["metadata"]["labels"] == {"app": "web", "tier": "web"}
    assert result["spec"]["replicas"] == 3
    assert containers(result) == [{"name": "only"}]  # lists are replaced wholesale
    assert result["spec"]["strategy"] == before["spec"]["strategy"]
    result["spec"]["strategy"]["type"] = "Recreate"
    assert target["spec"]["strategy"]["type"] == "RollingUpdate"  # no shared structure


def test_merge_patch_replaces_scalar_with_object_and_null_inside_new_object() -> None:
    result = json_merge_patch({"a": "x"}, {"a": {"b": 1, "c": None}})
    assert result == {"a": {"b": 1}}


# --- RFC 6902 ------------------------------------------------------------------------------------------------


def test_json_patch_all_operations() -> None:
    target = make_deployment()
    before = copy.deepcopy(target)
    result = json_patch(
        target,
        [
            {"op": "test", "path": "/spec/replicas", "value": 2},
            {"op": "replace", "path": "/spec/replicas", "value": 5},
            {"op": "add", "path": "/metadata/annotations", "value": {}},
            {"op": "add", "path": "/metadata/annotations/example.com~1note", "value": "a/b"},
            {"op": "add", "path": "/metadata/labels/tilde~0key", "value": "t"},
            {"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": "--c"},
            {"op": "add", "path": "/spec/template/spec/containers/0/args/0", "value": "--first"},
            {"op": "remove", "path": "/metadata/labels/aibench.io~1run-id"},
            {"op": "copy", "from": "/metadata/labels/app", "path": "/metadata/labels/copied"},
            {"op": "move", "from": "/spec/template/spec/tolerations", "path": "/spec/tolerationsMoved"},
            {"op": "remove", "path": "/spec/template/spec/containers/1"},
        ],
    )
    assert target == before
    assert result["spec"]["replicas"] == 5
    assert result["metadata"]["annotations"] == {"example.com/note": "a/b"}
    assert result["metadata"]["labels"] == {"app": "web", "tilde~key": "t", "copied": "web"}
    assert containers(result)[0]["args"] == ["--first", "--a", "--b", "--c"]
    assert [c["name"] for c in containers(result)] == ["app"]
    assert "tolerations" not in result["spec"]["template"]["spec"]
    assert result["spec"]["tolerationsMoved"] == [{"key": "gpu", "operator": "Exists"}]


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ([{"op": "test", "path": "/spec/replicas", "value": 3}], "testing value"),
        ([{"op": "test", "path": "/spec/replicas", "value": True}], "testing value"),
        ([{"op": "remove", "path": "/spec/missing"}], "nonexistent"),
        ([{"op": "replace", "path": "/spec/missing", "value": 1}], "missing"),
        ([{"op": "add", "path": "/nope/deeper", "value": 1}], "missing path"),
        ([{"op": "add", "path": "/spec/template/spec/containers/5", "value": {}}], "out of bounds"),
        ([{"op": "add", "path": "/spec/template/spec/containers/01", "value": {}}], "invalid array index"),
        ([{"op": "remove", "path": "/spec/template/spec/containers/-"}], "invalid array index"),
        ([{"op": "move", "from": "/spec", "path": "/spec/inner"}], "own child"),
        ([{"op": "frobnicate", "path": "/spec"}], "unexpected kind"),
        ([{"op": "add", "path": "/spec/x"}], "missing required field 'value'"),
        ([{"op": "add", "path": "spec", "value": 1}], "invalid JSON pointer"),
        ([{"op": "add", "path": "/a~2b", "value": 1}], "escaped"),
        ([{"op": "replace", "path": "", "value": [1]}], "not a JSON object"),
    ],
)
def test_json_patch_errors(ops: list, message: str) -> None:
    target = make_deployment()
    before = copy.deepcopy(target)
    with pytest.raises(PatchError, match=message):
        json_patch(target, ops)
    assert target == before


def test_json_patch_is_atomic_and_root_replace() -> None:
    target = {"a": 1}
    with pytest.raises(PatchError):
        json_patch(target, [{"op": "add", "path": "/b", "value": 2}, {"op": "test", "path": "/b", "value": 3}])
    assert target == {"a": 1}
    assert json_patch(target, [{"op": "replace", "path": "", "value": {"z": 1}}]) == {"z": 1}
    assert json_patch({"a": {"x": [1, {"k": 1}]}}, [{"op": "test", "path": "/a", "value": {"x": [1, {"k": 1}]}}])


# --- strategic merge patch -----------------------------------------------------------------------------------


def test_list_rules_follow_builtin_struct_tags() -> None:
    assert list_rule(("spec", "template", "spec", "containers")) == ListRule(merge_key="name")
    assert list_rule(("spec", "containers", "ports")) == ListRule(merge_key="containerPort")
    assert list_rule(("spec", "ports"), "Service") == ListRule(merge_key="port")
    assert list_rule(("metadata", "finalizers")) == ListRule(merge_key=None)
    assert list_rule(("spec", "finalizers")) is None  # Namespace spec.finalizers is atomic
    assert list_rule(("spec", "tolerations")) is None
    assert list_rule(("spec", "containers", "envFrom")) is None
    assert list_rule(("status", "conditions")) == ListRule(merge_key="type")
    assert list_rule(("spec", "template", "spec", "topologySpreadConstraints")) == ListRule(merge_key="topologyKey")


def test_strategic_merges_containers_env_ports_by_key() -> None:
    target = make_deployment()
    before = copy.deepcopy(target)
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "nginx:1.26",
                            "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}],
                            "ports": [{"containerPort": 443, "protocol": "TCP"}],
                            "args": ["--only"],
                        },
                        {"name": "new", "image": "alpine"},
                    ],
                    "tolerations": [{"key": "tpu", "operator": "Exists"}],
                }
            }
        }
    }
    result = strategic_merge_patch(target, patch, "Deployment")
    assert target == before
    app, sidecar, new = containers(result)
    assert app["image"] == "nginx:1.26"
    assert app["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "20"}, {"name": "C", "value": "3"}]
    assert [p["containerPort"] for p in app["ports"]] == [80, 443]
    assert app["args"] == ["--only"]  # primitive list without strategy: replaced
    assert app["volumeMounts"] == [{"name": "cfg", "mountPath": "/etc/cfg"}]
    assert sidecar == before["spec"]["template"]["spec"]["containers"][1]
    assert new == {"name": "new", "image": "alpine"}
    assert result["spec"]["template"]["spec"]["tolerations"] == [{"key": "tpu", "operator": "Exists"}]


def test_strategic_null_deletes_and_maps_merge() -> None:
    result = strategic_merge_patch(
        make_deployment(),
        {
            "metadata": {"labels": {"aibench.io/run-id": None, "new": "1"}},
            "spec": {"strategy": {"rollingUpdate": None}},
        },
        "Deployment",
    )
    assert result["metadata"]["labels"] == {"app": "web", "new": "1"}
    assert result["spec"]["strategy"] == {"type": "RollingUpdate"}


def test_strategic_patch_delete_directive_in_list_and_map() -> None:
    result = strategic_merge_patch(
        make_deployment(),
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "sidecar", "$patch": "delete"},
                            {"name": "app", "env": [{"name": "A", "$patch": "delete"}]},
                        ]
                    }
                },
                "strategy": {"$patch": "delete"},
            },
        },
        "Deployment",
    )
    assert [c["name"] for c in containers(result)] == ["app"]
    assert containers(result)[0]["env"] == [{"name": "B", "value": "2"}]
    assert "strategy" not in result["spec"]


def test_strategic_patch_replace_directive_in_map_list_and_element() -> None:
    target = make_deployment()
    result = strategic_merge_patch(
        target,
        {
            "spec": {"strategy": {"$patch": "replace", "type": "Recreate"}},
            "metadata": {"labels": {"$patch": "replace"}},
        },
        "Deployment",
    )
    assert result["spec"]["strategy"] == {"type": "Recreate"}
    assert result["metadata"]["labels"] == {}

    result = strategic_merge_patch(
        target,
        {"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "solo", "image": "x"}]}}}},
        "Deployment",
    )
    assert containers(result) == [{"name": "solo", "image": "x"}]

    result = strategic_merge_patch(
        target,
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "$patch": "replace", "image": "y"}]}}}},
        "Deployment",
    )
    assert containers(result)[0] == {"name": "app", "image": "y"}
    assert containers(result)[1]["name"] == "sidecar"


def test_strategic_primitive_merge_list_and_delete_from_primitive_list() -> None:
    target = make_deployment()
    added = strategic_merge_patch(target, {"metadata": {"finalizers": ["b", "aibench.io/cleanup"]}}, "Deployment")
    assert added["metadata"]["finalizers"] == ["aibench.io/cleanup", "b"]
    removed = strategic_merge_patch(
        added, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["aibench.io/cleanup"]}}, "Deployment"
    )
    assert removed["metadata"]["finalizers"] == ["b"]


def test_strategic_owner_references_and_conditions_merge() -> None:
    result = strategic_merge_patch(
        make_deployment(),
        {
            "metadata": {"ownerReferences": [{"uid": "u-2", "kind": "Job", "name": "j", "apiVersion": "batch/v1"}]},
            "status": {
                "conditions": [{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"}]
            },
        },
        "Deployment",
    )
    assert [o["uid"] for o in result["metadata"]["ownerReferences"]] == ["u-1", "u-2"]
    available, progressing = result["status"]["conditions"]
    assert available == {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"}
    assert progressing["type"] == "Progressing"


def test_strategic_service_ports_merge_by_port() -> None:
    svc = {
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }
    result = strategic_merge_patch(
        svc, {"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"name": "https", "port": 443}]}}, "Service"
    )
    assert result["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": 9090},
        {"name": "https", "port": 443},
    ]


def test_strategic_retain_keys() -> None:
    result = strategic_merge_patch(
        make_deployment(),
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
        "Deployment",
    )
    assert result["spec"]["strategy"] == {"type": "Recreate"}


def test_strategic_set_element_order() -> None:
    result = strategic_merge_patch(
        make_deployment(),
        {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
                        "containers": [{"name": "sidecar", "image": "busybox:1.36"}],
                    }
                }
            }
        },
        "Deployment",
    )
    assert [c["name"] for c in containers(result)] == ["sidecar", "app"]
    assert containers(result)[0]["image"] == "busybox:1.36"
    assert not any(k.startswith("$") for k in result["spec"]["template"]["spec"])


def test_strategic_directives_inside_new_elements_are_consumed() -> None:
    result = strategic_merge_patch(
        make_deployment(),
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "fresh",
                                "image": "x",
                                "$setElementOrder/env": [{"name": "Z"}],
                                "env": [{"name": "Z", "value": "1"}],
                                "resources": {"limits": {"cpu": "1", "memory": None}},
                            }
                        ]
                    }
                }
            }
        },
        "Deployment",
    )
    fresh = containers(result)[2]
    assert fresh == {
        "name": "fresh",
        "image": "x",
        "env": [{"name": "Z", "value": "1"}],
        "resources": {"limits": {"cpu": "1"}},
    }


def test_kubectl_apply_shaped_patch() -> None:
    """What `kubectl apply` sends after a user bumps an image, drops a sidecar and an env var."""
    target = make_deployment()
    applied = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "team-a"},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}},
    }
    patch = {
        "metadata": {
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied) + "\n"},
        },
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "app"}],
                    "containers": [
                        {
                            "$setElementOrder/env": [{"name": "A"}],
                            "env": [{"$patch": "delete", "name": "B"}],
                            "image": "nginx:1.27",
                            "name": "app",
                        },
                        {"$patch": "delete", "name": "sidecar"},
                    ],
                }
            }
        },
    }
    result = strategic_merge_patch(target, patch, "Deployment")
    annotations = result["metadata"]["annotations"]
    assert json.loads(annotations["kubectl.kubernetes.io/last-applied-configuration"]) == applied
    (app,) = containers(result)
    assert app["image"] == "nginx:1.27"
    assert app["env"] == [{"name": "A", "value": "1"}]
    assert app["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert result["metadata"]["labels"] == target["metadata"]["labels"]


@pytest.mark.parametrize(
    "patch",
    [
        {"spec": {"template": {"spec": {"containers": [{"image": "no-name"}]}}}},
        {"spec": {"template": {"spec": {"containers": ["not-a-map"]}}}},
        {"spec": {"strategy": {"$patch": "explode"}}},
        {"$patch": "delete"},
        {"spec": {"strategy": {"$retainKeys": "type"}}},
    ],
)
def test_strategic_errors(patch: dict) -> None:
    with pytest.raises(PatchError):
        strategic_merge_patch(make_deployment(), patch, "Deployment")
