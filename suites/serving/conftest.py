"""Serving suite plumbing: where the load generator runs (next to the harness on the embedded target, as an
in-cluster Job elsewhere)."""

from __future__ import annotations

import pytest

from harness.cluster.namespaces import label_value
from harness.fixture_types import Capabilities, HarnessConfig, RunWorkload
from harness.runners.load import LoadDriver


@pytest.fixture
def load(
    request: pytest.FixtureRequest, capabilities: Capabilities, harness_config: HarnessConfig, run_workload: RunWorkload
) -> LoadDriver:
    workdir = harness_config.run_dir / "artifacts" / label_value(request.node.nodeid) / "load"
    return LoadDriver(local=capabilities.embedded, workdir=workdir, run_workload=run_workload)
