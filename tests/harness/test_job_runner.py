"""The job runner on the embedded target: real workloads, real failures, explained in one message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from workload_runs import run_context, run_spec

from harness.catalog.render import render
from harness.catalog.spec import load_spec
from harness.cluster.namespaces import RUN_LABEL, run_labels, scoped_namespace
from harness.embedded.cluster import EmbeddedCluster
from harness.errors import ConfigError, WorkloadFailed
from harness.parsers.sentinel import parse_sentinel
from harness.runners.registry import run_workload
from harness.runners.skeleton import RunResult

WORKLOADS = Path(__file__).resolve().parents[1] / "data" / "workloads"


def _run(api: client.ApiClient, ns: str, tmp_path: Path, timeout_s: float = 30, **params: Any) -> RunResult:
    spec = load_spec(WORKLOADS / "echo-result" / "workload.yaml")
    return run_spec(api, spec, ns, tmp_path, timeout_s=timeout_s, run_id="run-1", **params)


def test_indexed_job_runs_and_its_result_blocks_parse(api: client.ApiClient, ns: str, tmp_path: Path) -> None:
    result = _run(api, ns, tmp_path, value="7.5", completions="3")
    assert sorted(result.logs) == sorted(f"{p.name}/main" for p in result.evidence.pods) and len(result.logs) == 3
    values = sorted(
        (m.labels["index"], m.value) for log in result.logs.values() for m in parse_sentinel(log).measurements
    )
    assert values == [("0", 7.5), ("1", 7.5), ("2", 7.5)]
    assert not result.emulated and result.params["value"] == "7.5"
    assert (tmp_path / "artifacts" / "manifests.yaml").read_text().count("kind: ConfigMap") == 1
    assert (tmp_path / "artifacts" / "pods.json").exists() and (tmp_path / "artifacts" / "events.txt").exists()
    pods = client.CoreV1Api(api).list_namespaced_pod(ns, label_selector=f"{RUN_LABEL}=run-1").items
    assert len(pods) == 3, "pods carry the run labels (through the Job template)"


def test_failing_container_is_a_workload_failure_with_log_tail(api: client.ApiClient, ns: str, tmp_path: Path) -> None:
    with pytest.raises(WorkloadFailed) as exc:
        _run(api, ns, tmp_path, exit_code="3")
    message = str(exc.value)
    assert "BackoffLimitExceeded" in message and "exit 3" in message and "===AIBENCH-RESULT-END===" in message


def test_unschedulable_is_reported_at_once_with_the_scheduler_reason(
    api: client.ApiClient, ns: str, tmp_path: Path
) -> None:
    with pytest.raises(WorkloadFailed) as exc:
        _run(api, ns, tmp_path, gpus="64", timeout_s=20)
    message = str(exc.value)
    assert "Unschedulable" in message and "Insufficient nvidia.com/gpu" in message
    assert "timed out" not in message


def test_container_fault_injection_fails_the_run(
    api: client.ApiClient, host_cluster: EmbeddedCluster, ns: str, tmp_path: Path
) -> None:
    host_cluster.faults.container_faults["main"] = "fail"
    try:
        with pytest.raises(WorkloadFailed, match="injected container failure"):
            _run(api, ns, tmp_path)
    finally:
        host_cluster.faults.reset()


def test_api_errors_surface_as_failures_not_hangs(
    api: client.ApiClient, host_cluster: EmbeddedCluster, ns: str, tmp_path: Path
) -> None:
    host_cluster.faults.error_rate, host_cluster.faults.error_code = 1.0, 500
    host_cluster.faults.error_path_contains = "/jobs"
    try:
        with pytest.raises(WorkloadFailed, match="500"):
            _run(api, ns, tmp_path)
    finally:
        host_cluster.faults.reset()


def test_pending_forever_times_out_with_last_state(
    api: client.ApiClient, host_cluster: EmbeddedCluster, ns: str, tmp_path: Path
) -> None:
    host_cluster.faults.pending_pod_prefixes.add("echo-result")
    try:
        with pytest.raises(WorkloadFailed) as exc:
            _run(api, ns, tmp_path, timeout_s=1.5)
    finally:
        host_cluster.faults.reset()
    assert "timed out after 1.5s waiting for workload echo-result to complete" in str(exc.value)
    assert "1 Pending" in str(exc.value)


def test_bad_params_are_config_errors() -> None:
    spec = load_spec(WORKLOADS / "echo-result" / "workload.yaml")
    with pytest.raises(ConfigError, match="unknown parameter 'valeu'"):
        render(spec, {"valeu": "1"}, context={"scripts_configmap": "x"})
    with pytest.raises(ConfigError, match=r"unknown placeholder \$\{scripts_configmap\}"):
        render(spec, {}, context={})


def test_namespace_is_removed_even_when_the_test_fails(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    with pytest.raises(RuntimeError), scoped_namespace(api, run_id="run-2", test="tests/x.py::test_y") as name:
        assert core.read_namespace(name).metadata.labels[RUN_LABEL] == "run-2"
        raise RuntimeError("test body failed")
    assert name not in {n.metadata.name for n in core.list_namespace().items}


def test_exec_in_pod_returns_output_and_exit_code(api: client.ApiClient, ns: str) -> None:
    from eventually import eventually

    from harness.cluster.podexec import exec_in_pod

    core = client.CoreV1Api(api)
    core.create_namespaced_pod(
        ns,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "box"},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "120"]}]},
        },
    )
    eventually(lambda: core.read_namespaced_pod("box", ns).status.phase == "Running", what="running")
    result = exec_in_pod(api, ns, "box", ["sh", "-c", "echo out; exit 4"])
    assert result.exit_code == 4 and result.stdout == "out\n"
    with pytest.raises(WorkloadFailed, match="not valid for pod box"):
        exec_in_pod(api, ns, "box", ["true"], container="nope")


def test_claim_no_provisioner_serves_fails_at_the_bind_deadline(
    api: client.ApiClient, ns: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.catalog.spec import load_workload
    from harness.runners import job as job_runner

    client.StorageV1Api(api).create_storage_class(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": f"foreign-{ns}"},
            "provisioner": "ebs.csi.aws.com",
        }
    )
    monkeypatch.setattr(job_runner, "CLAIM_BIND_DEADLINE_S", 1.0)
    spec = load_workload("fio")
    rendered = render(spec, {"storage_class": f"foreign-{ns}"}, context={"scripts_configmap": "fio-scripts"})
    try:
        with pytest.raises(WorkloadFailed) as exc:
            run_workload(spec, rendered, run_context(api, ns, run_labels("run-3", "pvc"), timeout_s=20))
    finally:
        client.StorageV1Api(api).delete_storage_class(f"foreign-{ns}")
    message = str(exc.value)
    assert "PersistentVolumeClaim fio-data is still Pending after" in message
    assert "external provisioner 'ebs.csi.aws.com'" in message
