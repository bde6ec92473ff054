"""CronJob, ReplicationController, EndpointSlice, PodDisruptionBudget and HorizontalPodAutoscaler on the embedded
target, through the official client (real pods on the host node, real controllers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eventually import eventually
from kubernetes import client
from kubernetes.client.rest import ApiException

from harness.embedded.cluster import EmbeddedCluster
from harness.embedded.objects import parse_time
from harness.embedded.tables import to_table

CONTAINER = {"name": "c", "image": "busybox", "command": ["sleep", "300"]}


def _cronjob(name: str, command: list[str], **spec: Any) -> dict[str, Any]:
    container = {"name": "c", "image": "busybox", "command": command}
    template = {"spec": {"restartPolicy": "Never", "containers": [container]}}
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}, **spec},
    }


def _jobs(api: client.ApiClient, ns: str) -> list[Any]:
    return sorted(client.BatchV1Api(api).list_namespaced_job(ns).items, key=lambda j: j.metadata.name)


def _reconcile_at(cluster: EmbeddedCluster, api: client.ApiClient, ns: str, name: str, minutes: int) -> str:
    """Run the CronJob controller's reconcile as if the clock were ``minutes`` past the CronJob's creation; the
    name of the Job due then (kube's ``<cronjob>-<scheduled minute since the epoch>``)."""
    created = client.BatchV1Api(api).read_namespaced_cron_job(name, ns).metadata.creation_timestamp
    now = created + timedelta(minutes=minutes, seconds=1)
    controller: Any = cluster.controllers.controllers["cronjob"]
    controller.reconcile(ns, name, now=now)
    return f"{name}-{int(now.timestamp()) // 60}"


def _live_jobs(api: client.ApiClient, ns: str) -> list[str]:
    return [j.metadata.name for j in _jobs(api, ns) if not j.metadata.deletion_timestamp]


def test_cronjob_starts_jobs_on_schedule_and_keeps_history(
    host_cluster: EmbeddedCluster, api: client.ApiClient, ns: str
) -> None:
    batch = client.BatchV1Api(api)
    created = batch.create_namespaced_cron_job(ns, _cronjob("tick", ["true"], successfulJobsHistoryLimit=1))
    assert created.spec.concurrency_policy == "Allow" and created.spec.failed_jobs_history_limit == 1
    first = _reconcile_at(host_cluster, api, ns, "tick", 1)
    jobs = eventually(lambda: _jobs(api, ns), what="the first scheduled Job")
    assert [j.metadata.name for j in jobs] == [first] and jobs[0].metadata.owner_references[0].kind == "CronJob"
    scheduled = parse_time(jobs[0].metadata.annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"])
    assert first == f"tick-{int(scheduled.timestamp()) // 60}"
    eventually(lambda: (_jobs(api, ns)[0].status.succeeded or 0) == 1, what="the first Job to complete")
    second = _reconcile_at(host_cluster, api, ns, "tick", 2)
    eventually(lambda: second in _live_jobs(api, ns), what="the second scheduled Job")
    eventually(lambda: all((j.status.succeeded or 0) == 1 for j in _jobs(api, ns)), what="both Jobs complete")
    assert _reconcile_at(host_cluster, api, ns, "tick", 2) == second  # same minute: nothing new, history trimmed
    eventually(lambda: _live_jobs(api, ns) == [second], what="only the newest success kept (limit 1)")
    status = batch.read_namespaced_cron_job("tick", ns).status
    assert status.last_schedule_time is not None and status.last_successful_time is not None
    events = client.CoreV1Api(api).list_namespaced_event(ns, field_selector="involvedObject.name=tick").items
    assert f"Saw completed job: {second}, status: Complete" in {e.message for e in events}


def test_cronjob_concurrency_forbid_and_replace(host_cluster: EmbeddedCluster, api: client.ApiClient, ns: str) -> None:
    batch = client.BatchV1Api(api)
    batch.create_namespaced_cron_job(ns, _cronjob("forbid", ["sleep", "300"], concurrencyPolicy="Forbid"))
    first = _reconcile_at(host_cluster, api, ns, "forbid", 1)
    eventually(lambda: _live_jobs(api, ns) == [first], what="the first Job")
    _reconcile_at(host_cluster, api, ns, "forbid", 2)
    assert _live_jobs(api, ns) == [first], "Forbid started a second Job while the first runs"
    events = client.CoreV1Api(api).list_namespaced_event(ns, field_selector="involvedObject.name=forbid").items
    assert any(e.reason == "JobAlreadyActive" for e in events)
    batch.patch_namespaced_cron_job("forbid", ns, {"spec": {"concurrencyPolicy": "Replace"}})
    third = _reconcile_at(host_cluster, api, ns, "forbid", 3)
    eventually(lambda: _live_jobs(api, ns) == [third], what="Replace: the running Job deleted, the new one started")
    eventually(
        lambda: [r.name for r in batch.read_namespaced_cron_job("forbid", ns).status.active or []] == [third],
        what="status.active names the new Job",
    )


def test_invalid_schedule_is_kubes_422(api: client.ApiClient, ns: str) -> None:
    with pytest.raises(ApiException) as exc:
        client.BatchV1Api(api).create_namespaced_cron_job(ns, _cronjob("bad", ["true"], schedule="61 * * * *"))
    assert exc.value.status == 422 and "spec.schedule" in exc.value.body
    assert "end of range (61) above maximum (59)" in exc.value.body


def test_replication_controller_keeps_replicas_and_scales(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    body = {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {"name": "rc"},
        "spec": {
            "replicas": 2,
            "template": {"metadata": {"labels": {"app": "rc"}}, "spec": {"containers": [CONTAINER]}},
        },
    }
    created = core.create_namespaced_replication_controller(ns, body)
    assert created.spec.selector == {"app": "rc"}  # defaulted from the template's labels
    eventually(lambda: core.read_namespaced_replication_controller("rc", ns).status.ready_replicas == 2, what="2 ready")
    core.patch_namespaced_replication_controller_scale("rc", ns, {"spec": {"replicas": 1}})
    eventually(
        lambda: len([p for p in core.list_namespaced_pod(ns).items if not p.metadata.deletion_timestamp]) == 1,
        what="scaled down to 1",
    )


def _serve(api: client.ApiClient, ns: str, replicas: int = 2) -> None:
    apps = client.AppsV1Api(api)
    ports = [{"containerPort": 8080, "name": "http"}]
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{**CONTAINER, "ports": ports}]}}
    apps.create_namespaced_deployment(
        ns,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "template": template},
        },
    )
    client.CoreV1Api(api).create_namespaced_service(
        ns,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        },
    )


