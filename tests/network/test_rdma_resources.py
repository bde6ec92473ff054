"""Which node resources count as RDMA: the real Allocatable block of an EKS node with AWS EFA."""

from __future__ import annotations

from pathlib import Path

from harness.cluster.capabilities import NodeInfo

DATA = Path(__file__).resolve().parent.parent / "data"


def _allocatable(describe: str) -> dict[str, str]:
    """The ``Allocatable:`` block of ``kubectl describe node`` as a resource -> quantity mapping."""
    block = describe.split("Allocatable:\n", 1)[1]
    out: dict[str, str] = {}
    for line in block.splitlines():
        if not line.startswith("  "):
            break
        name, _, quantity = line.strip().partition(":")
        out[name] = quantity.strip()
    return out


def test_efa_is_an_rdma_resource() -> None:
    """aws/aws-k8s-tester PR #471 (g5.8xlarge with --efa): `vpc.amazonaws.com/efa: 1` makes the node an RDMA node,
    so an inter-node NCCL run that fell back to sockets fails instead of passing unjudged."""
    text = (DATA / "kubectl-describe-node_capacity-allocatable_g5.8xlarge-efa_aws-k8s-tester-pr471.txt").read_text()
    allocatable = _allocatable(text)
    assert allocatable["vpc.amazonaws.com/efa"] == "1" and allocatable["nvidia.com/gpu"] == "1"
    node = NodeInfo(name="g5", labels={}, allocatable=allocatable, taints=(), ready=True, emulated=False)
    assert node.rdma_resources == {"vpc.amazonaws.com/efa": 1}
    assert node.gpus == 1
