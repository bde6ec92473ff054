"""Serving suite plumbing: where the load generator runs (next to the harness on the embedded target, as an
in-cluster Job elsewhere)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.cluster.namespaces import label_value
from harness.runners.load import LoadDriver


@pytest.fixture
def load(request: pytest.FixtureRequest, capabilities: Any, harness_config: Any, run_workload: Any) -> LoadDriver:
    workdir = harness_config.run_dir / "artifacts" / label_value(request.node.nodeid) / "load"
    return LoadDriver(local=capabilities.embedded, workdir=workdir, run_workload=run_workload)
