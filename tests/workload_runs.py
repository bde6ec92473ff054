"""Running one workload spec to completion against the test clusters, as the plugin's run_workload does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client

from harness.catalog.render import render
from harness.catalog.spec import WorkloadSpec
from harness.cluster.namespaces import run_labels
from harness.runners.job import RunResult, run_job, scripts_configmap_name


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
    return run_job(
        api,
        spec,
        rendered,
        namespace=ns,
        labels=run_labels(run_id, spec.name),
        timeout_s=timeout_s,
        artifacts_dir=tmp_path / "artifacts",
    )
