"""Fixtures shared by the harness's own tests: embedded targets reached through the official client."""

from __future__ import annotations

import importlib
import pkgutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from eventually import eventually
from kubernetes import client, config

from harness.embedded.cluster import EmbeddedCluster, EmbeddedOptions

pytest_plugins = ["pytester"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Import every kubernetes client model before a pytester test can run.

    The client (v37) imports its models lazily, and pytester removes from ``sys.modules`` whatever an in-process run
    imported. A model first imported inside such a run is imported again afterwards as a new class, which the
    already-built models (pydantic) then refuse: ``V1Pod(metadata=V1ObjectMeta(...))`` fails validation in a later
    test. Importing them all first (about 1 s) leaves pytester nothing to remove.
    """
    if not any("pytester" in getattr(item, "fixturenames", ()) for item in items):
        return
    import kubernetes.client.models as models

    for info in pkgutil.iter_modules(models.__path__):
        importlib.import_module(f"{models.__name__}.{info.name}")


EMULATED_SPEC = """\
apiVersion: aibench.io/v1
kind: ClusterSpec
host: {include: false}
nodePools:
  - name: gpu
    count: 2
    capacity: {cpu: "64", memory: 512Gi, nvidia.com/gpu: "8", rdma/ib: "4", pods: "110"}
    labels: {nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3, topology.kubernetes.io/zone: zone-a}
    taints: [{key: nvidia.com/gpu, value: present, effect: NoSchedule}]
  - name: cpu
    count: 3
    capacity: {cpu: "16", memory: 64Gi, pods: "110"}
    labels: {topology.kubernetes.io/zone: "zone-{i}"}
"""


@pytest.fixture(scope="session")
def host_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    """The embedded target as `k8s-ai-bench run` uses it: this machine as the only node, pods as processes."""
    options = EmbeddedOptions(state_dir=tmp_path_factory.mktemp("host-cluster"), bookmark_interval_s=0.5)
    with EmbeddedCluster(options) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def emulated_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    """Emulated GPU and CPU nodes only (no host node): scheduler and topology behaviour without processes."""
    state = tmp_path_factory.mktemp("emulated-cluster")
    spec = state / "spec.yaml"
    spec.write_text(EMULATED_SPEC)
    with EmbeddedCluster(EmbeddedOptions(state_dir=state / "state", spec_path=spec)) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def host_for_pods(host_cluster: EmbeddedCluster) -> str:
    """Where a server of a test on this machine listens so that the session target's pods reach it: the pod
    network's gateway (a pod's 127.0.0.1 is its own), or 127.0.0.1 on the host-network fallback."""
    return host_cluster.podnet.gateway if host_cluster.podnet is not None else "127.0.0.1"


def _client(cluster: EmbeddedCluster) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(cluster.kubeconfig_path))


@pytest.fixture(scope="session")
def api(host_cluster: EmbeddedCluster) -> client.ApiClient:
    return _client(host_cluster)


@pytest.fixture(scope="session")
def emulated_api(emulated_cluster: EmbeddedCluster) -> client.ApiClient:
    return _client(emulated_cluster)


def _namespace(api_client: client.ApiClient) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    # The namespace controller adds kube-root-ca.crt and the default ServiceAccount; start once they exist so
    # watches and lists in tests see a settled namespace.
    eventually(
        lambda: core.list_namespaced_config_map(name, field_selector="metadata.name=kube-root-ca.crt").items,
        what=f"namespace {name} defaults",
    )
    yield name
    core.delete_namespace(name)


@pytest.fixture
def ns(api: client.ApiClient) -> Iterator[str]:
    """A fresh namespace on the host cluster, deleted (with everything in it) afterwards."""
    yield from _namespace(api)


@pytest.fixture
def emulated_ns(emulated_api: client.ApiClient) -> Iterator[str]:
    yield from _namespace(emulated_api)


@pytest.fixture
def kubeconfig(host_cluster: EmbeddedCluster) -> Path:
    return host_cluster.kubeconfig_path
