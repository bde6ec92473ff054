"""kube's back-off for controllers that replace failed pods (controllers/ratelimit.py): the ReplicaSet's rate
limiter and slow-start batches, the DaemonSet's failedPodsBackoff; driven with a fake clock, no sleeping."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest

from harness.embedded.admission import AdmissionContext, admit
from harness.embedded.controllers.base import ControllerContext
from harness.embedded.controllers.daemonset import DaemonSetController
from harness.embedded.controllers.ratelimit import (
    Backoff,
    ControllerRateLimiter,
    ItemExponentialRateLimiter,
    TokenBucket,
    slow_start_batch,
)
from harness.embedded.controllers.replicaset import ReplicaSetController
from harness.embedded.resources import Registry
from harness.embedded.store import Store

NS = "t"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------------------------------------ primitives
def test_item_back_off_doubles_from_5ms_to_1000s_and_forgets() -> None:
    limiter = ItemExponentialRateLimiter()
    delays = [limiter.when("a") for _ in range(20)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert delays[-1] == 1000.0 and max(delays) == 1000.0
    assert limiter.when("b") == 0.005  # per item
    limiter.forget("a")
    assert limiter.when("a") == 0.005


def test_token_bucket_allows_a_burst_of_100_then_10_per_second() -> None:
    clock = FakeClock()
    bucket = TokenBucket(clock=clock)
    assert all(bucket.reserve() == 0.0 for _ in range(100))
    assert bucket.reserve() == pytest.approx(0.1)
    assert bucket.reserve() == pytest.approx(0.2)
    clock.now += 10.0
    assert bucket.reserve() == 0.0


def test_controller_limiter_is_the_larger_of_both() -> None:
    clock = FakeClock()
    limiter = ControllerRateLimiter(clock)
    for i in range(100):
        limiter.when(f"item-{i}")  # drain the bucket with fresh items (5 ms each)
    assert limiter.when("next") == pytest.approx(0.1)  # the bucket, not the item's 5 ms, decides


def test_failed_pods_backoff_schedule() -> None:
    backoff = Backoff()
    now = 0.0
    assert not backoff.in_backoff_since_update("k", now)
    backoff.next("k", now)
    assert backoff.get("k") == 1.0 and backoff.in_backoff_since_update("k", 0.5)
    assert not backoff.in_backoff_since_update("k", 1.01)
    steps = []
    for _ in range(12):
        backoff.next("k", now)
        steps.append(backoff.get("k"))
    assert steps[:3] == [2.0, 4.0, 8.0] and steps[-1] == 900.0  # 15 min cap
    backoff.next("k", now + 2 * 900 + 1)  # idle for twice the maximum: starts over
    assert backoff.get("k") == 1.0
    backoff.gc(now + 10_000)
    assert backoff.get("k") == 0.0


def test_slow_start_batches_stop_at_the_first_refusal() -> None:
    calls = itertools.count()
    assert slow_start_batch(10, lambda: next(calls)) == list(range(10))  # batches 1, 2, 4, 3
    answers = iter([1, 2, None, 4, 5, 6, 7])
    assert slow_start_batch(10, lambda: next(answers)) == [1, 2]  # batch [1], then [2, None]: stop
    assert next(answers) == 4  # the batch after the refusal never ran


# ------------------------------------------------------------------------------------------------ controllers
class Env:
    def __init__(self) -> None:
        self.store = Store(Registry.with_builtins())
        ips = itertools.count(10)
        self.admission = AdmissionContext(
            allocate_cluster_ip=lambda: f"10.96.0.{next(ips)}",
            allocate_node_port=lambda: 30000,
            default_storage_class=lambda: "local-path",
        )
        self.ctx = ControllerContext(store=self.store, admission=self.admission)
        self.create("", "namespaces", {"metadata": {"name": NS}}, ns="")

    def create(self, group: str, plural: str, obj: dict[str, Any], ns: str = NS) -> dict[str, Any]:
        rtype = self.store.registry.get(group, plural)
        uid = str(uuid.uuid4())
        return self.store.create(
            rtype, ns, admit(rtype, obj, namespace=ns, ctx=self.admission, uid=uid, creating=True), uid=uid
        )

    def pods(self) -> list[dict[str, Any]]:
        return list(self.store.iter(("", "pods"), NS))

    def fail_live_pods(self) -> int:
        failed = 0
        for pod in self.pods():
            if (pod.get("status") or {}).get("phase") in ("Failed",) or pod["metadata"].get("deletionTimestamp"):
                continue

            def change(obj: dict[str, Any]) -> None:
                obj.setdefault("status", {})["phase"] = "Failed"
                obj["status"]["reason"] = "DeadlineExceeded"

            self.store.mutate(
                self.store.registry.get("", "pods"), NS, pod["metadata"]["name"], change, subresource="status"
            )
            failed += 1
        return failed

    def events(self, reason: str) -> list[dict[str, Any]]:
        return [e for e in self.store.iter(("", "events"), NS) if e["reason"] == reason]


TEMPLATE = {
    "metadata": {"labels": {"app": "x"}},
    "spec": {"containers": [{"name": "c", "image": "i", "command": ["false"]}]},
}


def test_replicaset_replaces_failed_pods_with_exponential_back_off() -> None:
    env, clock = Env(), FakeClock()
    rs = ReplicaSetController(env.ctx, clock=clock)
    env.create(
        "apps",
        "replicasets",
        {
            "metadata": {"name": "x"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "x"}}, "template": TEMPLATE},
        },
    )
    created_at: list[float] = []
    start = clock.now
    # 60 simulated seconds, reconciling every 1 ms: each pod fails as soon as it exists (the storm case)
    while clock.now - start < 60.0:
        before = len(env.pods())
        again = rs.reconcile(NS, "x")
        created_at.extend([clock.now] * (len(env.pods()) - before))
        env.fail_live_pods()
        clock.now += 0.001 if again is None else max(again, 0.001)
    gaps = [b - a for a, b in itertools.pairwise(created_at)]
    assert 12 <= len(created_at) <= 16, created_at  # 5 ms doubling: ~14 pods in a minute, not thousands
    assert all(later >= earlier for earlier, later in itertools.pairwise(gaps[1:]))  # the gaps only grow
    assert gaps[-1] >= 10.0


def test_replicaset_back_off_resets_once_healthy_and_scale_up_is_not_limited() -> None:
    env, clock = Env(), FakeClock()
    rs = ReplicaSetController(env.ctx, clock=clock)
    env.create(
        "apps",
        "replicasets",
        {
            "metadata": {"name": "x"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "x"}}, "template": TEMPLATE},
        },
    )
    rs.reconcile(NS, "x")
    assert len(env.pods()) == 3  # slow start 1 + 2, no failures: no limit
    for _ in range(5):
        env.fail_live_pods()
        rs.reconcile(NS, "x")
        clock.now += 0.0001  # inside every back-off step after the first
    assert len(env.pods()) == 6  # one replacement round, then the back-off holds

    def ready(obj: dict[str, Any]) -> None:
        obj["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}

    clock.now += 1.0
    rs.reconcile(NS, "x")
    for pod in env.pods():
        if (pod.get("status") or {}).get("phase") != "Failed":
            env.store.mutate(
                env.store.registry.get("", "pods"), NS, pod["metadata"]["name"], ready, subresource="status"
            )
    rs.reconcile(NS, "x")  # healthy: the limiter forgets the ReplicaSet
    env.fail_live_pods()
    before = len(env.pods())
    rs.reconcile(NS, "x")
    assert len(env.pods()) == before + 3  # replaced at once again


def test_replicaset_back_off_is_forgotten_with_its_replicaset() -> None:
    """A ReplicaSet deleted in a failure storm and created again under its name starts with no back-off (kube
    forgets the key when the object is gone): reconciling a name that is not stored reaches primary_gone."""
    env, clock = Env(), FakeClock()
    rs = ReplicaSetController(env.ctx, clock=clock)
    spec = {"replicas": 1, "selector": {"matchLabels": {"app": "x"}}, "template": TEMPLATE}
    env.create("apps", "replicasets", {"metadata": {"name": "x"}, "spec": spec})
    start = clock.now
    while clock.now - start < 30.0:  # the storm: the back-off grows past a second
        rs.reconcile(NS, "x")
        env.fail_live_pods()
        clock.now += 0.001
    rs.reconcile(NS, "x")
    held = len(env.pods())
    assert rs.reconcile(NS, "x") is not None and len(env.pods()) == held, "the storm left no back-off to forget"
    env.store.delete(env.store.registry.get("apps", "replicasets"), NS, "x")
    assert rs.reconcile(NS, "x") is None  # gone: the back-off goes with it
    env.create("apps", "replicasets", {"metadata": {"name": "x"}, "spec": spec})
    rs.reconcile(NS, "x")  # the new ReplicaSet (new uid) owns no pod yet: one is created
    env.fail_live_pods()
    before = len(env.pods())
    rs.reconcile(NS, "x")
    assert len(env.pods()) == before + 1, "the replacement waited on the deleted ReplicaSet's back-off"


def test_daemonset_failed_pods_backoff() -> None:
    env, clock = Env(), FakeClock()
    env.create("", "nodes", {"metadata": {"name": "n1"}, "spec": {}}, ns="")
    ds = DaemonSetController(env.ctx, clock=clock)
    env.create(
        "apps",
        "daemonsets",
        {"metadata": {"name": "agent"}, "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": TEMPLATE}},
    )
    created_at: list[float] = []
    seen: set[str] = set()
    start = clock.now
    while clock.now - start < 60.0:
        again = ds.reconcile(NS, "agent")
        for pod in env.pods():
            if pod["metadata"]["uid"] not in seen:
                seen.add(pod["metadata"]["uid"])
                created_at.append(clock.now - start)
        env.fail_live_pods()
        clock.now += 0.01 if again is None else again
    # kube: 1 s doubling; the failed pod is deleted at 0, 1, 3, 7, 15, 31 s (+ reconcile steps), each replaced
    assert 6 <= len(created_at) <= 8, created_at
    assert created_at[-1] > 30.0
    assert len(env.events("FailedDaemonPod")) == len(created_at) - 1
    assert "will try to kill it" in env.events("FailedDaemonPod")[0]["message"]
