"""The KubeRay runner against the embedded target: emulated nodes, and a minimal stand-in for KubeRay's reconcile
loop (this file's FakeKubeRay) that creates the pods and status fields the real operator creates, so the runner's
waiting, failure reporting and reconciliation checks are exercised through the real API, scheduler and kubelet."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from workload_runs import run_context

from harness.catalog.render import render
from harness.catalog.spec import load_workload
from harness.cluster.target import Connection
from harness.embedded.cluster import EmbeddedCluster
from harness.errors import WaitTimeout, WorkloadFailed
from harness.node.emulated import Script
from harness.parsers.sentinel import parse_sentinel
from harness.runners.job import apply_workload, scripts_configmap_name
from harness.runners.ray import (
    CLUSTER_LABEL,
    GROUP_LABEL,
    NODE_TYPE_LABEL,
    driver_log,
    replace_deleted_worker,
    scale_worker_group,
)
from harness.runners.registry import run_workload

G, V = "ray.io", "v1"
RESULT = {
    "measurements": [
        {"metric": "task_rate", "value": 900.0, "unit": "calls/s", "labels": {"mode": "cluster"}},
        {"metric": "wrong", "value": 0, "unit": "count", "labels": {"mode": "cluster"}},
    ],
    "info": {"ray_version": "2.60.0", "alive_nodes": 3},
}
DRIVER_OK = (
    "Job submission server address: http://ray-bench-raycluster-head-svc:8265\n"
    f"===AIBENCH-RESULT-BEGIN===\n{json.dumps(RESULT)}\n===AIBENCH-RESULT-END===\n"
)
DRIVER_FAILED = 'Traceback (most recent call last):\n  File "/scripts/ray_bench.py", line 9\nRuntimeError: boom\n'


def crd(kind: str, plural: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{G}"},
        "spec": {
            "group": G,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
            "versions": [
                {
                    "name": V,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                    "subresources": {"status": {}},
                }
            ],
        },
    }


class FakeKubeRay:
    """KubeRay's visible behaviour, no more: RayCluster -> head + worker pods per group (created, trimmed,
    replaced); RayJob -> a RayCluster and a submitter pod, whose exit decides the RayJob's status."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.core, self.custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        self.namespace = namespace
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> FakeKubeRay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self._reconcile()
            except client.ApiException:
                continue  # a conflict or a deleted object: the next pass sees the new state

    def _pods(self, selector: str) -> list[client.V1Pod]:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=selector).items
        return [p for p in pods if not p.metadata.deletion_timestamp]

    def _create_pod(self, name: str, template: dict[str, Any], labels: dict[str, str]) -> None:
        spec = dict(template.get("spec") or {})
        spec.pop("volumes", None)  # emulated pods run no process: nothing to mount
        spec["containers"] = [{k: v for k, v in c.items() if k != "volumeMounts"} for c in spec["containers"]]
        body = {"metadata": {"name": name, "labels": labels}, "spec": {"restartPolicy": "Never", **spec}}
        self.core.create_namespaced_pod(self.namespace, body)

    def _reconcile(self) -> None:
        for rc in self.custom.list_namespaced_custom_object(G, V, self.namespace, "rayclusters")["items"]:
            self._reconcile_cluster(rc)
        for rj in self.custom.list_namespaced_custom_object(G, V, self.namespace, "rayjobs")["items"]:
            self._reconcile_job(rj)

    def _reconcile_cluster(self, rc: dict[str, Any]) -> None:
        name, spec = rc["metadata"]["name"], rc["spec"]
        head = self._pods(f"{CLUSTER_LABEL}={name},{NODE_TYPE_LABEL}=head")
        if not head:
            labels = {CLUSTER_LABEL: name, NODE_TYPE_LABEL: "head", GROUP_LABEL: "headgroup"}
            self._create_pod(f"{name}-head-{uuid.uuid4().hex[:5]}", spec["headGroupSpec"]["template"], labels)
        ready = bool(head) and head[0].status.phase == "Running"
        for group in spec.get("workerGroupSpecs") or []:
            selector = f"{CLUSTER_LABEL}={name},{GROUP_LABEL}={group['groupName']}"
            workers = self._pods(selector)
            for extra in workers[int(group.get("replicas", 0)) :]:
                self.core.delete_namespaced_pod(extra.metadata.name, self.namespace, grace_period_seconds=0)
            for _ in range(int(group.get("replicas", 0)) - len(workers)):
                labels = {CLUSTER_LABEL: name, NODE_TYPE_LABEL: "worker", GROUP_LABEL: group["groupName"]}
                pod_name = f"{name}-{group['groupName']}-worker-{uuid.uuid4().hex[:5]}"
                self._create_pod(pod_name, group["template"], labels)
            ready = ready and all(p.status.phase == "Running" for p in workers)
        state = "ready" if ready else "unknown"
        if (rc.get("status") or {}).get("state") != state:
            self.custom.patch_namespaced_custom_object_status(
                G, V, self.namespace, "rayclusters", name, {"status": {"state": state}}
            )

    def _reconcile_job(self, rj: dict[str, Any]) -> None:
        name, status = rj["metadata"]["name"], rj.get("status") or {}
        if status.get("jobDeploymentStatus") in ("Complete", "Failed"):
            return
        cluster = f"{name}-raycluster"
        if not status.get("rayClusterName"):
            body = {"apiVersion": f"{G}/{V}", "kind": "RayCluster", "metadata": {"name": cluster}}
            self.custom.create_namespaced_custom_object(
                G, V, self.namespace, "rayclusters", {**body, "spec": rj["spec"]["rayClusterSpec"]}
            )
            self._status(name, {"jobDeploymentStatus": "Initializing", "rayClusterName": cluster})
            return
        rc = self.custom.get_namespaced_custom_object(G, V, self.namespace, "rayclusters", cluster)
        if (rc.get("status") or {}).get("state") != "ready":
            return
        submitters = self._pods(f"job-name={name}")
        if not submitters:
            template = {"spec": {"containers": [{"name": "ray-job-submitter", "image": "rayproject/ray:2.60.0"}]}}
            self._create_pod(f"{name}-submit-{uuid.uuid4().hex[:5]}", template, {"job-name": name})
            self._status(name, {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"})
            return
        phase = submitters[0].status.phase
        if phase == "Succeeded":
            self._status(name, {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"})
        elif phase == "Failed":
            self._status(name, {"jobDeploymentStatus": "Failed", "jobStatus": "FAILED", "reason": "AppFailed"})

    def _status(self, name: str, status: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object_status(G, V, self.namespace, "rayjobs", name, {"status": status})


@pytest.fixture(scope="module")
def kuberay_crds(emulated_api: client.ApiClient) -> Iterator[None]:
    ext = client.ApiextensionsV1Api(emulated_api)
    for kind, plural in (("RayJob", "rayjobs"), ("RayCluster", "rayclusters")):
        ext.create_custom_resource_definition(crd(kind, plural))
    yield
    for plural in ("rayjobs", "rayclusters"):
        ext.delete_custom_resource_definition(f"{plural}.{G}")


@pytest.fixture
def operator(emulated_api: client.ApiClient, emulated_ns: str, kuberay_crds: None) -> Iterator[FakeKubeRay]:
    with FakeKubeRay(emulated_api, emulated_ns) as fake:
        yield fake


def rendered(name: str, namespace: str, **params: Any) -> tuple[Any, Any]:
    spec = load_workload(name)
    context = {
        "namespace": namespace,
        "run_id": "r",
        "scripts_configmap": scripts_configmap_name(name),
        "workload": name,
    }
    return spec, render(spec, params, context=context)


def run(api: client.ApiClient, namespace: str, timeout_s: float = 30, **params: Any) -> Any:
    spec, docs = rendered("ray-job", namespace, **params)
    return run_workload(spec, docs, run_context(api, namespace, {"t": "ray"}, timeout_s=timeout_s))


def test_rayjob_success_returns_the_driver_log(
    emulated_api: client.ApiClient, emulated_ns: str, emulated_cluster: EmbeddedCluster, operator: FakeKubeRay
) -> None:
    emulated_cluster.kubelets.scripted.script("ray-bench-submit-", Script(exit_code=0, after_s=0.2, log=DRIVER_OK))
    result = run(emulated_api, emulated_ns, workers=2, worker_cpus=1, worker_memory="1Gi")
    parsed = parse_sentinel(driver_log(result.logs, "ray-bench"))
    assert [m.metric for m in parsed.measurements] == ["task_rate", "wrong"]
    assert result.emulated  # every pod ran on an emulated node, and the result says so
    workers = [k for k in result.logs if "-workers-worker-" in k]
    assert len(workers) == 2


def test_rayjob_failure_carries_the_driver_log(
    emulated_api: client.ApiClient, emulated_ns: str, emulated_cluster: EmbeddedCluster, operator: FakeKubeRay
) -> None:
    emulated_cluster.kubelets.scripted.script("ray-bench-submit-", Script(exit_code=1, after_s=0.2, log=DRIVER_FAILED))
    with pytest.raises(WorkloadFailed) as failed:
        run(emulated_api, emulated_ns, workers=1, worker_cpus=1, worker_memory="1Gi")
    message = str(failed.value)
    assert "RayJob ray-bench ended with deployment Failed, job FAILED: AppFailed" in message
    assert "RuntimeError: boom" in message


def test_an_unschedulable_worker_fails_at_once(
    emulated_api: client.ApiClient, emulated_ns: str, operator: FakeKubeRay
) -> None:
    with pytest.raises(WorkloadFailed, match=r"is Unschedulable: 0/\d+ nodes are available"):
        run(emulated_api, emulated_ns, timeout_s=20, workers=1, worker_cpus=500, worker_memory="1Gi")


def test_without_an_operator_the_wait_times_out_with_the_state(
    emulated_api: client.ApiClient, emulated_ns: str, kuberay_crds: None
) -> None:
    with pytest.raises(WorkloadFailed, match="deployment none, job none, cluster not created"):
        run(emulated_api, emulated_ns, timeout_s=1, workers=1, worker_cpus=1, worker_memory="1Gi")


def test_worker_group_scaling_and_replacement(
    emulated_api: client.ApiClient, emulated_ns: str, operator: FakeKubeRay
) -> None:
    spec, docs = rendered("ray-cluster", emulated_ns, workers=1, max_workers=2)
    apply_workload(spec, docs, run_context(emulated_api, emulated_ns, {"t": "ray"}, timeout_s=20))
    initial, _ = scale_worker_group(Connection(emulated_api), emulated_ns, "reconcile", "workers", 1, timeout_s=20)
    scaled, _ = scale_worker_group(Connection(emulated_api), emulated_ns, "reconcile", "workers", 2, timeout_s=20)
    assert initial.count == 1 and scaled.count == 2 and set(initial.names) < set(scaled.names)
    deleted, replacement, seconds = replace_deleted_worker(
        Connection(emulated_api), emulated_ns, "reconcile", "workers", timeout_s=20
    )
    assert deleted != replacement and seconds < 20
    down, _ = scale_worker_group(Connection(emulated_api), emulated_ns, "reconcile", "workers", 1, timeout_s=20)
    assert down.count == 1
    with pytest.raises(WorkloadFailed, match="maxReplicas is below 3"):
        scale_worker_group(Connection(emulated_api), emulated_ns, "reconcile", "workers", 3, timeout_s=5)
    with pytest.raises(WorkloadFailed, match="no worker group 'gpu'"):
        scale_worker_group(Connection(emulated_api), emulated_ns, "reconcile", "gpu", 1, timeout_s=5)


def test_a_group_the_operator_ignores_times_out_naming_the_count(
    emulated_api: client.ApiClient, emulated_ns: str, kuberay_crds: None
) -> None:
    spec, docs = rendered("ray-cluster", emulated_ns, workers=1, max_workers=2)
    apply_workload(spec, docs, run_context(emulated_api, emulated_ns, {"t": "ray"}, timeout_s=20))
    with pytest.raises(WaitTimeout, match="0 running: none"):
        scale_worker_group(Connection(emulated_api), emulated_ns, "reconcile", "workers", 2, timeout_s=0.5)
