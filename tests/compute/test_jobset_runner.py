"""The JobSet runner against the embedded target with emulated TPU nodes: with the CRD and a stand-in JobSet
controller (this test plays its part: the child Indexed Job from the replicated Job's template, then the
Completed or Failed condition) it labels the pod templates with the run labels, waits, and returns every host's
JAX log; a Failed condition fails at once. The JobSet manifest validates (its Job template as a core batch/v1 Job)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config
from workload_runs import run_context

from harness.catalog.render import render
from harness.catalog.spec import load_workload
from harness.catalog.validate import ManifestValidator
from harness.cluster.namespaces import run_labels
from harness.embedded.cluster import EmbeddedCluster, EmbeddedOptions
from harness.embedded.emulated_workloads import tpu_bench_log
from harness.errors import WorkloadFailed
from harness.node.emulated import Script
from harness.parsers.jax_tpu import parse_tpu_result
from harness.runners.job import scripts_configmap_name
from harness.runners.jobset import GROUP, PLURAL, VERSION
from harness.runners.registry import run_workload

LABELS = run_labels("run-jobset", "jobset-test")
SPEC = """\
apiVersion: aibench.io/v1
kind: ClusterSpec
host: {include: false}
nodePools:
  - name: tpu-v5e
    count: 2
    capacity: {cpu: "112", memory: 192Gi, google.com/tpu: "4", pods: "110"}
    labels: {cloud.google.com/gke-tpu-accelerator: tpu-v5-lite-podslice, cloud.google.com/gke-tpu-topology: 2x4}
    taints: [{key: google.com/tpu, value: present, effect: NoSchedule}]
"""
PARAMS = {
    "hosts": "2",
    "expected_chips": "8",
    "node_selector": '{"cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice"}',
    "tolerations": '[{"key": "google.com/tpu", "operator": "Exists", "effect": "NoSchedule"}]',
}


def _rendered(**params: str):
    spec = load_workload("tpu-jax-jobset")
    return spec, render(spec, {**PARAMS, **params}, context={"scripts_configmap": scripts_configmap_name(spec.name)})


def test_jobset_validates_and_its_job_template_is_a_valid_job() -> None:
    validator = ManifestValidator()
    _, rendered = _rendered()
    (jobset,) = rendered.documents
    assert not validator.problems(jobset, source="tpu-jax-jobset")
    (replicated,) = jobset["spec"]["replicatedJobs"]
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "slice"},
        "spec": replicated["template"]["spec"],
    }
    assert not validator.problems(job, source="tpu-jax-jobset slice"), validator.problems(job, source="slice")
    broken = {**jobset, "spec": {**jobset["spec"], "successPolicy": {"operator": "Most"}}}
    assert any("'Most' is not one of" in p.message for p in validator.problems(broken, source="bad"))


@pytest.fixture(scope="module")
def tpu_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    state = tmp_path_factory.mktemp("tpu-cluster")
    (state / "spec.yaml").write_text(SPEC)
    with EmbeddedCluster(EmbeddedOptions(state_dir=state / "state", spec_path=state / "spec.yaml")) as cluster:
        cluster.kubelets.scripted.script("tpu-jax-", Script(exit_code=0, after_s=0.2, render=tpu_bench_log))
        yield cluster


@pytest.fixture(scope="module")
def tpu_api(tpu_cluster: EmbeddedCluster) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(tpu_cluster.kubeconfig_path))
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": PLURAL, "singular": "jobset", "kind": "JobSet", "listKind": "JobSetList"},
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }
    client.ApiextensionsV1Api(api).create_custom_resource_definition(crd)
    time.sleep(0.5)  # discovery refresh of the embedded API server
    yield api


@pytest.fixture
def ns(tpu_api: client.ApiClient) -> Iterator[str]:
    name = f"js-{time.monotonic_ns() % 10**8}"
    core = client.CoreV1Api(tpu_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def _controller(api: client.ApiClient, ns: str, name: str, *, fail: bool = False) -> threading.Thread:
    """Stand-in JobSet controller: the child Job of the first replicated Job, then the JobSet's condition."""
    custom, batch = client.CustomObjectsApi(api), client.BatchV1Api(api)

    def act() -> None:
        deadline = time.monotonic() + 15
        jobset = None
        while jobset is None and time.monotonic() < deadline:
            try:
                jobset = custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
            except client.ApiException:
                time.sleep(0.1)
        replicated = jobset["spec"]["replicatedJobs"][0]
        child = f"{name}-{replicated['name']}-0"
        batch.create_namespaced_job(
            ns,
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": child, "labels": {"jobset.sigs.k8s.io/jobset-name": name}},
                "spec": replicated["template"]["spec"],
            },
        )
        while time.monotonic() < deadline:
            conditions = {c.type for c in batch.read_namespaced_job_status(child, ns).status.conditions or []}
            if "Complete" in conditions or fail:
                break
            time.sleep(0.1)
        kind = "Failed" if fail else "Completed"
        jobset = custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
        jobset["status"] = {
            "conditions": [{"type": kind, "status": "True", "reason": f"AllJobs{kind}", "message": kind}]
        }
        custom.replace_namespaced_custom_object_status(GROUP, VERSION, ns, PLURAL, name, jobset)

    thread = threading.Thread(target=act, daemon=True)
    thread.start()
    return thread


def test_completed_jobset_returns_every_hosts_jax_log(tpu_api: client.ApiClient, ns: str, tmp_path: Path) -> None:
    spec, rendered = _rendered()
    controller = _controller(tpu_api, ns, "tpu-jax")
    run = run_workload(spec, rendered, run_context(tpu_api, ns, LABELS, timeout_s=30, artifacts_dir=tmp_path))
    controller.join(5)
    assert run.emulated and len(run.logs) == 2
    results = [parse_tpu_result(text) for _, text in sorted(run.logs.items())]
    assert [r.process_index for r in results] == [0, 1] and all(r.slice_matches for r in results)
    assert {run.node_of("jax")} == {"tpu-v5e-0,tpu-v5e-1"}
    stored = client.CustomObjectsApi(tpu_api).get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "tpu-jax")
    pod_labels = stored["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["aibench.io/run-id"] == "run-jobset" and pod_labels["app.kubernetes.io/name"] == "tpu-jax"


def test_failed_jobset_fails_at_once_with_its_condition(tpu_api: client.ApiClient, ns: str) -> None:
    spec, rendered = _rendered()
    _controller(tpu_api, ns, "tpu-jax", fail=True)
    started = time.monotonic()
    with pytest.raises(WorkloadFailed, match=r"jobset tpu-jax failed: AllJobsFailed: Failed"):
        run_workload(spec, rendered, run_context(tpu_api, ns, LABELS, timeout_s=30))
    assert time.monotonic() - started < 15
