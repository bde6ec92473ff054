"""Scheduling and workload controllers on emulated nodes, observed only through the official client.

The emulated cluster (see ``tests/conftest.py``) has two tainted 8-GPU H100 nodes ``gpu-0``/``gpu-1`` in zone-a and
three CPU nodes ``cpu-0..2`` in zones zone-0..2. Messages are asserted verbatim where kube-scheduler's text is
what users and workload checks match on.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from eventually import eventually
from kubernetes import client, watch

from harness.embedded.cluster import EmbeddedCluster
from harness.node.emulated import Script

T = TypeVar("T")

GPU = "nvidia.com/gpu"
GPU_PRODUCT = "NVIDIA-H100-80GB-HBM3"
GPU_NODES = ("gpu-0", "gpu-1")
CPU_NODES = ("cpu-0", "cpu-1", "cpu-2")
TOLERATE_GPU = {"key": GPU, "operator": "Exists", "effect": "NoSchedule"}
TAINT_REASON = "node(s) had untolerated taint {nvidia.com/gpu: present}"
EMULATED = "aibench.io/emulated"


# ----------------------------------------------------------------------------- helpers
def _container(gpus: int = 0, **extra: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": "busybox:1.36", "command": ["sleep", "infinity"], **extra}
    if gpus:
        container["resources"] = {"limits": {GPU: str(gpus)}}
    return container


def _gpu_pod(name: str, gpus: int, *, tolerate: bool = True, select: bool = True) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [_container(gpus)]}
    if tolerate:
        spec["tolerations"] = [TOLERATE_GPU]
    if select:
        spec["nodeSelector"] = {"nvidia.com/gpu.product": GPU_PRODUCT}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def _deployment(name: str, replicas: int, **pod_spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [_container()], **pod_spec}},
        },
    }


def _pods(core: client.CoreV1Api, ns: str, selector: str = "") -> list[client.V1Pod]:
    return core.list_namespaced_pod(ns, label_selector=selector).items


def _condition(pod: client.V1Pod, ctype: str) -> client.V1PodCondition | None:
    return next((c for c in pod.status.conditions or [] if c.type == ctype), None)


def _running_ready(pod: client.V1Pod) -> bool:
    ready = _condition(pod, "Ready")
    return pod.status.phase == "Running" and ready is not None and ready.status == "True"


def _all_running(core: client.CoreV1Api, ns: str, selector: str, count: int) -> list[client.V1Pod]:
    pods = [p for p in _pods(core, ns, selector) if not p.metadata.deletion_timestamp]
    return pods if len(pods) == count and all(_running_ready(p) for p in pods) else []


def _when(value: T, ok: Callable[[T], bool]) -> T | None:
    return value if ok(value) else None


def _running_pod(core: client.CoreV1Api, ns: str, name: str) -> client.V1Pod | None:
    return _when(core.read_namespaced_pod(name, ns), _running_ready)


def _unschedulable(core: client.CoreV1Api, ns: str, name: str) -> client.V1PodCondition | None:
    cond = _condition(core.read_namespaced_pod(name, ns), "PodScheduled")
    return cond if cond is not None and cond.status == "False" else None


def _events(core: client.CoreV1Api, ns: str, name: str, reason: str) -> list[client.CoreV1Event]:
    selector = f"involvedObject.name={name},reason={reason}"
    return core.list_namespaced_event(ns, field_selector=selector).items


def _gpus_by_node(core: client.CoreV1Api) -> Counter[str]:
    """GPUs requested by bound, non-terminal pods of every namespace, per node."""
    used: Counter[str] = Counter()
    for pod in core.list_pod_for_all_namespaces().items:
        if pod.spec.node_name and pod.status.phase not in ("Succeeded", "Failed"):
            for c in pod.spec.containers:
                used[pod.spec.node_name] += int(((c.resources and c.resources.limits) or {}).get(GPU, 0))
    return used


@pytest.fixture
def gpus_free(emulated_api: client.ApiClient) -> Iterator[client.CoreV1Api]:
    """Wait until earlier tests' namespaces have released every GPU, so placements are deterministic."""
    core = client.CoreV1Api(emulated_api)
    eventually(lambda: sum(_gpus_by_node(core).values()) == 0, timeout_s=10, what="GPU nodes to be empty")
    yield core