def test_endpointslices_follow_pods(api: client.ApiClient, ns: str) -> None:
    _serve(api, ns)
    discovery = client.DiscoveryV1Api(api)

    def ready_slice() -> Any:
        slices = discovery.list_namespaced_endpoint_slice(ns, label_selector="kubernetes.io/service-name=web").items
        ready = [e for s in slices for e in s.endpoints or [] if e.conditions.ready]
        return slices if len(slices) == 1 and len(ready) == 2 else None

    slices = eventually(ready_slice, what="one slice with both pods ready")
    only = slices[0]
    assert only.address_type == "IPv4" and [(p.name, p.port) for p in only.ports] == [("http", 8080)]
    assert only.metadata.labels["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
    assert only.metadata.owner_references[0].kind == "Service"
    endpoints = client.CoreV1Api(api).read_namespaced_endpoints("web", ns)
    assert sorted(a.ip for a in endpoints.subsets[0].addresses) == sorted(e.addresses[0] for e in only.endpoints)
    client.CoreV1Api(api).delete_namespaced_service("web", ns)
    eventually(
        lambda: not discovery.list_namespaced_endpoint_slice(ns, label_selector="kubernetes.io/service-name=web").items,
        what="slices removed with their Service",
    )


def test_disruption_budget_status_and_eviction(api: client.ApiClient, ns: str) -> None:
    _serve(api, ns)
    policy = client.PolicyV1Api(api)
    policy.create_namespaced_pod_disruption_budget(
        ns,
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "web"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
        },
    )
    status = eventually(
        lambda: (
            (s := policy.read_namespaced_pod_disruption_budget("web", ns).status).expected_pods == 2
            and s.current_healthy == 2
            and s
        ),
        what="budget status",
    )
    assert (status.desired_healthy, status.disruptions_allowed) == (1, 1)
    assert status.conditions[0].type == "DisruptionAllowed" and status.conditions[0].status == "True"
    core = client.CoreV1Api(api)
    pods = [p.metadata.name for p in core.list_namespaced_pod(ns, label_selector="app=web").items]
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pods[0], "namespace": ns}}
    core.create_namespaced_pod_eviction(pods[0], ns, eviction)
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_pod_eviction(pods[1], ns, {**eviction, "metadata": {"name": pods[1], "namespace": ns}})
    assert exc.value.status == 429
    assert "Cannot evict pod as it would violate the pod's disruption budget." in exc.value.body


