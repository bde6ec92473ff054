"""What the real lane's tests share: the cluster spec, the skip-or-fail rule, the running lane's two clients.

``AIBENCH_REQUIRE_REAL_LANE=1`` (set by ``.ci/run``) turns "not built" from a skip into a failure, so CI cannot go
green on a machine where the real lane never ran.
"""

from __future__ import annotations

import os

import pytest
from kubernetes import client

from harness.errors import ConfigError
from harness.localkube.assets import find_assets
from harness.localkube.controlplane import LocalKube

REQUIRE_ENV = "AIBENCH_REQUIRE_REAL_LANE"

LANE_SPEC = """\
apiVersion: aibench.io/v1
kind: ClusterSpec
host:  # this machine through the node agent; tainted so only the tests that mean to run real pods land there
  include: true
  taints: [{key: aibench.io/real-node, value: "true", effect: NoSchedule}]
nodePools:
  - name: cpu
    count: 2
    capacity: {cpu: "32", memory: 128Gi}
  - name: h100
    count: 4
    capacity: {cpu: "192", memory: 2Ti, nvidia.com/gpu: "8", rdma/ib: "8"}
    labels: {nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}
    taints: [{key: nvidia.com/gpu, value: present, effect: NoSchedule}]
    topology: {zone: z1, block: "b{i//2}", rack: "r{i//2}"}
  - name: tpu
    count: 2
    capacity: {cpu: "224", memory: 400Gi, google.com/tpu: "4"}
    labels:
      cloud.google.com/gke-tpu-accelerator: tpu-v5-lite-podslice
      cloud.google.com/gke-tpu-topology: 2x4
      cloud.google.com/gke-nodepool: tpu-slice-a  # JobSet's exclusive-topology key (GKE labels every node so)
    taints: [{key: google.com/tpu, value: present, effect: NoSchedule}]
"""


def require_assets() -> None:
    """Skip naming the build command, or fail when CI requires the lane."""
    try:
        find_assets()
    except ConfigError as exc:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but the real lane cannot run: {exc}", pytrace=False)
        pytest.skip(str(exc))


HOST_TOLERATION = {"key": "aibench.io/real-node", "operator": "Exists", "effect": "NoSchedule"}


class Lane:
    """The running control plane with two clients: admin (set-up only) and the suite's ServiceAccount."""

    def __init__(self, cluster: LocalKube, admin: client.ApiClient, suite: client.ApiClient) -> None:
        self.cluster = cluster
        self.admin = admin
        self.suite = suite