def _message(reasons: str, preemption: str) -> str:
    return f"0/5 nodes are available: {reasons}. preemption: 0/5 nodes are available: {preemption}."


# ----------------------------------------------------------------------------- GPUs, taints, selectors
def test_gpu_pod_lands_on_gpu_node_and_is_marked_emulated(gpus_free: client.CoreV1Api, emulated_ns: str) -> None:
    core, ns = gpus_free, emulated_ns
    core.create_namespaced_pod(ns, _gpu_pod("trainer", 4))
    pod = eventually(lambda: _running_pod(core, ns, "trainer"), what="GPU pod to run")
    assert pod.spec.node_name == "gpu-0"  # both empty: least allocated ties, the node name decides
    assert pod.metadata.annotations[EMULATED] == "true"
    assert pod.status.pod_ip and pod.status.host_ip
    assert _condition(pod, "PodScheduled").status == "True"
    scheduled = eventually(lambda: _events(core, ns, "trainer", "Scheduled"), what="Scheduled event")
    assert scheduled[0].type == "Normal"
    assert scheduled[0].message == f"Successfully assigned {ns}/trainer to gpu-0"
    node = client.CoreV1Api(core.api_client).read_node("gpu-0")
    assert node.status.allocatable[GPU] == "8"


def test_four_gpu_pods_spread_then_fill_and_freed_capacity_reschedules(
    gpus_free: client.CoreV1Api, emulated_ns: str
) -> None:
    core, ns = gpus_free, emulated_ns
    for i in range(5):
        core.create_namespaced_pod(ns, _gpu_pod(f"w{i}", 4))
    # Least-allocated scoring spreads: w0 -> gpu-0 (name tie-break), w1 -> the emptier gpu-1, and so on.
    placed = eventually(
        lambda: (
            {p.metadata.name: p.spec.node_name for p in _pods(core, ns) if p.spec.node_name}
            if len([p for p in _pods(core, ns) if p.spec.node_name]) == 4
            else None
        ),
        what="four GPU pods bound",
    )
    assert placed == {"w0": "gpu-0", "w1": "gpu-1", "w2": "gpu-0", "w3": "gpu-1"}
    used = _gpus_by_node(core)
    assert used["gpu-0"] == 8 and used["gpu-1"] == 8
    cond = eventually(lambda: _unschedulable(core, ns, "w4"), what="w4 to be reported unschedulable")
    assert cond.reason == "Unschedulable"
    assert cond.message == _message(
        f"2 Insufficient {GPU}, 3 node(s) didn't match Pod's node affinity/selector",
        "2 No preemption victims found for incoming pod, 3 Preemption is not helpful for scheduling",
    )
    assert core.read_namespaced_pod("w4", ns).status.phase == "Pending"

    core.delete_namespaced_pod("w1", ns, grace_period_seconds=0)
    pod = eventually(lambda: _running_pod(core, ns, "w4"), what="w4 to take the freed GPUs")
    assert pod.spec.node_name == "gpu-1" and _condition(pod, "PodScheduled").status == "True"
    used = _gpus_by_node(core)
    assert max(used[n] for n in GPU_NODES) <= 8 and sum(used[n] for n in GPU_NODES) == 16


def test_nine_gpu_pod_is_unschedulable_with_kube_message_and_event(
    gpus_free: client.CoreV1Api, emulated_ns: str
) -> None:
    core, ns = gpus_free, emulated_ns
    core.create_namespaced_pod(ns, _gpu_pod("too-big", 9, tolerate=False, select=False))
    core.create_namespaced_pod(ns, _gpu_pod("too-big-tolerated", 9, select=False))
    cond = eventually(lambda: _unschedulable(core, ns, "too-big"), what="PodScheduled=False")
    expected = _message(
        f"2 {TAINT_REASON}, 3 Insufficient {GPU}",
        "2 Preemption is not helpful for scheduling, 3 No preemption victims found for incoming pod",
    )
    assert cond.reason == "Unschedulable" and cond.message == expected
    assert f"Insufficient {GPU}" in cond.message and "untolerated taint {nvidia.com/gpu: present}" in cond.message
    event = eventually(lambda: _events(core, ns, "too-big", "FailedScheduling"), what="FailedScheduling event")[0]
    assert event.type == "Warning" and event.message == expected
    assert event.involved_object.kind == "Pod" and event.source.component == "default-scheduler"
    # Tolerating the taint leaves every node short of GPUs: one histogram entry for all five.
    cond = eventually(lambda: _unschedulable(core, ns, "too-big-tolerated"), what="PodScheduled=False")
    assert cond.message == _message(f"5 Insufficient {GPU}", "5 No preemption victims found for incoming pod")
    pod = core.read_namespaced_pod("too-big", ns)
    assert pod.status.phase == "Pending" and pod.spec.node_name is None


