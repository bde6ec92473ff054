"""Controller behaviour on an in-process store: the kubelet is simulated by writing pod status directly."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from harness.embedded.admission import AdmissionContext, admit
from harness.embedded.controllers import ControllerManager
from harness.embedded.controllers.job import format_indexes, parse_indexes
from harness.embedded.objects import condition
from harness.embedded.resources import Registry
from harness.embedded.store import Store

NS = "t"
IDLE_S = 10.0


class Cluster:
    def __init__(self) -> None:
        self.store = Store(Registry.with_builtins())
        ips = itertools.count(10)
        ports = itertools.count(30000)
        self.ctx = AdmissionContext(
            allocate_cluster_ip=lambda: f"10.96.0.{next(ips)}",
            allocate_node_port=lambda: next(ports),
            default_storage_class=lambda: "local-path",
        )
        self.pod_ips = itertools.count(2)
        self.manager = ControllerManager(self.store, self.ctx, job_backoff_s=0.0, resync_s=0)

    def rtype(self, group: str, plural: str) -> Any:
        return self.store.registry.get(group, plural)

    def create(self, group: str, plural: str, obj: dict[str, Any], ns: str = NS) -> dict[str, Any]:
        rtype = self.rtype(group, plural)
        uid = str(uuid.uuid4())
        obj = admit(rtype, obj, namespace=ns, ctx=self.ctx, uid=uid, creating=True)
        return self.store.create(rtype, ns, obj, uid=uid)

    def idle(self) -> None:
        assert self.manager.wait_idle(IDLE_S), "controllers did not settle"

    def pods(self, ns: str = NS, **labels: str) -> list[dict[str, Any]]:
        return sorted(
            (
                p
                for p in self.store.iter(("", "pods"), ns)
                if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())
            ),
            key=lambda p: p["metadata"]["name"],
        )

    def get(self, group: str, plural: str, name: str, ns: str = NS) -> dict[str, Any] | None:
        return self.store.find((group, plural), ns, name)

    def set_pod(self, pod: dict[str, Any], phase: str, *, ready: bool = False, exit_code: int | None = None) -> None:
        """Pretend to be the kubelet."""
        ip = f"10.244.0.{next(self.pod_ips)}"

        def change(obj: dict[str, Any]) -> None:
            status = obj.setdefault("status", {})
            status["phase"] = phase
            status.setdefault("podIP", ip)
            status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
            if exit_code is not None:
                status["containerStatuses"] = [
                    {
                        "name": c["name"],
                        "ready": False,
                        "restartCount": 0,
                        "image": c["image"],
                        "imageID": "",
                        "state": {
                            "terminated": {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error"}
                        },
                    }
                    for c in obj["spec"]["containers"]
                ]

        meta = pod["metadata"]
        self.store.mutate(self.rtype("", "pods"), meta["namespace"], meta["name"], change, subresource="status")

    def events(self, reason: str, ns: str = NS) -> list[dict[str, Any]]:
        return [e for e in self.store.iter(("", "events"), ns) if e["reason"] == reason]


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    c = Cluster()
    c.manager.start()
    c.create("", "namespaces", {"metadata": {"name": NS}}, ns="")
    c.idle()
    yield c
    c.manager.stop()
    c.manager.stop()  # idempotent


def _container(**extra: Any) -> dict[str, Any]:
    return {"name": "main", "image": "busybox:1.36", "command": ["true"], **extra}


def _job(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [_container()]}}, **spec},
    }


# ------------------------------------------------------------------------------------------------ job
def test_index_text_round_trip() -> None:
    assert format_indexes([4, 0, 1, 2]) == "0-2,4"
    assert parse_indexes("0-2,4") == {0, 1, 2, 4}
    assert format_indexes([]) == ""


def test_job_completions_respects_parallelism(cluster: Cluster) -> None:
    cluster.create("batch", "jobs", _job("work", completions=3, parallelism=2))
    cluster.idle()
    seen_max = 0
    for _ in range(10):
        active = [p for p in cluster.pods(**{"job-name": "work"}) if p["status"]["phase"] in ("Pending", "Running")]
        seen_max = max(seen_max, len(active))
        if not active:
            break
        cluster.set_pod(active[0], "Succeeded", exit_code=0)
        cluster.idle()
    assert seen_max == 2
    job = cluster.get("batch", "jobs", "work")
    assert job is not None
    status = job["status"]
    assert status["succeeded"] == 3
    assert "active" not in status
    assert status["ready"] == 0 and status["terminating"] == 0
    assert status["uncountedTerminatedPods"] == {}
    assert status["startTime"] and status["completionTime"]
    assert [c["type"] for c in status["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    assert all(c["status"] == "True" for c in status["conditions"])
    assert len(cluster.pods(**{"job-name": "work"})) == 3
    assert cluster.events("Completed")[0]["message"] == "Job completed"
    created = cluster.events("SuccessfulCreate")
    assert {e["message"] for e in created} == {f"Created pod: {p['metadata']['name']}" for p in cluster.pods()}
    pod = cluster.pods()[0]
    assert pod["metadata"]["name"].startswith("work-") and len(pod["metadata"]["name"]) == len("work-") + 5
    ref = pod["metadata"]["ownerReferences"][0]
    assert ref["controller"] and ref["blockOwnerDeletion"] and ref["kind"] == "Job"


def test_indexed_job(cluster: Cluster) -> None:
    cluster.create("batch", "jobs", _job("idx", completions=3, parallelism=3, completionMode="Indexed"))
    cluster.idle()
    pods = cluster.pods()
    assert len(pods) == 3
    key = "batch.kubernetes.io/job-completion-index"
    by_index = {p["metadata"]["annotations"][key]: p for p in pods}
    assert sorted(by_index) == ["0", "1", "2"]
    for index, pod in by_index.items():
        assert pod["metadata"]["labels"][key] == index
        assert pod["metadata"]["name"].startswith(f"idx-{index}-")
        assert pod["spec"]["hostname"] == f"idx-{index}"
        env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
        assert env["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == f"metadata.annotations['{key}']"
    cluster.set_pod(by_index["1"], "Succeeded", exit_code=0)
    cluster.idle()
    assert cluster.get("batch", "jobs", "idx")["status"]["completedIndexes"] == "1"
    cluster.set_pod(by_index["0"], "Failed", exit_code=1)
    cluster.idle()
    retry = [
        p for p in cluster.pods() if p["status"]["phase"] == "Pending" and p["metadata"]["annotations"][key] == "0"
    ]
    assert len(retry) == 1, "failed index is retried"
    cluster.set_pod(retry[0], "Succeeded", exit_code=0)
    cluster.set_pod(by_index["2"], "Succeeded", exit_code=0)
    cluster.idle()
    status = cluster.get("batch", "jobs", "idx")["status"]
    assert status["completedIndexes"] == "0-2"
    assert status["failed"] == 1 and status["succeeded"] == 3
    assert condition(cluster.get("batch", "jobs", "idx"), "Complete")["status"] == "True"


def test_job_backoff_limit(cluster: Cluster) -> None:
    cluster.create("batch", "jobs", _job("bad", backoffLimit=1))
    cluster.idle()
    for _ in range(2):
        pending = [p for p in cluster.pods() if p["status"]["phase"] == "Pending"]
        assert len(pending) == 1
        cluster.set_pod(pending[0], "Failed", exit_code=1)
        cluster.idle()
    job = cluster.get("batch", "jobs", "bad")
    status = job["status"]
    assert status["failed"] == 2
    failed = condition(job, "Failed")
    assert failed is not None and failed["reason"] == "BackoffLimitExceeded"
    assert failed["message"] == "Job has reached the specified backoff limit"
    assert condition(job, "FailureTarget")["status"] == "True"
    assert "completionTime" not in status
    assert all(p["status"]["phase"] == "Failed" for p in cluster.pods())
    assert cluster.events("BackoffLimitExceeded")[0]["type"] == "Warning"


def test_job_active_deadline(cluster: Cluster) -> None:
    cluster.create("batch", "jobs", _job("slow", activeDeadlineSeconds=1, parallelism=2, completions=4))
    cluster.idle()
    assert len(cluster.pods()) == 2
    cluster.set_pod(cluster.pods()[0], "Running", ready=True)
    cluster.idle()
    assert cluster.get("batch", "jobs", "slow")["status"]["ready"] == 1
    deadline_check = cluster.manager.wait_idle  # the timer fires without any further event
    import time

    time.sleep(1.2)
    assert deadline_check(IDLE_S)
    job = cluster.get("batch", "jobs", "slow")
    failed = condition(job, "Failed")
    assert failed is not None and failed["reason"] == "DeadlineExceeded"
    assert failed["message"] == "Job was active longer than specified deadline"
    assert cluster.pods() == [], "active pods are deleted"


def test_job_suspend_and_work_queue(cluster: Cluster) -> None:
    cluster.create("batch", "jobs", _job("queue", parallelism=2, suspend=True))
    cluster.idle()
    job = cluster.get("batch", "jobs", "queue")
    assert job["spec"].get("completions") is None
    assert cluster.pods() == []
    assert condition(job, "Suspended")["status"] == "True"

    def resume(obj: dict[str, Any]) -> None:
        obj["spec"]["suspend"] = False

    cluster.store.mutate(cluster.rtype("batch", "jobs"), NS, "queue", resume)
    cluster.idle()
    pods = cluster.pods()
    assert len(pods) == 2
    cluster.set_pod(pods[0], "Succeeded", exit_code=0)
    cluster.idle()
    assert len(cluster.pods()) == 2, "no new pods once one succeeded"
    assert condition(cluster.get("batch", "jobs", "queue"), "Complete") is None
    cluster.set_pod(pods[1], "Succeeded", exit_code=0)
    cluster.idle()
    job = cluster.get("batch", "jobs", "queue")
    assert condition(job, "Complete")["status"] == "True"
    assert condition(job, "Suspended")["status"] == "False"


# ------------------------------------------------------------------------------------------------ deployment
def _deployment(name: str, replicas: int, image: str = "nginx:1.25") -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    }


def _make_ready(cluster: Cluster, **labels: str) -> None:
    for _ in range(20):
        todo = [
            p
            for p in cluster.pods(**labels)
            if not p["metadata"].get("deletionTimestamp")
            and not any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
        ]
        if not todo:
            return
        for pod in todo:
            cluster.set_pod(pod, "Running", ready=True)
        cluster.idle()
    raise AssertionError("pods kept appearing")


def test_deployment_scale_and_rollout(cluster: Cluster) -> None:
    cluster.create("apps", "deployments", _deployment("web", 3))
    cluster.idle()
    rs_list = list(cluster.store.iter(("apps", "replicasets"), NS))
    assert len(rs_list) == 1
    rs = rs_list[0]
    thash = rs["metadata"]["labels"]["pod-template-hash"]
    assert len(thash) == 10 and rs["metadata"]["name"] == f"web-{thash}"
    assert rs["spec"]["selector"]["matchLabels"]["pod-template-hash"] == thash
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    pods = cluster.pods(app="web")
    assert len(pods) == 3
    assert all(p["metadata"]["name"].startswith(f"web-{thash}-") for p in pods)
    _make_ready(cluster, app="web")
    deploy = cluster.get("apps", "deployments", "web")
    status = deploy["status"]
    assert (status["replicas"], status["updatedReplicas"], status["readyReplicas"], status["availableReplicas"]) == (
        3,
        3,
        3,
        3,
    )
    assert status["observedGeneration"] == 1
    assert condition(deploy, "Available")["status"] == "True"
    assert condition(deploy, "Progressing")["reason"] == "NewReplicaSetAvailable"
    assert deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert any(
        e["message"] == f"Scaled up replica set web-{thash} from 0 to 3" for e in cluster.events("ScalingReplicaSet")
    )

    def scale(n: int) -> None:
        def change(obj: dict[str, Any]) -> None:
            obj["spec"]["replicas"] = n

        cluster.store.mutate(cluster.rtype("apps", "deployments"), NS, "web", change)
        cluster.idle()

    scale(5)
    assert len(cluster.pods(app="web")) == 5
    _make_ready(cluster, app="web")
    scale(2)
    assert len(cluster.pods(app="web")) == 2

    def new_image(obj: dict[str, Any]) -> None:
        obj["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"

    cluster.store.mutate(cluster.rtype("apps", "deployments"), NS, "web", new_image)
    cluster.idle()
    for _ in range(20):
        _make_ready(cluster, app="web")
        cluster.idle()
        deploy = cluster.get("apps", "deployments", "web")
        if condition(deploy, "Progressing")["reason"] == "NewReplicaSetAvailable":
            break
    pods = cluster.pods(app="web")
    hashes = {p["metadata"]["labels"]["pod-template-hash"] for p in pods}
    assert len(pods) == 2 and len(hashes) == 1 and thash not in hashes
    assert all(p["spec"]["containers"][0]["image"] == "nginx:1.26" for p in pods)
    deploy = cluster.get("apps", "deployments", "web")
    assert deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert deploy["status"]["updatedReplicas"] == 2 and deploy["status"]["observedGeneration"] == 4
    old_rs = cluster.get("apps", "replicasets", f"web-{thash}")
    assert old_rs is not None and old_rs["spec"]["replicas"] == 0


# ------------------------------------------------------------------------------------------------ daemonset
def _node(
    cluster: Cluster, name: str, *, labels: dict[str, str] | None = None, taints: list[dict[str, str]] | None = None
) -> None:
    cluster.create(
        "", "nodes", {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}}, ns=""
    )


def test_daemonset_one_pod_per_eligible_node(cluster: Cluster) -> None:
    _node(cluster, "n1", labels={"gpu": "yes"})
    _node(cluster, "n2", labels={"gpu": "yes"}, taints=[{"key": "dedicated", "value": "x", "effect": "NoSchedule"}])
    _node(cluster, "n3")
    _node(
        cluster,
        "n4",
        labels={"gpu": "yes"},
        taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}],
    )
    cluster.create(
        "apps",
        "daemonsets",
        {
            "metadata": {"name": "agent"},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {
                    "metadata": {"labels": {"app": "agent"}},
                    "spec": {"nodeSelector": {"gpu": "yes"}, "containers": [_container()]},
                },
            },
        },
    )
    cluster.idle()

    def placed() -> set[str]:
        out = set()
        for pod in cluster.pods(app="agent"):
            term = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            out.add(term["nodeSelectorTerms"][0]["matchFields"][0]["values"][0])
        return out

    assert placed() == {"n1", "n4"}  # n2's taint is not tolerated, n3 lacks the label
    tolerations = {t["key"] for t in cluster.pods(app="agent")[0]["spec"]["tolerations"]}
    assert "node.kubernetes.io/unschedulable" in tolerations
    _node(cluster, "n5", labels={"gpu": "yes"})
    cluster.idle()
    assert placed() == {"n1", "n4", "n5"}
    cluster.store.delete(cluster.rtype("", "nodes"), "", "n1")
    cluster.idle()
    assert placed() == {"n4", "n5"}
    _make_ready(cluster, app="agent")
    ds = cluster.get("apps", "daemonsets", "agent")
    assert ds["status"]["desiredNumberScheduled"] == 2
    assert ds["status"]["currentNumberScheduled"] == 2
    assert ds["status"]["numberReady"] == 2
    assert ds["status"]["updatedNumberScheduled"] == 2


# ------------------------------------------------------------------------------------------------ statefulset
def test_statefulset_ordered_with_claims(cluster: Cluster) -> None:
    cluster.create(
        "apps",
        "statefulsets",
        {
            "metadata": {"name": "db"},
            "spec": {
                "replicas": 3,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                # The emptyDir stand-in only satisfies admission's mount check; the claim replaces it in the pods.
                "template": {
                    "metadata": {"labels": {"app": "db"}},
                    "spec": {
                        "volumes": [{"name": "data", "emptyDir": {}}],
                        "containers": [_container(volumeMounts=[{"name": "data", "mountPath": "/data"}])],
                    },
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
    cluster.idle()
    assert [p["metadata"]["name"] for p in cluster.pods()] == ["db-0"]
    assert cluster.get("", "persistentvolumeclaims", "data-db-0") is not None
    assert cluster.get("", "persistentvolumeclaims", "data-db-1") is None
    pod = cluster.pods()[0]
    assert pod["spec"]["hostname"] == "db-0" and pod["spec"]["subdomain"] == "db"
    assert pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "db-0"
    assert pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "0"
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}} in pod["spec"]["volumes"]
    cluster.set_pod(pod, "Running", ready=False)
    cluster.idle()
    assert len(cluster.pods()) == 1, "waits for Ready"
    _make_ready(cluster, app="db")
    assert [p["metadata"]["name"] for p in cluster.pods()] == ["db-0", "db-1", "db-2"]
    sts = cluster.get("apps", "statefulsets", "db")
    assert sts["status"]["readyReplicas"] == 3 and sts["status"]["replicas"] == 3

    def scale(obj: dict[str, Any]) -> None:
        obj["spec"]["replicas"] = 1

    cluster.store.mutate(cluster.rtype("apps", "statefulsets"), NS, "db", scale)
    cluster.idle()
    assert [p["metadata"]["name"] for p in cluster.pods()] == ["db-0"]
    assert cluster.get("", "persistentvolumeclaims", "data-db-2") is not None, "claims are retained"


# ------------------------------------------------------------------------------------------------ endpoints
def test_endpoints_ready_split_and_named_ports(cluster: Cluster) -> None:
    cluster.create(
        "",
        "services",
        {
            "metadata": {"name": "api", "labels": {"tier": "x"}},
            "spec": {"selector": {"app": "api"}, "ports": [{"name": "http", "port": 80, "targetPort": "web"}]},
        },
    )
    for i in range(3):
        cluster.create(
            "",
            "pods",
            {
                "metadata": {"name": f"api-{i}", "labels": {"app": "api"}},
                "spec": {
                    "hostname": f"api-{i}",
                    "subdomain": "api",
                    "nodeName": "n1",
                    "containers": [_container(ports=[{"name": "web", "containerPort": 8080 + (i == 2)}])],
                },
            },
        )
    cluster.create(
        "", "pods", {"metadata": {"name": "noip", "labels": {"app": "api"}}, "spec": {"containers": [_container()]}}
    )
    cluster.idle()
    assert "subsets" not in cluster.get("", "endpoints", "api")
    for i, ready in enumerate((True, False, True)):
        cluster.set_pod(cluster.get("", "pods", f"api-{i}"), "Running", ready=ready)
    cluster.idle()
    ep = cluster.get("", "endpoints", "api")
    assert ep["metadata"]["labels"] == {"tier": "x"}
    by_port = {s["ports"][0]["port"]: s for s in ep["subsets"]}
    assert set(by_port) == {8080, 8081}
    assert by_port[8080]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert [a["targetRef"]["name"] for a in by_port[8080]["addresses"]] == ["api-0"]
    assert [a["targetRef"]["name"] for a in by_port[8080]["notReadyAddresses"]] == ["api-1"]
    assert by_port[8080]["addresses"][0]["hostname"] == "api-0"
    assert by_port[8080]["addresses"][0]["nodeName"] == "n1"
    assert [a["targetRef"]["name"] for a in by_port[8081]["addresses"]] == ["api-2"]
    cluster.store.delete(cluster.rtype("", "services"), NS, "api")
    cluster.idle()
    assert cluster.get("", "endpoints", "api") is None


def test_headless_service_endpoints(cluster: Cluster) -> None:
    cluster.create("", "services", {"metadata": {"name": "h"}, "spec": {"clusterIP": "None", "selector": {"app": "h"}}})
    cluster.create(
        "", "pods", {"metadata": {"name": "h-0", "labels": {"app": "h"}}, "spec": {"containers": [_container()]}}
    )
    cluster.set_pod(cluster.get("", "pods", "h-0"), "Running", ready=True)
    cluster.idle()
    ep = cluster.get("", "endpoints", "h")
    assert ep["subsets"][0]["addresses"][0]["targetRef"]["name"] == "h-0"
    assert "ports" not in ep["subsets"][0]


# ------------------------------------------------------------------------------------------------ gc
def test_gc_background(cluster: Cluster) -> None:
    cluster.create("apps", "deployments", _deployment("bg", 2))
    cluster.idle()
    assert len(cluster.pods(app="bg")) == 2
    cluster.store.delete(cluster.rtype("apps", "deployments"), NS, "bg")
    cluster.idle()
    assert list(cluster.store.iter(("apps", "replicasets"), NS)) == []
    assert cluster.pods(app="bg") == []


def test_gc_foreground(cluster: Cluster) -> None:
    cluster.create("apps", "deployments", _deployment("fg", 2))
    cluster.idle()
    # Stop the workers so the intermediate state is observable, then let them run.
    cluster.manager.stop()
    obj, removed = cluster.store.delete(cluster.rtype("apps", "deployments"), NS, "fg", propagation="Foreground")
    assert not removed and "foregroundDeletion" in obj["metadata"]["finalizers"]
    assert cluster.get("apps", "deployments", "fg") is not None
    cluster.manager.start()
    cluster.idle()
    assert cluster.get("apps", "deployments", "fg") is None
    assert list(cluster.store.iter(("apps", "replicasets"), NS)) == []
    assert cluster.pods(app="fg") == []


def test_gc_orphan(cluster: Cluster) -> None:
    cluster.create(
        "apps",
        "replicasets",
        {
            "metadata": {"name": "orph"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "orph"}},
                "template": {"metadata": {"labels": {"app": "orph"}}, "spec": {"containers": [_container()]}},
            },
        },
    )
    cluster.idle()
    cluster.store.delete(cluster.rtype("apps", "replicasets"), NS, "orph", propagation="Orphan")
    cluster.idle()
    pods = cluster.pods(app="orph")
    assert len(pods) == 2 and all(not p["metadata"].get("ownerReferences") for p in pods)


def test_gc_dangling_owner(cluster: Cluster) -> None:
    cluster.create(
        "",
        "configmaps",
        {
            "metadata": {
                "name": "dep",
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": str(uuid.uuid4())}
                ],
            }
        },
    )
    cluster.idle()
    assert cluster.get("", "configmaps", "dep") is None


# ------------------------------------------------------------------------------------------------ namespace
def test_namespace_defaults_and_cascade(cluster: Cluster) -> None:
    assert cluster.get("", "serviceaccounts", "default") is not None
    ca = cluster.get("", "configmaps", "kube-root-ca.crt")
    assert ca is not None and ca["data"] == {"ca.crt": ""}
    cluster.store.delete(cluster.rtype("", "serviceaccounts"), NS, "default")
    cluster.idle()
    assert cluster.get("", "serviceaccounts", "default") is not None, "recreated"
    cluster.create("batch", "jobs", _job("j"))
    cluster.create(
        "", "services", {"metadata": {"name": "s"}, "spec": {"selector": {"a": "b"}, "ports": [{"port": 80}]}}
    )
    cluster.idle()
    assert cluster.pods()
    nstype = cluster.rtype("", "namespaces")
    _, removed = cluster.store.delete(nstype, "", NS, graceful=True, grace_period_s=0)
    assert not removed
    cluster.idle()
    assert cluster.get("", "namespaces", NS, ns="") is None
    for rtype in cluster.store.registry.types():
        if rtype.namespaced:
            assert cluster.store.count(rtype.key, NS) == 0, rtype.plural


def test_manager_survives_reconcile_errors(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    job_controller = cluster.manager.controllers["job"]
    calls: list[str] = []
    original = job_controller.reconcile

    def boom(namespace: str, name: str) -> float | None:
        calls.append(name)
        if len(calls) == 1:
            raise RuntimeError("injected")
        return original(namespace, name)

    monkeypatch.setattr(job_controller, "reconcile", boom)
    cluster.create("batch", "jobs", _job("flaky"))
    cluster.idle()
    import time

    deadline = time.monotonic() + 5
    while len(cluster.pods()) != 1 and time.monotonic() < deadline:
        cluster.manager.wait_idle(1)
        time.sleep(0.05)
    assert len(cluster.pods()) == 1, "retried after the failure"
    assert "injected" in caplog.text


def test_graceful_pod_deletes_wait_for_kubelet() -> None:
    """With graceful pod deletion (a kubelet finishes it), terminal Job conditions wait for the pods to go."""
    c = Cluster()
    c.manager = ControllerManager(
        c.store, c.ctx, job_backoff_s=0.0, resync_s=0, graceful_delete=lambda rtype, obj, grace: rtype.kind == "Pod"
    )
    c.manager.start()
    try:
        c.create("", "namespaces", {"metadata": {"name": NS}}, ns="")
        c.create("batch", "jobs", _job("g", parallelism=2, completions=2, backoffLimit=0))
        c.idle()
        first, second = c.pods()
        c.set_pod(first, "Failed", exit_code=1)
        c.idle()
        job = c.get("batch", "jobs", "g")
        assert condition(job, "FailureTarget")["status"] == "True"
        assert condition(job, "Failed") is None
        assert job["status"]["terminating"] == 1
        assert c.get("", "pods", second["metadata"]["name"])["metadata"]["deletionTimestamp"]
        c.store.finish_delete(c.rtype("", "pods"), NS, second["metadata"]["name"])  # the kubelet is done
        c.idle()
        job = c.get("batch", "jobs", "g")
        assert condition(job, "Failed")["reason"] == "BackoffLimitExceeded"
        assert job["status"]["terminating"] == 0
    finally:
        c.manager.stop()


def test_many_pods_settle_quickly(cluster: Cluster) -> None:
    import time

    start = time.monotonic()
    cluster.create("batch", "jobs", _job("big", completions=300, parallelism=100))
    cluster.idle()
    for _ in range(5):
        active = [p for p in cluster.pods() if p["status"]["phase"] == "Pending"]
        if not active:
            break
        for pod in active:
            cluster.set_pod(pod, "Succeeded", exit_code=0)
        cluster.idle()
    assert cluster.get("batch", "jobs", "big")["status"]["succeeded"] == 300
    assert time.monotonic() - start < 20
