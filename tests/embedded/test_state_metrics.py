"""kube-state-metrics families served by the embedded target: pure rendering, and through its Service."""

from __future__ import annotations

from eventually import eventually
from kubernetes import client

from harness.cluster.prometheus import ServiceHttp
from harness.cluster.target import Connection
from harness.embedded.state_metrics import render, resource_labels
from harness.parsers.exposition import parse_exposition

NODE = {
    "metadata": {"name": "gpu-0"},
    "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]},
    "status": {
        "capacity": {"cpu": "96", "memory": "1Ti", "nvidia.com/gpu": "8"},
        "allocatable": {"cpu": "95500m", "memory": "1Ti", "nvidia.com/gpu": "8"},
        "conditions": [{"type": "Ready", "status": "True"}],
        "nodeInfo": {"kubeletVersion": "v1.31.0"},
        "addresses": [{"type": "InternalIP", "address": "127.0.0.5"}],
    },
}
POD = {
    "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "ownerReferences": [{"kind": "Job", "name": "j"}]},
    "spec": {
        "nodeName": "gpu-0",
        "containers": [{"name": "c", "resources": {"requests": {"cpu": "250m"}, "limits": {"nvidia.com/gpu": "2"}}}],
    },
    "status": {"phase": "Running", "podIP": "127.80.0.9"},
}


def test_families_follow_kube_state_metrics_conventions() -> None:
    series = parse_exposition(render([NODE], [POD], [{"metadata": {"name": "ns"}, "status": {"phase": "Active"}}]))
    by = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in series}

    def value(name: str, **labels: str) -> float:
        return by[(name, tuple(sorted({"__name__": name, **labels}.items())))]

    assert value("kube_node_status_allocatable", node="gpu-0", resource="cpu", unit="core") == 95.5
    assert value("kube_node_status_allocatable", node="gpu-0", resource="nvidia_com_gpu", unit="integer") == 8
    assert value("kube_node_status_capacity", node="gpu-0", resource="memory", unit="byte") == 1024.0**4
    assert value("kube_node_status_condition", node="gpu-0", condition="Ready", status="true") == 1
    assert value("kube_node_status_condition", node="gpu-0", condition="Ready", status="false") == 0
    assert value("kube_node_spec_taint", node="gpu-0", key="nvidia.com/gpu", value="present", effect="NoSchedule") == 1
    assert value("kube_pod_status_phase", namespace="ns", pod="p", uid="u1", phase="Running") == 1
    assert value("kube_pod_status_phase", namespace="ns", pod="p", uid="u1", phase="Pending") == 0
    limits = [s for s in series if s.name == "kube_pod_container_resource_limits"]
    assert [(s.labels["resource"], s.labels["unit"], s.value) for s in limits] == [("nvidia_com_gpu", "integer", 2)]
    info = next(s for s in series if s.name == "kube_pod_info")
    assert (info.labels["created_by_kind"], info.labels["node"], info.labels["pod_ip"]) == (
        "Job",
        "gpu-0",
        "127.80.0.9",
    )
    assert value("kube_namespace_status_phase", namespace="ns", phase="Active") == 1
    assert resource_labels("ephemeral-storage") == ("ephemeral_storage", "byte")


def test_served_as_a_kube_system_service(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "x"}})
    core.create_namespaced_pod(
        ns,
        {
            "metadata": {"name": "sleeper"},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "30"]}]},
        },
    )
    ksm = ServiceHttp("kube-system/kube-state-metrics:8080", cluster=Connection(api), what="kube-state-metrics")

    def pod_listed() -> list:
        series = parse_exposition(ksm.text("/metrics"))
        return [s for s in series if s.name == "kube_pod_info" and s.labels.get("namespace") == ns]

    (info,) = eventually(pod_listed, timeout_s=10, what="the pod in kube_pod_info")
    assert info.labels["pod"] == "sleeper"
    nodes = {n.metadata.name for n in core.list_node().items}
    listed = {s.labels["node"] for s in parse_exposition(ksm.text("/metrics")) if s.name == "kube_node_info"}
    assert listed == nodes