def test_pods_without_toleration_never_land_on_gpu_nodes(gpus_free: client.CoreV1Api, emulated_ns: str) -> None:
    core, ns = gpus_free, emulated_ns
    # 64-CPU GPU nodes would win least-allocated scoring by far, if the taint allowed them.
    for i in range(9):
        core.create_namespaced_pod(
            ns,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"plain-{i}"},
                "spec": {"containers": [_container(resources={"requests": {"cpu": "1"}})]},
            },
        )
    core.create_namespaced_pod(ns, _gpu_pod("selects-gpu", 0, tolerate=False))

    def plain_running() -> list[client.V1Pod]:
        pods = [p for p in _pods(core, ns) if p.metadata.name.startswith("plain-") and _running_ready(p)]
        return pods if len(pods) == 9 else []

    pods = eventually(plain_running, what="plain pods running")
    assert Counter(p.spec.node_name for p in pods) == {"cpu-0": 3, "cpu-1": 3, "cpu-2": 3}
    cond = eventually(lambda: _unschedulable(core, ns, "selects-gpu"), what="selects-gpu unschedulable")
    assert cond.message == _message(
        f"2 {TAINT_REASON}, 3 node(s) didn't match Pod's node affinity/selector",
        "5 Preemption is not helpful for scheduling",
    )


# ----------------------------------------------------------------------------- topology and affinity
def test_zone_topology_spread_places_one_replica_per_cpu_node(emulated_api: client.ApiClient, emulated_ns: str) -> None:
    apps, core, ns = client.AppsV1Api(emulated_api), client.CoreV1Api(emulated_api), emulated_ns
    spread = [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "spread"}},
        }
    ]
    apps.create_namespaced_deployment(ns, _deployment("spread", 3, topologySpreadConstraints=spread))
    pods = eventually(lambda: _all_running(core, ns, "app=spread", 3), what="3 spread replicas")
    assert sorted(p.spec.node_name for p in pods) == list(CPU_NODES)
    # zone-a (the tainted GPU nodes) still counts as an empty domain under the default nodeTaintsPolicy Ignore,
    # so a fourth replica would skew 2 over it: kube keeps it Pending, and so does the embedded scheduler.
    apps.patch_namespaced_deployment_scale("spread", ns, {"spec": {"replicas": 4}})
    fourth = eventually(
        lambda: [p for p in _pods(core, ns, "app=spread") if _unschedulable(core, ns, p.metadata.name)],
        what="fourth replica unschedulable",
    )
    cond = _unschedulable(core, ns, fourth[0].metadata.name)
    assert cond.message == _message(
        f"2 {TAINT_REASON}, 3 node(s) didn't match pod topology spread constraints",
        "2 Preemption is not helpful for scheduling, 3 No preemption victims found for incoming pod",
    )


