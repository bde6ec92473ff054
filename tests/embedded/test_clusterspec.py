from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from kubernetes.client import ApiClient

from harness.embedded.clusterspec import (
    ClusterSpec,
    HostSpec,
    Taint,
    all_nodes,
    apply_host_overrides,
    emulated_nodes,
    load_cluster_spec,
)
from harness.embedded.inventory import NvmlProbe, host_node
from harness.errors import ClusterSpecError, ConfigError, HarnessError

GOOD = """\
apiVersion: aibench.io/v1
kind: ClusterSpec
host:
  include: true
  labels: {topology.kubernetes.io/zone: z0}
  taints: [{key: aibench.io/host, effect: PreferNoSchedule}]
nodePools:
  - name: gpu-a
    count: 4
    capacity: {cpu: "96", memory: 1Ti, nvidia.com/gpu: "8", rdma/ib: "8", pods: "110"}
    labels: {nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3, topology.kubernetes.io/zone: z1}
    taints: [{key: nvidia.com/gpu, value: present, effect: NoSchedule}]
    topology: {block: b1, rack: "r{i//2}", accelerator: "nvl-{i}"}
  - name: cpu
    count: 2
    capacity: {cpu: 32, memory: 128Gi}
    allocatable: {cpu: 31500m}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


class NoGpus:
    NVMLError = RuntimeError

    def nvmlInit(self) -> None:
        raise RuntimeError("no driver")

    def nvmlShutdown(self) -> None:
        pass


def test_load_good_spec(tmp_path: Path) -> None:
    spec = load_cluster_spec(write(tmp_path, GOOD))
    assert spec.host == HostSpec(
        include=True,
        labels={"topology.kubernetes.io/zone": "z0"},
        taints=(Taint(key="aibench.io/host", effect="PreferNoSchedule"),),
    )
    gpu, cpu = spec.node_pools
    assert gpu.name == "gpu-a"
    assert gpu.count == 4
    assert gpu.capacity["nvidia.com/gpu"] == "8"
    assert gpu.taints == (Taint(key="nvidia.com/gpu", value="present", effect="NoSchedule"),)
    assert cpu.capacity == {"cpu": "32", "memory": "128Gi", "pods": "110"}
    assert cpu.allocatable == {"cpu": "31500m", "memory": "128Gi", "pods": "110"}
    assert spec.emulated_node_count == 6


def test_emulated_nodes(tmp_path: Path) -> None:
    nodes = emulated_nodes(load_cluster_spec(write(tmp_path, GOOD)))
    assert [n["metadata"]["name"] for n in nodes] == ["gpu-a-0", "gpu-a-1", "gpu-a-2", "gpu-a-3", "cpu-0", "cpu-1"]
    third = nodes[2]
    labels = third["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "gpu-a-2"
    assert labels["aibench.io/emulated"] == "true"
    assert labels["aibench.io/node-pool"] == "gpu-a"
    assert labels["nvidia.com/gpu.present"] == "true"
    assert labels["nvidia.com/gpu.count"] == "8"
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert labels["topology.kubernetes.io/zone"] == "z1"
    assert labels["network.topology.kubernetes.io/block"] == "b1"
    assert labels["network.topology.kubernetes.io/rack"] == "r1"
    assert labels["network.topology.kubernetes.io/accelerator"] == "nvl-2"
    assert third["metadata"]["annotations"] == {"aibench.io/emulated": "true"}
    assert third["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    assert third["status"]["capacity"]["rdma/ib"] == "8"
    assert third["status"]["allocatable"] == third["status"]["capacity"]
    assert nodes[4]["status"]["allocatable"]["cpu"] == "31500m"
    assert "nvidia.com/gpu.present" not in nodes[4]["metadata"]["labels"]
    ips = [next(a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP") for n in nodes]
    assert len(set(ips)) == len(ips)
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("127.1.0.0/16") for ip in ips)
    assert "127.0.0.1" not in ips
    client = ApiClient()
    for node in nodes:
        model = client._ApiClient__deserialize(node, "V1Node")
        assert model.metadata.name == node["metadata"]["name"]


def test_host_overrides_and_all_nodes(tmp_path: Path) -> None:
    spec = load_cluster_spec(write(tmp_path, GOOD))
    host = host_node("box", nvml=NvmlProbe(nvml=NoGpus()))
    overridden = apply_host_overrides(host, spec)
    assert overridden["metadata"]["labels"]["topology.kubernetes.io/zone"] == "z0"
    assert overridden["spec"]["taints"] == [{"key": "aibench.io/host", "effect": "PreferNoSchedule"}]
    assert "taints" not in host["spec"]  # input untouched
    nodes = all_nodes(host, spec)
    assert [n["metadata"]["name"] for n in nodes][:2] == ["box", "gpu-a-0"]
    assert len(nodes) == 7
    excluded = ClusterSpec(host=HostSpec(include=False), node_pools=spec.node_pools)
    without_host = all_nodes(host, excluded)
    assert len(without_host) == 6
    assert without_host[0]["metadata"]["name"] == "gpu-a-0"
    assert all_nodes(host, None) == [host]


def test_host_override_cannot_rename_hostname_label() -> None:
    spec = ClusterSpec(host=HostSpec(labels={"kubernetes.io/hostname": "other"}))
    host = host_node("box", nvml=NvmlProbe(nvml=NoGpus()))
    assert apply_host_overrides(host, spec)["metadata"]["labels"]["kubernetes.io/hostname"] == "box"


def test_name_clash_with_host() -> None:
    spec = load_cluster_spec_text(HEADER + "nodePools: [{name: box, count: 1, capacity: {cpu: 1, memory: 1Gi}}]\n")
    host = host_node("box-0", nvml=NvmlProbe(nvml=NoGpus()))
    with pytest.raises(ClusterSpecError, match="clashes with the host"):
        all_nodes(host, spec)


def load_cluster_spec_text(text: str) -> ClusterSpec:
    from harness.embedded.clusterspec import parse_cluster_spec

    return parse_cluster_spec(text, Path("/x/spec.yaml"))


HEADER = "apiVersion: aibench.io/v1\nkind: ClusterSpec\n"
POOL = "  - {name: p, count: 1, capacity: {cpu: '1', memory: 1Gi}}\n"


@pytest.mark.parametrize(
    ("text", "key_path", "fragment"),
    [
        (
            HEADER + "nodePools:\n" + POOL + "  - name: q\n    count: 1\n    capacity: {cpu: '1', memory: 1Gi}\n"
            "    taints: [{key: a, effect: Never}]\n",
            "nodePools[1].taints[0].effect",
            "must be one of NoSchedule, PreferNoSchedule, NoExecute (got 'Never')",
        ),
        (HEADER + "nodes: []\n", "nodes", "unknown key"),
        (
            HEADER + "nodePools:\n  - {name: p, count: 1, capacity: {cpu: '1', memory: 1Gi}, colour: red}\n",
            "nodePools[0].colour",
            "unknown key",
        ),
        (
            HEADER + "nodePools:\n  - {name: p, count: '4', capacity: {cpu: '1', memory: 1Gi}}\n",
            "nodePools[0].count",
            "must be an integer",
        ),
        (
            HEADER + "nodePools:\n  - {name: p, count: -1, capacity: {cpu: '1', memory: 1Gi}}\n",
            "nodePools[0].count",
            "between 0 and 5000",
        ),
        (
            HEADER + "nodePools:\n  - {name: p, count: 5001, capacity: {cpu: '1', memory: 1Gi}}\n",
            "nodePools[0].count",
            "between 0 and 5000",
        ),
        (
            HEADER + "nodePools:\n  - {name: p, count: 1, capacity: {cpu: '1', memory: 1GB}}\n",
            "nodePools[0].capacity.memory",
            "invalid quantity '1GB'",
        ),
        (
            HEADER + "nodePools:\n  - {name: p, count: 1, capacity: {cpu: '-1', memory: 1Gi}}\n",
            "nodePools[0].capacity.cpu",
            "must not be negative",
        ),
        (
            HEADER + "nodePools:\n  - {name: p, count: 1, capacity: {cpu: '1', memory: 1Gi, nvidia.com/gpu: '0.5'}}\n",
            'nodePools[0].capacity["nvidia.com/gpu"]',
            "whole numbers",
        ),
        (
            HEADER + "nodePools:\n  - {name: p, count: 1, capacity: {memory: 1Gi}}\n",
            "nodePools[0].capacity",
            "missing required resource 'cpu'",
        ),
        (HEADER + "nodePools:\n" + POOL + POOL, "nodePools[1].name", "duplicate pool name 'p'"),
        (
            HEADER + "nodePools:\n  - {name: Bad_Pool, count: 1, capacity: {cpu: '1', memory: 1Gi}}\n",
            "nodePools[0].name",
            "invalid pool name",
        ),
        (
            HEADER
            + "nodePools:\n  - {name: p, count: 1, capacity: {cpu: '1', memory: 1Gi}, labels: {'bad key!': x}}\n",
            'nodePools[0].labels["bad key!"]',
            "invalid name",
        ),
        (
            HEADER
            + "nodePools:\n  - {name: p, count: 1, capacity: {cpu: '1', memory: 1Gi}, labels: {a: 'has space'}}\n",
            "nodePools[0].labels.a",
            "invalid label value",
        ),
        (
            HEADER + "nodePools:\n  - {name: p, count: 1, capacity: {cpu: '1', memory: 1Gi}, labels: {a: true}}\n",
            "nodePools[0].labels.a",
            "must be a string",
        ),
        (
            HEADER + "nodePools:\n  - {name: p, count: 1, capacity: {cpu: '1', memory: 1Gi}, topology: {pod: x}}\n",
            "nodePools[0].topology.pod",
            "unknown key",
        ),
        (
            HEADER + "nodePools:\n  - {name: p, count: 1, capacity: {cpu: '1'}, allocatable: {cpu: '2'}}\n",
            "nodePools[0].capacity",
            "missing required resource 'memory'",
        ),
        (
            HEADER
            + "nodePools:\n  - {name: p, count: 1, capacity: {cpu: '1', memory: 1Gi}, allocatable: {cpu: '2'}}\n",
            "nodePools[0].allocatable.cpu",
            "exceeds capacity",
        ),
        (HEADER + "host: {include: 'yes please'}\n", "host.include", "must be true or false"),
        (HEADER + "host: {taints: [{key: a}]}\n", "host.taints[0]", "missing required key 'effect'"),
        ("apiVersion: v1\nkind: ClusterSpec\n", "apiVersion", "must be 'aibench.io/v1'"),
        ("apiVersion: aibench.io/v1\nkind: Cluster\n", "kind", "must be 'ClusterSpec'"),
        ("- just\n- a list\n", "", "must be a mapping (got list)"),
        ("", "", "must be a mapping (got null)"),
        (HEADER + "nodePools: [\n", "", "invalid YAML"),
        (HEADER + "kind: ClusterSpec\n", "", "duplicate key 'kind'"),
    ],
)
def test_invalid_specs(tmp_path: Path, text: str, key_path: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ClusterSpecError) as info:
        load_cluster_spec(path)
    err = info.value
    assert err.path == path
    assert err.key_path == key_path
    assert fragment in str(err)
    assert "\n" not in str(err)
    assert str(err).startswith(f"cluster spec {path}: ")


def test_error_message_format() -> None:
    err = ClusterSpecError(Path("/x/spec.yaml"), "nodePools[1].taints[0].effect", "must be one of A (got 'Never')")
    assert str(err) == "cluster spec /x/spec.yaml: nodePools[1].taints[0].effect: must be one of A (got 'Never')"
    assert isinstance(err, ConfigError)
    assert isinstance(err, HarnessError)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ClusterSpecError, match=r"cannot read: No such file or directory") as info:
        load_cluster_spec(path)
    assert info.value.path == path


def test_yaml_error_names_line(tmp_path: Path) -> None:
    with pytest.raises(ClusterSpecError, match=r"invalid YAML: .* at line 4, column \d+"):
        load_cluster_spec(write(tmp_path, HEADER + "nodePools: [\n"))


def test_zero_count_pool_and_empty_pools(tmp_path: Path) -> None:
    spec = load_cluster_spec(
        write(tmp_path, HEADER + "nodePools:\n  - {name: p, count: 0, capacity: {cpu: '1', memory: 1Gi}}\n")
    )
    assert emulated_nodes(spec) == []
    assert load_cluster_spec(write(tmp_path, HEADER)).node_pools == ()