def test_autoscaler_reports_no_metrics_and_never_scales(api: client.ApiClient, ns: str) -> None:
    _serve(api, ns, replicas=1)
    autoscaling = client.AutoscalingV2Api(api)
    autoscaling.create_namespaced_horizontal_pod_autoscaler(
        ns,
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2,
                "maxReplicas": 5,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
                    }
                ],
            },
        },
    )

    def conditions() -> Any:
        status = autoscaling.read_namespaced_horizontal_pod_autoscaler("web", ns).status
        return {c.type: c for c in status.conditions or []} if status.conditions else None

    found = eventually(conditions, what="autoscaler conditions")
    assert found["AbleToScale"].status == "True" and found["ScalingActive"].status == "False"
    assert found["ScalingActive"].reason == "FailedGetResourceMetric"
    assert "no metrics API" in found["ScalingActive"].message
    # minReplicas 2 > 1 replica: a real HPA would scale up; with no metrics source nothing is scaled.
    assert client.AppsV1Api(api).read_namespaced_deployment("web", ns).spec.replicas == 1


def test_tables_of_the_new_kinds() -> None:
    now = datetime(2026, 1, 1, 0, 1, 0, tzinfo=UTC)
    meta = {"name": "x", "creationTimestamp": "2026-01-01T00:00:00Z"}
    cron = {"metadata": meta, "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {}}}}},
            "status": {"active": [{"name": "x-1"}], "lastScheduleTime": "2026-01-01T00:00:30Z"}}  # fmt: skip
    assert to_table("CronJob", [cron], now=now, list_meta={})["rows"][0]["cells"][:7] == [
        "x", "*/5 * * * *", "<none>", "False", 1, "30s", "60s"]  # fmt: skip
    pdb = {"metadata": meta, "spec": {"maxUnavailable": "50%"}, "status": {"disruptionsAllowed": 2}}
    assert to_table("PodDisruptionBudget", [pdb], now=now, list_meta={})["rows"][0]["cells"] == [
        "x", "N/A", "50%", 2, "60s"]  # fmt: skip
    eps = {"metadata": meta, "addressType": "IPv4", "ports": [{"port": 80}],
           "endpoints": [{"addresses": [f"10.0.0.{i}"]} for i in range(5)]}  # fmt: skip
    assert to_table("EndpointSlice", [eps], now=now, list_meta={})["rows"][0]["cells"] == [
        "x", "IPv4", "80", "10.0.0.0,10.0.0.1,10.0.0.2 + 2 more...", "60s"]  # fmt: skip
    hpa = {"metadata": meta, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3},
           "status": {"currentReplicas": 1}}  # fmt: skip
    assert to_table("HorizontalPodAutoscaler", [hpa], now=now, list_meta={})["rows"][0]["cells"] == [
        "x", "Deployment/web", "<none>", "<unset>", 3, 1, "60s"]  # fmt: skip