def test_required_pod_anti_affinity_allows_one_replica_per_node(
    emulated_api: client.ApiClient, emulated_ns: str
) -> None:
    apps, core, ns = client.AppsV1Api(emulated_api), client.CoreV1Api(emulated_api), emulated_ns
    anti = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "anti"}}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }
    apps.create_namespaced_deployment(ns, _deployment("anti", 4, affinity=anti))

    def settled() -> tuple[list[client.V1Pod], list[client.V1Pod]] | None:
        pods = _pods(core, ns, "app=anti")
        running = [p for p in pods if _running_ready(p)]
        pending = [p for p in pods if (c := _condition(p, "PodScheduled")) is not None and c.status == "False"]
        return (running, pending) if len(pods) == 4 and len(running) == 3 and len(pending) == 1 else None

    running, pending = eventually(settled, what="3 replicas running and 1 pending")
    assert sorted(p.spec.node_name for p in running) == list(CPU_NODES)
    assert _condition(pending[0], "PodScheduled").message == _message(
        f"2 {TAINT_REASON}, 3 node(s) didn't match pod anti-affinity rules",
        "2 Preemption is not helpful for scheduling, 3 No preemption victims found for incoming pod",
    )
    deploy = eventually(
        lambda: _when(apps.read_namespaced_deployment_status("anti", ns), lambda d: d.status.available_replicas == 3),
        what="deployment status",
    )
    assert deploy.status.replicas == 4 and deploy.status.unavailable_replicas == 1


# ----------------------------------------------------------------------------- workload controllers
def _daemonset(name: str, **pod_spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [_container()], **pod_spec}},
        },
    }


def test_daemonset_one_pod_per_eligible_node(emulated_api: client.ApiClient, emulated_ns: str) -> None:
    apps, core, ns = client.AppsV1Api(emulated_api), client.CoreV1Api(emulated_api), emulated_ns
    apps.create_namespaced_daemon_set(ns, _daemonset("agent"))
    apps.create_namespaced_daemon_set(ns, _daemonset("gpu-agent", tolerations=[TOLERATE_GPU]))
    agents = eventually(lambda: _all_running(core, ns, "app=agent", 3), what="one agent per CPU node")
    assert sorted(p.spec.node_name for p in agents) == list(CPU_NODES)
    gpu_agents = eventually(lambda: _all_running(core, ns, "app=gpu-agent", 5), what="one gpu-agent per node")
    assert sorted(p.spec.node_name for p in gpu_agents) == sorted(CPU_NODES + GPU_NODES)
    for pod in agents + gpu_agents:
        assert pod.metadata.annotations[EMULATED] == "true"
        assert pod.metadata.owner_references[0].kind == "DaemonSet"

    def status(name: str, count: int) -> client.V1DaemonSetStatus | None:
        s = apps.read_namespaced_daemon_set_status(name, ns).status
        return s if s.number_available == count and s.updated_number_scheduled == count else None

    for name, count in (("agent", 3), ("gpu-agent", 5)):
        s = eventually(lambda name=name, count=count: status(name, count), what=f"{name} status")
        assert (s.desired_number_scheduled, s.current_number_scheduled, s.number_ready) == (count, count, count)
        assert s.number_misscheduled == 0 and not s.number_unavailable


def test_statefulset_creates_ordinals_in_order_with_bound_claims(
    emulated_api: client.ApiClient, emulated_ns: str
) -> None:
    apps, core, ns = client.AppsV1Api(emulated_api), client.CoreV1Api(emulated_api), emulated_ns
    start = core.list_namespaced_pod(ns).metadata.resource_version
    seen: list[tuple[str, str, bool]] = []
    w = watch.Watch()

    def record() -> None:
        for event in w.stream(core.list_namespaced_pod, ns, resource_version=start, timeout_seconds=5):
            pod = event["object"]
            seen.append((event["type"], pod.metadata.name, _running_ready(pod)))
            if sum(1 for t, _, _ in seen if t == "ADDED") == 3 and _running_ready(pod) and pod.metadata.name == "db-2":
                w.stop()

    watcher = threading.Thread(target=record)
    watcher.start()
    labels = {"app": "db"}
    apps.create_namespaced_stateful_set(
        ns,
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db"},
            "spec": {
                "replicas": 3,
                "serviceName": "db",
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [_container(volumeMounts=[{"name": "data", "mountPath": "/data"}])]},
                },
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                    }
                ],
            },
        },
    )
    pods = eventually(lambda: _all_running(core, ns, "app=db", 3), what="3 StatefulSet pods")
    watcher.join(timeout=6)
    assert sorted(p.metadata.name for p in pods) == ["db-0", "db-1", "db-2"]
    # OrderedReady: each ordinal is created only after the one before it is Running and Ready.
    added = [name for t, name, _ in seen if t == "ADDED"]
    assert added == ["db-0", "db-1", "db-2"]
    for earlier, later in (("db-0", "db-1"), ("db-1", "db-2")):
        created_at = seen.index(("ADDED", later, False))
        assert any(name == earlier and ready for _, name, ready in seen[:created_at]), (earlier, later, seen)
    for pod in pods:
        assert pod.spec.hostname == pod.metadata.name and pod.spec.subdomain == "db"
        claim = next(v.persistent_volume_claim.claim_name for v in pod.spec.volumes if v.name == "data")
        assert claim == f"data-{pod.metadata.name}"
    claims = eventually(
        lambda: _when(
            core.list_namespaced_persistent_volume_claim(ns).items,
            lambda c: len(c) == 3 and all(x.status.phase == "Bound" for x in c),
        ),
        what="claims bound",
    )
    assert sorted(c.metadata.name for c in claims) == ["data-db-0", "data-db-1", "data-db-2"]
    for c in claims:
        assert c.spec.storage_class_name == "local-path" and c.spec.volume_name
        assert core.read_persistent_volume(c.spec.volume_name).spec.claim_ref.name == c.metadata.name
    sts = eventually(
        lambda: (s := apps.read_namespaced_stateful_set_status("db", ns)).status.ready_replicas == 3 and s,
        what="StatefulSet status",
    )
    assert sts.status.replicas == 3 and sts.status.current_replicas == 3


