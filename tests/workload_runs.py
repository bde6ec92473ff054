"""Running one workload spec to completion against the test clusters, as the plugin's run_workload does."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubernetes import client

from harness.catalog.render import render
from harness.catalog.spec import WorkloadSpec
from harness.cluster.namespaces import run_labels
from harness.cluster.target import Connection
from harness.runners.registry import run_workload
from harness.runners.skeleton import RunContext, RunResult, scripts_configmap_name


def run_context(
    api: client.ApiClient,
    ns: str,
    labels: Mapping[str, str],
    *,
    timeout_s: float,
    artifacts_dir: Path | None = None,
) -> RunContext:
    """Where a test's workload runs: a bare API client's cluster, the test namespace, its labels and time."""
    return RunContext(
        cluster=Connection(api), namespace=ns, labels=labels, timeout_s=timeout_s, artifacts_dir=artifacts_dir
    )


def run_spec(
    api: client.ApiClient,
    spec: WorkloadSpec,
    ns: str,
    tmp_path: Path,
    *,
    timeout_s: float = 120,
    run_id: str = "test-run",
    **params: Any,
) -> RunResult:
    rendered = render(spec, params, context={"scripts_configmap": scripts_configmap_name(spec.name)})
    context = run_context(
        api, ns, run_labels(run_id, spec.name), timeout_s=timeout_s, artifacts_dir=tmp_path / "artifacts"
    )
    return run_workload(spec, rendered, context)
