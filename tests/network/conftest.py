"""An embedded target with emulated nodes in topology blocks, for placement, gang and per-node attribution tests
(pods there run through the scripted runtime: tests give them real-format tool outputs to print)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client, config

from harness.cluster.capabilities import Capabilities, discover
from harness.embedded.cluster import EmbeddedCluster, EmbeddedOptions

FABRIC_SPEC = """\
apiVersion: aibench.io/v1
kind: ClusterSpec
host: {include: false}
nodePools:
  - name: gpu
    count: 6
    capacity: {cpu: "96", memory: 1Ti, nvidia.com/gpu: "8", rdma/ib: "8", pods: "2"}
    labels: {nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}
    topology: {zone: z1, block: "b{i//3}", rack: "r{i//3}-{i}"}
"""


@pytest.fixture(scope="session")
def fabric_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    """Six emulated 8-GPU nodes with RDMA, in two blocks of three, two pods per node at most."""
    state = tmp_path_factory.mktemp("fabric-cluster")
    spec = state / "spec.yaml"
    spec.write_text(FABRIC_SPEC)
    with EmbeddedCluster(EmbeddedOptions(state_dir=state / "state", spec_path=spec)) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def fabric_api(fabric_cluster: EmbeddedCluster) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(fabric_cluster.kubeconfig_path))


@pytest.fixture(scope="session")
def fabric_caps(fabric_api: client.ApiClient) -> Capabilities:
    return discover(fabric_api, server_version="v1.33.0", embedded=True)


@pytest.fixture
def fabric_ns(fabric_api: client.ApiClient) -> Iterator[str]:
    core = client.CoreV1Api(fabric_api)
    name = f"f-{uuid.uuid4().hex[:10]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)