def _replica_sets(apps: client.AppsV1Api, ns: str, app: str) -> list[client.V1ReplicaSet]:
    return apps.list_namespaced_replica_set(ns, label_selector=f"app={app}").items


def test_deployment_rolling_update_replaces_every_pod(emulated_api: client.ApiClient, emulated_ns: str) -> None:
    apps, core, ns = client.AppsV1Api(emulated_api), client.CoreV1Api(emulated_api), emulated_ns
    apps.create_namespaced_deployment(ns, _deployment("web", 3))
    old_pods = eventually(lambda: _all_running(core, ns, "app=web", 3), what="first rollout")
    old_hash = {p.metadata.labels["pod-template-hash"] for p in old_pods}
    assert len(old_hash) == 1
    apps.patch_namespaced_deployment(
        "web",
        ns,
        {
            "spec": {
                "template": {"spec": {"containers": [{"name": "main", "env": [{"name": "VERSION", "value": "2"}]}]}}
            }
        },
    )

    def rolled() -> client.V1Deployment | None:
        d = apps.read_namespaced_deployment_status("web", ns)
        pods = _pods(core, ns, "app=web")
        hashes = {p.metadata.labels["pod-template-hash"] for p in pods}
        done = (
            d.status.observed_generation == d.metadata.generation
            and d.status.updated_replicas == 3
            and d.status.ready_replicas == 3
            and d.status.replicas == 3
            and len(pods) == 3
            and len(hashes) == 1
            and hashes != old_hash
            and all(_running_ready(p) for p in pods)
        )
        return d if done else None

    eventually(rolled, what="rolling update to finish")
    new_hash = _pods(core, ns, "app=web")[0].metadata.labels["pod-template-hash"]
    for pod in _pods(core, ns, "app=web"):
        assert pod.spec.containers[0].env[0].value == "2"
    sets = {rs.metadata.labels["pod-template-hash"]: rs for rs in _replica_sets(apps, ns, "web")}
    assert set(sets) == old_hash | {new_hash}
    old = sets[old_hash.pop()]
    assert old.spec.replicas == 0 and not old.status.replicas
    assert old.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    assert sets[new_hash].metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    assert sets[new_hash].spec.replicas == 3


