"""Compute suite plumbing: one test instance per GPU product, GPU/TPU pool, shared-GPU node and TPU slice of the
target, so each workload run gets its own namespace and its own result line in the report.

When the target has none of a kind, the test gets one ``None`` instance: its ``gpu``/``tpu`` marker then skips it
with the capability's exact reason, or the test itself says what is not configured.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from harness.fixture_types import NodeInfo
from harness.probes.accelerators import (
    NodePool,
    TpuSlice,
    accelerator_kind,
    gpu_sharing,
    node_pools,
    nodes_by_product,
    tpu_slices,
)
from harness.pytest_plugin import SESSION_KEY

#: fixture names this conftest parametrises, in precedence order (a test uses at most one)
PARAMETERS = ("gpu_product", "measured_gpu", "gpu_pool", "shared_gpu_node", "tpu_slice")


def _instances(metafunc: pytest.Metafunc) -> Mapping[str, NodeInfo | NodePool | TpuSlice]:
    caps = metafunc.config.stash[SESSION_KEY].capabilities
    name = next(
        n
        for n in ("gpu_product", "gpu_pool", "shared_gpu_node", "tpu_slice", "measured_gpu")
        if n in metafunc.fixturenames
    )
    if name == "gpu_product":
        return dict(nodes_by_product(caps))
    if name == "measured_gpu":
        return {
            label: node
            for label, node in nodes_by_product(caps, measuring=True).items()
            if not gpu_sharing(node).shared
        }
    if name == "gpu_pool":
        return {p.name: p for p in node_pools(caps) if p.kind == "gpu"}
    if name == "shared_gpu_node":
        nodes = [n for n in caps.nodes if accelerator_kind(n) == "gpu" and gpu_sharing(n).strategy != "none"]
        return {n.name: n for n in sorted(nodes, key=lambda n: n.name)}
    return {f"{s.accelerator}-{s.topology}".strip("-") or s.resource: s for s in tpu_slices(caps)}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    names = [
        n
        for n in ("gpu_product", "gpu_pool", "shared_gpu_node", "tpu_slice", "measured_gpu")
        if n in metafunc.fixturenames
    ]
    if not names:
        return
    instances = _instances(metafunc)
    if not instances:
        metafunc.parametrize(names[0], [None], ids=["none"])
        return
    metafunc.parametrize(names[0], list(instances.values()), ids=list(instances))
