"""Network suite plumbing: one intra-node NCCL test per real GPU node (and per RDMA node for perftest), and the
per-node results those tests share with the attribution checks that run after them."""

from __future__ import annotations

import pytest

from harness.fixture_types import NodeInfo
from harness.pytest_plugin import SESSION_KEY


def _param_nodes(metafunc: pytest.Metafunc, fixture: str, nodes: list[NodeInfo], why_none: str) -> None:
    if nodes:
        metafunc.parametrize(fixture, nodes, ids=[n.name for n in nodes])
    else:
        metafunc.parametrize(fixture, [pytest.param(None, marks=pytest.mark.skip(reason=why_none))], ids=["none"])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "gpu_node" not in metafunc.fixturenames and "rdma_node" not in metafunc.fixturenames:
        return
    caps = metafunc.config.stash[SESSION_KEY].capabilities
    if "gpu_node" in metafunc.fixturenames:
        real = [n for n in caps.gpu_nodes if not n.emulated and n.ready]
        emulated = [n.name for n in caps.gpu_nodes if n.emulated]
        why = (
            f"the GPU nodes are emulated ({', '.join(emulated[:4])}); nccl-tests needs real GPUs"
            if emulated
            else "no node has allocatable nvidia.com/gpu"
        )
        _param_nodes(metafunc, "gpu_node", real, why)
    if "rdma_node" in metafunc.fixturenames:
        real = [n for n in caps.rdma_nodes if not n.emulated and n.ready]
        emulated = [n.name for n in caps.rdma_nodes if n.emulated]
        why = (
            f"the RDMA nodes are emulated ({', '.join(emulated[:4])}); perftest needs real HCAs"
            if emulated
            else "no node has an RDMA/SR-IOV resource (rdma/*, nvidia.com/* NICs...)"
        )
        _param_nodes(metafunc, "rdma_node", real, why)


@pytest.fixture(scope="session")
def per_node_results() -> dict[str, dict[tuple[str, ...], float]]:
    """check name -> (node, ...) -> headline value, filled by per-node tests, read by the attribution tests."""
    return {}