def test_deployment_scale_subresource(emulated_api: client.ApiClient, emulated_ns: str) -> None:
    apps, core, ns = client.AppsV1Api(emulated_api), client.CoreV1Api(emulated_api), emulated_ns
    apps.create_namespaced_deployment(ns, _deployment("scaled", 1))
    eventually(lambda: _all_running(core, ns, "app=scaled", 1), what="1 replica")
    scale = apps.patch_namespaced_deployment_scale("scaled", ns, {"spec": {"replicas": 5}})
    assert scale.spec.replicas == 5 and scale.kind == "Scale"
    eventually(lambda: _all_running(core, ns, "app=scaled", 5), what="5 replicas")
    scale = eventually(
        lambda: (s := apps.read_namespaced_deployment_scale("scaled", ns)).status.replicas == 5 and s,
        what="scale status",
    )
    assert scale.status.selector == "app=scaled"
    apps.patch_namespaced_deployment_scale("scaled", ns, {"spec": {"replicas": 2}})
    eventually(lambda: _all_running(core, ns, "app=scaled", 2), what="2 replicas")
    assert apps.read_namespaced_deployment("scaled", ns).spec.replicas == 2
    rs = _replica_sets(apps, ns, "scaled")
    assert len(rs) == 1 and rs[0].spec.replicas == 2


def test_job_on_emulated_nodes_completes_by_script(
    emulated_cluster: EmbeddedCluster, emulated_api: client.ApiClient, emulated_ns: str
) -> None:
    batch, core, ns = client.BatchV1Api(emulated_api), client.CoreV1Api(emulated_api), emulated_ns
    scripted = emulated_cluster.kubelets.scripted
    scripted.script("emu-ok-", Script(exit_code=0, after_s=0.1, log="step 1\nstep 2\n"))
    scripted.script("emu-bad-", Script(exit_code=2, after_s=0.05, log="boom\n"))
    try:

        def job(name: str, **spec: Any) -> dict[str, Any]:
            return {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": name},
                "spec": {**spec, "template": {"spec": {"restartPolicy": "Never", "containers": [_container()]}}},
            }

        batch.create_namespaced_job(ns, job("emu-ok", completions=2, parallelism=2))
        batch.create_namespaced_job(ns, job("emu-bad", backoffLimit=0))

        def finished(name: str) -> client.V1JobCondition | None:
            conditions = batch.read_namespaced_job_status(name, ns).status.conditions or []
            return next((c for c in conditions if c.type in ("Complete", "Failed") and c.status == "True"), None)

        assert eventually(lambda: finished("emu-ok"), what="emu-ok to finish").type == "Complete"
        status = batch.read_namespaced_job_status("emu-ok", ns).status
        assert status.succeeded == 2 and not status.active and status.completion_time is not None
        for pod in _pods(core, ns, "job-name=emu-ok"):
            assert pod.status.phase == "Succeeded" and pod.spec.node_name in CPU_NODES
            assert pod.metadata.annotations[EMULATED] == "true"
            terminated = pod.status.container_statuses[0].state.terminated
            assert terminated.exit_code == 0 and terminated.reason == "Completed"
            assert core.read_namespaced_pod_log(pod.metadata.name, ns) == "step 1\nstep 2\n"
        failed = eventually(lambda: finished("emu-bad"), what="emu-bad to fail")
        assert failed.type == "Failed" and failed.reason == "BackoffLimitExceeded"
        pod = _pods(core, ns, "job-name=emu-bad")[0]
        terminated = pod.status.container_statuses[0].state.terminated
        assert pod.status.phase == "Failed" and terminated.exit_code == 2 and terminated.reason == "Error"
    finally:
        scripted.clear()


def test_every_started_emulated_pod_is_annotated(emulated_api: client.ApiClient, emulated_ns: str) -> None:
    apps, core, ns = client.AppsV1Api(emulated_api), client.CoreV1Api(emulated_api), emulated_ns
    core.create_namespaced_pod(
        ns, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bare"}, "spec": {"containers": [_container()]}}
    )
    apps.create_namespaced_deployment(ns, _deployment("annotated", 2))
    eventually(lambda: _all_running(core, ns, "app=annotated", 2), what="deployment pods")
    eventually(lambda: _running_ready(core.read_namespaced_pod("bare", ns)), what="bare pod")
    started = [p for p in core.list_pod_for_all_namespaces().items if p.status.pod_ip]
    assert len(started) >= 3
    missing = [
        f"{p.metadata.namespace}/{p.metadata.name}"
        for p in started
        if (p.metadata.annotations or {}).get(EMULATED) != "true"
    ]
    assert missing == []
