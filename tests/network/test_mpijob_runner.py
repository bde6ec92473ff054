"""The MPIJob runner against the embedded target: without the operator the run fails naming the CRD; with the
CRD and a stand-in operator (this test plays its part: launcher pod, then the Succeeded or Failed condition) it
waits, labels the replicas with the run labels, and returns the launcher's log; a hang times out with the
launcher's last lines."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from workload_runs import run_context

from harness.catalog.render import render
from harness.catalog.spec import load_workload
from harness.catalog.validate import ManifestValidator
from harness.cluster.namespaces import run_labels
from harness.embedded.cluster import EmbeddedCluster
from harness.errors import WorkloadFailed
from harness.node.emulated import Script
from harness.runners.job import scripts_configmap_name
from harness.runners.mpijob import GROUP, PLURAL, VERSION
from harness.runners.registry import run_workload

DATA = Path(__file__).resolve().parents[1] / "data"
TWO_NODE_LOG = (DATA / "nccl-tests_constructed_2023-format_group-mpirun-prefix.txt").read_text()
LABELS = run_labels("run-mpi", "mpijob-test")


def _rendered(**params: str):
    spec = load_workload("nccl-allreduce-mpijob")
    return spec, render(spec, params, context={"scripts_configmap": scripts_configmap_name(spec.name)})


def test_pod_templates_validate_as_core_pod_templates() -> None:
    """The CRD schema knows pod templates as the operator's vendored API does: check them as each version's v1."""
    validator = ManifestValidator()
    for params in ({}, {"node_operator": "In", "worker_nodes": "gpu-a, gpu-b", "nccl_algo": "RING"}):
        _, rendered = _rendered(**params)
        (mpijob,) = rendered.documents
        assert not validator.problems(mpijob, source="mpijob")
        for role, replica in mpijob["spec"]["mpiReplicaSpecs"].items():
            template = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": role.lower()},
                        "template": replica["template"]}  # fmt: skip
            assert not validator.problems(template, source=f"mpijob {role}"), role


def test_without_the_operator_the_crd_is_named(fabric_api: client.ApiClient, fabric_ns: str) -> None:
    spec, rendered = _rendered()
    with pytest.raises(WorkloadFailed, match=r"does not serve MPIJob \(kubeflow.org/v2beta1\)"):
        run_workload(spec, rendered, run_context(fabric_api, fabric_ns, LABELS, timeout_s=5))


@pytest.fixture(scope="module")
def mpijob_crd(fabric_api: client.ApiClient) -> Iterator[None]:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": PLURAL, "singular": "mpijob", "kind": "MPIJob", "listKind": "MPIJobList"},
            "versions": [{"name": VERSION, "served": True, "storage": True, "subresources": {"status": {}},
                          "schema": {"openAPIV3Schema": {"type": "object",
                                                         "x-kubernetes-preserve-unknown-fields": True}}}],
        },
    }  # fmt: skip
    ext = client.ApiextensionsV1Api(fabric_api)
    ext.create_custom_resource_definition(crd)
    time.sleep(0.5)  # discovery refresh of the embedded API server
    yield
    ext.delete_custom_resource_definition(f"{PLURAL}.{GROUP}")


def _operator(api: client.ApiClient, ns: str, name: str, *, outcome: str | None) -> threading.Thread:
    """Stand-in for the MPI Operator: create the launcher pod from the MPIJob's template, then set a condition."""
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)

    def act() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                job = custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
                break
            except client.ApiException:
                time.sleep(0.1)
        template = job["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"{name}-launcher-abcde", "labels": template["metadata"]["labels"]},
               "spec": {**template["spec"], "restartPolicy": "Never", "volumes": []}}  # fmt: skip
        for container in pod["spec"]["containers"]:
            container.pop("volumeMounts", None)
        core.create_namespaced_pod(ns, pod)
        if outcome is None:
            return
        time.sleep(1.0)
        condition = {"type": outcome, "status": "True", "reason": f"MPIJob{outcome}", "message": f"test {outcome}"}
        job = custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
        job["status"] = {"conditions": [condition]}
        custom.replace_namespaced_custom_object_status(GROUP, VERSION, ns, PLURAL, name, job)

    thread = threading.Thread(target=act, daemon=True)
    thread.start()
    return thread


def test_success_returns_the_launcher_log_with_run_labels(
    mpijob_crd: None, fabric_cluster: EmbeddedCluster, fabric_api: client.ApiClient, fabric_ns: str
) -> None:
    fabric_cluster.kubelets.scripted.script("nccl-ok-launcher", Script(exit_code=0, after_s=0.2, log=TWO_NODE_LOG))
    try:
        spec, rendered = _rendered(run_name="nccl-ok")
        operator = _operator(fabric_api, fabric_ns, "nccl-ok", outcome="Succeeded")
        run = run_workload(spec, rendered, run_context(fabric_api, fabric_ns, LABELS, timeout_s=20))
        operator.join(5)
    finally:
        fabric_cluster.kubelets.scripted.clear()
    assert run.emulated and list(run.logs) == ["nccl-ok-launcher-abcde/launcher"]
    assert "Avg bus bandwidth" in run.log_of("launcher")
    stored = client.CustomObjectsApi(fabric_api).get_namespaced_custom_object(
        GROUP, VERSION, fabric_ns, PLURAL, "nccl-ok"
    )
    for replica in stored["spec"]["mpiReplicaSpecs"].values():
        assert replica["template"]["metadata"]["labels"]["aibench.io/run-id"] == "run-mpi"


def test_failed_condition_fails_at_once(
    mpijob_crd: None, fabric_api: client.ApiClient, fabric_ns: str, fabric_cluster: EmbeddedCluster
) -> None:
    spec, rendered = _rendered(run_name="nccl-bad")
    _operator(fabric_api, fabric_ns, "nccl-bad", outcome="Failed")
    started = time.monotonic()
    with pytest.raises(WorkloadFailed, match="mpijob nccl-bad failed: MPIJobFailed: test Failed"):
        run_workload(spec, rendered, run_context(fabric_api, fabric_ns, LABELS, timeout_s=20))
    assert time.monotonic() - started < 10


def test_hang_times_out_with_the_launchers_last_lines(
    mpijob_crd: None, fabric_cluster: EmbeddedCluster, fabric_api: client.ApiClient, fabric_ns: str
) -> None:
    hung = "\n".join(TWO_NODE_LOG.splitlines()[:12]) + "\n"
    fabric_cluster.kubelets.scripted.script("nccl-hang-launcher", Script(exit_code=None, log=hung))
    try:
        spec, rendered = _rendered(run_name="nccl-hang")
        _operator(fabric_api, fabric_ns, "nccl-hang", outcome=None)
        with pytest.raises(WorkloadFailed) as failure:
            run_workload(spec, rendered, run_context(fabric_api, fabric_ns, LABELS, timeout_s=4))
    finally:
        fabric_cluster.kubelets.scripted.clear()
    message = str(failure.value)
    assert "MPIJob workload nccl-allreduce-mpijob to reach Succeeded" in message
    assert "last lines of nccl-hang-launcher-abcde/launcher" in message and "via NET/IB/0/GDRDMA" in message
