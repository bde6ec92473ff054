"""Placement decisions and FailedScheduling messages of the embedded scheduler, rule by rule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pytest

from harness.embedded.scheduler import (
    NO_NODES_MESSAGE,
    REASON_EXISTING_ANTI_AFFINITY,
    REASON_NODE_AFFINITY,
    REASON_POD_AFFINITY,
    REASON_POD_ANTI_AFFINITY,
    REASON_SPREAD,
    REASON_SPREAD_MISSING_LABEL,
    REASON_TOO_MANY_PODS,
    REASON_UNSCHEDULABLE,
    SCHEDULING_GATED_MESSAGE,
    Decision,
    NodeUsage,
    pod_requests,
    schedule,
)

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def node(
    name: str,
    *,
    cpu: str = "8",
    memory: str = "32Gi",
    pods: str = "110",
    extra: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    taints: Sequence[Mapping[str, str]] = (),
    unschedulable: bool = False,
    ready: str | None = "True",
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": list(taints)},
        "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}},
    }
    if unschedulable:
        obj["spec"]["unschedulable"] = True
    if ready is not None:
        obj["status"]["conditions"] = [{"type": "Ready", "status": ready}]
    return obj


def pod(
    name: str,
    *,
    namespace: str = "default",
    labels: Mapping[str, str] | None = None,
    requests: Mapping[str, str] | None = None,
    limits: Mapping[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if requests:
        resources["requests"] = dict(requests)
    if limits:
        resources["limits"] = dict(limits)
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{namespace}-{name}",
            "labels": dict(labels or {}),
        },
        "spec": {"containers": [{"name": "main", "resources": resources}], **spec},
        "status": {"phase": "Pending"},
    }


def message(total: int, reasons: str, preemption: str) -> str:
    return f"0/{total} nodes are available: {reasons}. preemption: 0/{total} nodes are available: {preemption}."


class Cluster:
    """Binds pods one by one the way the embedded control plane will: running sums plus a pods-by-node index."""

    def __init__(self, nodes: Sequence[dict[str, Any]]) -> None:
        self.nodes = list(nodes)
        self.pods_by_node: dict[str, list[dict[str, Any]]] = {n["metadata"]["name"]: [] for n in nodes}
        self.usage = NodeUsage()

    def bind(self, p: dict[str, Any], node_name: str) -> None:
        p["spec"]["nodeName"] = node_name
        p["status"]["phase"] = "Running"
        self.pods_by_node[node_name].append(p)
        self.usage.add(node_name, p)

    def place(self, p: dict[str, Any]) -> Decision:
        decision = schedule(p, self.nodes, self.pods_by_node, usage=self.usage)
        # The incremental path must agree with a from-scratch computation over the same pods.
        assert decision == schedule(p, self.nodes, self.pods_by_node)
        if decision.node_name is not None:
            self.bind(p, decision.node_name)
        return decision

    def where(self) -> dict[str, list[str]]:
        return {n: [p["metadata"]["name"] for p in ps] for n, ps in self.pods_by_node.items()}


# ------------------------------------------------------------------------------------------------- pod_requests


def test_pod_requests_sums_containers_uses_limits_as_requests_and_adds_overhead() -> None:
    p = pod("p", requests={"cpu": "250m"}, limits={"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "2"})
    p["spec"]["containers"].append({"name": "side", "resources": {"requests": {"cpu": "0.5", "memory": "512Mi"}}})
    p["spec"]["overhead"] = {"cpu": "100m"}
    assert pod_requests(p) == {
        "cpu": Decimal(85) / 100,
        "memory": Decimal(3 * 2**29),
        "nvidia.com/gpu": Decimal(2),
    }


def test_pod_requests_takes_max_of_init_containers_and_counts_sidecars() -> None:
    p = pod("p", requests={"cpu": "1", "memory": "1Gi"})
    p["spec"]["initContainers"] = [
        {"name": "big-init", "resources": {"requests": {"cpu": "3"}}},
        {"name": "sidecar", "restartPolicy": "Always", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
        {"name": "late-init", "resources": {"requests": {"memory": "3Gi"}}},
    ]
    # cpu: max(1 + 0.5 sidecar, 3 for big-init) = 3; memory: max(1Gi + 1Gi, 3Gi + 1Gi sidecar already running) = 4Gi
    assert pod_requests(p) == {"cpu": Decimal(3), "memory": Decimal(4 * 2**30)}


def test_pod_requests_sum_exactly() -> None:
    """Sums keep every digit: 1000E + 1n needs 31, the default Decimal context keeps 28 (and would drop the 1n)."""
    p = pod("p", requests={"example.com/thing": "1000E"})
    p["spec"]["containers"].append({"name": "side", "resources": {"requests": {"example.com/thing": "1n"}}})
    total = pod_requests(p)["example.com/thing"]
    assert total - Decimal(10**21) == Decimal("1e-9")  # exact in the default context: the difference is small
    assert str(total) == "1000000000000000000000.000000001"


def test_pod_requests_rejects_bad_quantity_and_drops_zero() -> None:
    assert pod_requests(pod("p", requests={"cpu": "0", "memory": "10Mi"})) == {"memory": Decimal(10 * 2**20)}
    with pytest.raises(ValueError):
        pod_requests(pod("p", requests={"cpu": "lots"}))


# --------------------------------------------------------------------------------------------------- trivial paths


def test_spec_node_name_binds_without_filtering() -> None:
    d = schedule(pod("p", nodeName="cordoned"), [node("cordoned", unschedulable=True)], {})
    assert d == Decision(node_name="cordoned", message="Successfully assigned default/p to cordoned", reasons={})


def test_no_nodes_and_scheduling_gates() -> None:
    assert schedule(pod("p"), [], {}).message == NO_NODES_MESSAGE
    gated = schedule(pod("p", schedulingGates=[{"name": "example.com/wait"}]), [node("n")], {})
    assert gated.node_name is None
    assert gated.message == SCHEDULING_GATED_MESSAGE


# --------------------------------------------------------------------------------------------------------- filters


def test_unschedulable_node_unless_tolerated() -> None:
    nodes = [node("n1", unschedulable=True)]
    d = schedule(pod("p"), nodes, {})
    assert d.node_name is None
    assert d.message == message(1, "1 node(s) were unschedulable", f"1 {NOT_HELPFUL}")
    assert d.reasons == {REASON_UNSCHEDULABLE: 1}
    tolerant = pod("p", tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}])
    assert schedule(tolerant, nodes, {}).node_name == "n1"


def test_not_ready_and_unreachable_nodes_are_tainted() -> None:
    nodes = [node("a", ready="False"), node("b", ready="Unknown"), node("c", ready=None)]
    d = schedule(pod("p"), nodes[:2], {})
    assert d.message == message(
        2,
        "1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, "
        "1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }",
        f"2 {NOT_HELPFUL}",
    )
    # A node without any reported conditions (an emulated node) counts as Ready.
    assert schedule(pod("p"), nodes, {}).node_name == "c"


def test_insufficient_lists_every_short_resource_of_a_node() -> None:
    nodes = [node("small", cpu="1", memory="1Gi"), node("mid", cpu="4", memory="1Gi")]
    d = schedule(pod("p", requests={"cpu": "2", "memory": "2Gi"}), nodes, {})
    assert d.reasons == {"Insufficient cpu": 1, "Insufficient memory": 2}
    assert d.message == message(2, "1 Insufficient cpu, 2 Insufficient memory", f"2 {NO_VICTIMS}")


def test_existing_requests_count_but_terminal_pods_do_not() -> None:
    nodes = [node("n", cpu="2")]
    running = pod("old", requests={"cpu": "1500m"}, nodeName="n")
    running["status"]["phase"] = "Running"
    done = pod("done", requests={"cpu": "1500m"}, nodeName="n")
    done["status"]["phase"] = "Succeeded"
    incoming = pod("p", requests={"cpu": "1"})
    assert schedule(incoming, nodes, {"n": [done]}).node_name == "n"
    d = schedule(incoming, nodes, {"n": [running, done]})
    assert d.reasons == {"Insufficient cpu": 1}


def test_too_many_pods() -> None:
    nodes = [node("n", pods="2")]
    bound = [pod(f"b{i}", nodeName="n") for i in range(2)]
    d = schedule(pod("p"), nodes, {"n": bound})
    assert d.message == message(1, f"1 {REASON_TOO_MANY_PODS}", f"1 {NO_VICTIMS}")


def test_extended_resources_absent_from_allocatable_count_as_zero() -> None:
    nodes = [node("gpu", extra={"nvidia.com/gpu": "8", "hugepages-2Mi": "1Gi"})]
    d = schedule(pod("p", limits={"google.com/tpu": "4", "rdma/ib": "1", "hugepages-2Mi": "512Mi"}), nodes, {})
    assert d.message == message(1, "1 Insufficient google.com/tpu, 1 Insufficient rdma/ib", f"1 {NO_VICTIMS}")
    fits = pod("q", limits={"nvidia.com/gpu": "8", "hugepages-2Mi": "1Gi"})
    assert schedule(fits, nodes, {}).node_name == "gpu"


def test_gpu_pods_pack_two_per_eight_gpu_node_then_fail() -> None:
    cluster = Cluster([node("gpu-0", extra={"nvidia.com/gpu": "8"}), node("gpu-1", extra={"nvidia.com/gpu": "8"})])
    placed = [cluster.place(pod(f"train-{i}", limits={"nvidia.com/gpu": "4"})).node_name for i in range(4)]
    assert sorted(placed) == ["gpu-0", "gpu-0", "gpu-1", "gpu-1"]
    d = cluster.place(pod("train-4", limits={"nvidia.com/gpu": "4"}))
    assert d.node_name is None
    assert d.message == message(2, "2 Insufficient nvidia.com/gpu", f"2 {NO_VICTIMS}")
    # A 1-GPU pod still fits nowhere, an 8-GPU pod neither; releasing a pod frees its GPUs for the next one.
    cluster.usage.remove(cluster.pods_by_node["gpu-1"].pop())
    assert cluster.place(pod("train-5", limits={"nvidia.com/gpu": "4"})).node_name == "gpu-1"


def test_tainted_gpu_pool_keeps_untolerating_pods_off() -> None:
    gpu = {"nvidia.com/gpu": "8"}
    nodes = [
        node("cpu-0"),
        node("gpu-0", extra=gpu, taints=[GPU_TAINT]),
        node("gpu-1", extra=gpu, taints=[GPU_TAINT]),
    ]
    cluster = Cluster(nodes)
    for i in range(3):
        assert cluster.place(pod(f"web-{i}", requests={"cpu": "100m"})).node_name == "cpu-0"
    d = cluster.place(pod("gpu-no-tol", limits={"nvidia.com/gpu": "1"}))
    assert d.message == message(
        3,
        "1 Insufficient nvidia.com/gpu, 2 node(s) had untolerated taint {nvidia.com/gpu: present}",
        f"1 {NO_VICTIMS}, 2 {NOT_HELPFUL}",
    )
    tolerant = cluster.place(pod("gpu-tol", limits={"nvidia.com/gpu": "1"}, tolerations=[GPU_TOLERATION]))
    assert tolerant.node_name == "gpu-0"


@pytest.mark.parametrize(
    ("toleration", "tolerated"),
    [
        ({"operator": "Exists"}, True),  # empty key + Exists tolerates everything
        ({"key": "dedicated", "operator": "Equal", "value": "ml"}, True),  # empty effect matches all effects
        ({"key": "dedicated", "value": "ml", "effect": "NoExecute"}, True),  # operator defaults to Equal
        ({"key": "dedicated", "operator": "Equal", "value": "web"}, False),
        ({"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}, False),
        ({"key": "other", "operator": "Exists"}, False),
    ],
)
def test_toleration_semantics(toleration: dict[str, str], tolerated: bool) -> None:
    nodes = [node("n", taints=[{"key": "dedicated", "value": "ml", "effect": "NoExecute"}])]
    d = schedule(pod("p", tolerations=[toleration]), nodes, {})
    assert (d.node_name == "n") is tolerated
    if not tolerated:
        assert d.reasons == {"node(s) had untolerated taint {dedicated: ml}": 1}


def test_prefer_no_schedule_only_scores() -> None:
    soft = {"key": "spot", "value": "true", "effect": "PreferNoSchedule"}
    nodes = [node("a-spot", taints=[soft]), node("b-regular", cpu="1")]
    # b-regular is busier by allocation, yet the untolerated PreferNoSchedule taint on a-spot weighs more.
    assert schedule(pod("p"), nodes, {}).node_name == "b-regular"
    tol = {"key": "spot", "operator": "Exists", "effect": "PreferNoSchedule"}
    assert schedule(pod("p", tolerations=[tol]), nodes, {}).node_name == "a-spot"
    # Only the spot node exists: it is still feasible.
    assert schedule(pod("p"), nodes[:1], {}).node_name == "a-spot"


def test_node_selector_and_required_node_affinity() -> None:
    nodes = [
        node("a", labels={"zone": "z1", "gpu-count": "8", "pool": "ml"}),
        node("b", labels={"zone": "z2", "gpu-count": "2"}),
        node("c", labels={"zone": "z3"}),
    ]

    def feasible(**spec: Any) -> list[str]:
        out = []
        for n in nodes:
            d = schedule(pod("p", **spec), [n], {})
            if d.node_name:
                out.append(d.node_name)
            else:
                assert d.message == message(1, f"1 {REASON_NODE_AFFINITY}", f"1 {NOT_HELPFUL}")
        return out

    def required(*terms: dict[str, Any]) -> dict[str, Any]:
        return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}}

    def expr(key: str, op: str, *values: str) -> dict[str, Any]:
        return {"matchExpressions": [{"key": key, "operator": op, "values": list(values)}]}

    assert feasible(nodeSelector={"zone": "z2"}) == ["b"]
    assert feasible(affinity=required(expr("zone", "In", "z1", "z3"))) == ["a", "c"]
    assert feasible(affinity=required(expr("zone", "NotIn", "z1"))) == ["b", "c"]
    assert feasible(affinity=required(expr("pool", "Exists"))) == ["a"]
    assert feasible(affinity=required(expr("pool", "DoesNotExist"))) == ["b", "c"]
    assert feasible(affinity=required(expr("gpu-count", "Gt", "4"))) == ["a"]
    assert feasible(affinity=required(expr("gpu-count", "Lt", "4"))) == ["b"]
    # Terms are ORed; expressions within a term are ANDed; matchFields selects by node name.
    two_exprs = {
        "matchExpressions": [
            *expr("zone", "In", "z1", "z2")["matchExpressions"],
            *expr("pool", "Exists")["matchExpressions"],
        ]
    }
    assert feasible(affinity=required(two_exprs)) == ["a"]
    by_name = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["c"]}]}
    assert feasible(affinity=required(expr("zone", "In", "z2"), by_name)) == ["b", "c"]
    # nodeSelector and affinity must both hold; an empty term matches nothing.
    assert feasible(nodeSelector={"zone": "z1"}, affinity=required(expr("zone", "In", "z2"))) == []
    assert feasible(affinity=required({})) == []


def test_each_node_counts_once_under_its_first_failing_filter() -> None:
    nodes = [
        node("cordoned-and-tainted", cpu="1", unschedulable=True, taints=[GPU_TAINT]),
        node("tainted-and-small", cpu="1", taints=[GPU_TAINT]),
        node("wrong-zone-and-small", cpu="1", labels={"zone": "b"}),
        node("small", cpu="1", memory="1Gi", labels={"zone": "a"}),
    ]
    d = schedule(pod("p", requests={"cpu": "2", "memory": "2Gi"}, nodeSelector={"zone": "a"}), nodes, {})
    assert d.reasons == {
        REASON_UNSCHEDULABLE: 1,
        "node(s) had untolerated taint {nvidia.com/gpu: present}": 1,
        REASON_NODE_AFFINITY: 1,
        "Insufficient cpu": 1,
        "Insufficient memory": 1,
    }
    assert d.message == message(
        4,
        "1 Insufficient cpu, 1 Insufficient memory, 1 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) had untolerated taint {nvidia.com/gpu: present}, 1 node(s) were unschedulable",
        f"1 {NO_VICTIMS}, 3 {NOT_HELPFUL}",
    )


def test_reasons_sort_as_strings_like_kube() -> None:
    nodes = [node(f"c{i:02}", unschedulable=True) for i in range(10)] + [node("t0", taints=[GPU_TAINT])] * 2
    d = schedule(pod("p"), nodes, {})
    # Go's sort.Strings on "<count> <reason>": "10 ..." sorts before "2 ...".
    assert d.message == message(
        12,
        "10 node(s) were unschedulable, 2 node(s) had untolerated taint {nvidia.com/gpu: present}",
        f"12 {NOT_HELPFUL}",
    )


def test_preemption_policy_never_message() -> None:
    d = schedule(pod("p", requests={"cpu": "64"}, preemptionPolicy="Never"), [node("n")], {})
    assert (
        d.message
        == "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
    )


# ----------------------------------------------------------------------------------------------- inter-pod rules


def anti_affinity(app: str, key: str = "kubernetes.io/hostname") -> dict[str, Any]:
    term = {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key}
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}


def affinity(app: str, key: str = "zone", **term_extra: Any) -> dict[str, Any]:
    term = {
        "labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": [app]}]},
        "topologyKey": key,
    }
    return {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{**term, **term_extra}]}}


def test_anti_affinity_spreads_replicas_one_per_node() -> None:
    cluster = Cluster([node(f"n{i}") for i in range(3)])
    placed = {
        cluster.place(pod(f"web-{i}", labels={"app": "web"}, affinity=anti_affinity("web"))).node_name for i in range(3)
    }
    assert placed == {"n0", "n1", "n2"}
    d = cluster.place(pod("web-3", labels={"app": "web"}, affinity=anti_affinity("web")))
    assert d.message == message(3, f"3 {REASON_POD_ANTI_AFFINITY}", f"3 {NO_VICTIMS}")
    # Other apps are unaffected.
    assert cluster.place(pod("db", labels={"app": "db"}, affinity=anti_affinity("db"))).node_name is not None


def test_existing_pods_anti_affinity_repels_incoming_pod() -> None:
    cluster = Cluster([node("n0"), node("n1", cpu="1")])
    cluster.bind(pod("loner", affinity=anti_affinity("noisy")), "n0")
    # n0 is emptier, but the bound pod refuses "noisy" pods next to it.
    assert cluster.place(pod("noisy-1", labels={"app": "noisy"})).node_name == "n1"
    cluster.nodes.pop()
    d = cluster.place(pod("noisy-2", labels={"app": "noisy"}))
    assert d.message == message(1, f"1 {REASON_EXISTING_ANTI_AFFINITY}", f"1 {NO_VICTIMS}")
    # The rule is namespaced to the bound pod's namespace.
    assert cluster.place(pod("noisy-3", namespace="other", labels={"app": "noisy"})).node_name == "n0"


def test_pod_affinity_follows_matching_pods_across_zone() -> None:
    nodes = [node("a1", labels={"zone": "a"}), node("a2", labels={"zone": "a"}), node("b1", labels={"zone": "b"})]
    cluster = Cluster(nodes)
    cluster.bind(pod("cache", labels={"app": "cache"}), "a1")
    for i in range(3):
        assert cluster.place(pod(f"web-{i}", affinity=affinity("cache"))).node_name in {"a1", "a2"}
    lonely = cluster.place(pod("web-x", affinity=affinity("missing")))
    assert lonely.message == message(3, f"3 {REASON_POD_AFFINITY}", f"3 {NOT_HELPFUL}")
    # A node without the topology key never satisfies affinity.
    cluster.nodes.append(node("nolabel"))
    cluster.pods_by_node["nolabel"] = []
    assert cluster.place(pod("web-y", affinity=affinity("cache"))).node_name in {"a1", "a2"}


def test_first_pod_of_self_affine_group_is_allowed() -> None:
    nodes = [node("a1", labels={"zone": "a"}), node("b1", labels={"zone": "b"})]
    cluster = Cluster(nodes)
    first = cluster.place(pod("ss-0", labels={"app": "ss"}, affinity=affinity("ss")))
    assert first.node_name == "a1"
    following = [cluster.place(pod(f"ss-{i}", labels={"app": "ss"}, affinity=affinity("ss"))).node_name for i in (1, 2)]
    assert following == ["a1", "a1"]


def test_affinity_namespaces_and_namespace_selector() -> None:
    nodes = [node("a1", labels={"zone": "a"}), node("b1", labels={"zone": "b"})]
    cache = pod("cache", namespace="infra", labels={"app": "cache"})
    cache["spec"]["nodeName"] = "b1"
    by_node = {"a1": [], "b1": [cache]}
    # Default: only the incoming pod's namespace counts -> no match -> unschedulable.
    assert schedule(pod("w", affinity=affinity("cache")), nodes, by_node).reasons == {REASON_POD_AFFINITY: 2}
    assert schedule(pod("w", affinity=affinity("cache", namespaces=["infra"])), nodes, by_node).node_name == "b1"
    everywhere = affinity("cache", namespaceSelector={})
    assert schedule(pod("w", affinity=everywhere), nodes, by_node).node_name == "b1"
    labelled = affinity("cache", namespaceSelector={"matchLabels": {"team": "platform"}})
    assert schedule(pod("w", affinity=labelled), nodes, by_node).node_name is None
    ns_labels = {"infra": {"team": "platform"}}
    assert schedule(pod("w", affinity=labelled), nodes, by_node, namespace_labels=ns_labels).node_name == "b1"


def spread(key: str, app: str, when: str = "DoNotSchedule", max_skew: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "maxSkew": max_skew,
        "topologyKey": key,
        "whenUnsatisfiable": when,
        "labelSelector": {"matchLabels": {"app": app}},
        **extra,
    }


def test_topology_spread_balances_zones() -> None:
    nodes = [node(f"{z}{i}", labels={"zone": z}) for z in "abc" for i in range(2)]
    cluster = Cluster(nodes)
    for i in range(9):
        cluster.place(pod(f"w{i}", labels={"app": "w"}, topologySpreadConstraints=[spread("zone", "w")]))
    per_zone = {z: sum(len(cluster.pods_by_node[f"{z}{i}"]) for i in range(2)) for z in "abc"}
    assert per_zone == {"a": 3, "b": 3, "c": 3}


def test_topology_spread_refuses_skew_and_missing_label() -> None:
    nodes = [node("a1", labels={"zone": "a"}), node("b1", cpu="1", labels={"zone": "b"}), node("x")]
    bound = pod("w0", labels={"app": "w"})
    by_node: dict[str, list[dict[str, Any]]] = {"a1": [bound], "b1": [], "x": []}
    d = schedule(
        pod("w1", labels={"app": "w"}, requests={"cpu": "2"}, topologySpreadConstraints=[spread("zone", "w")]),
        nodes,
        by_node,
    )
    assert d.reasons == {REASON_SPREAD: 1, "Insufficient cpu": 1, REASON_SPREAD_MISSING_LABEL: 1}
    assert d.message == message(
        3,
        "1 Insufficient cpu, 1 node(s) didn't match pod topology spread constraints, "
        "1 node(s) didn't match pod topology spread constraints (missing required label)",
        f"1 {NOT_HELPFUL}, 2 {NO_VICTIMS}",
    )
    # maxSkew 2 admits a second pod in zone a; pods of other apps or namespaces are not counted.
    relaxed = pod(
        "w1", labels={"app": "w"}, requests={"cpu": "2"}, topologySpreadConstraints=[spread("zone", "w", max_skew=2)]
    )
    assert schedule(relaxed, nodes, by_node).node_name == "a1"
    other_ns = pod(
        "w2",
        namespace="ns2",
        labels={"app": "w"},
        requests={"cpu": "2"},
        topologySpreadConstraints=[spread("zone", "w")],
    )
    assert schedule(other_ns, nodes, by_node).node_name == "a1"


def test_topology_spread_min_domains_forces_new_domain() -> None:
    nodes = [node("a1", labels={"zone": "a"}), node("a2", labels={"zone": "a"})]
    by_node: dict[str, list[dict[str, Any]]] = {"a1": [pod("w0", labels={"app": "w"})], "a2": []}
    constraint = spread("zone", "w", minDomains=2)
    d = schedule(pod("w1", labels={"app": "w"}, topologySpreadConstraints=[constraint]), nodes, by_node)
    assert d.reasons == {REASON_SPREAD: 2}


# --------------------------------------------------------------------------------------------------------- scoring


def test_preferred_node_affinity_beats_least_allocated() -> None:
    nodes = [node("big"), node("small", cpu="1", labels={"disk": "ssd"})]
    pref = {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 10,
                    "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]},
                }
            ]
        }
    }
    assert schedule(pod("p"), nodes, {}).node_name == "big"
    assert schedule(pod("p", affinity=pref), nodes, {}).node_name == "small"


def test_preferred_pod_affinity_and_anti_affinity() -> None:
    nodes = [node("n0"), node("n1", cpu="2")]
    cache = pod("cache", labels={"app": "cache"})
    by_node: dict[str, list[dict[str, Any]]] = {"n0": [], "n1": [cache]}
    term = {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "kubernetes.io/hostname"}
    near = {
        "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "podAffinityTerm": term}]}
    }
    far = {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "podAffinityTerm": term}]
        }
    }
    assert schedule(pod("p", affinity=near), nodes, by_node).node_name == "n1"
    assert schedule(pod("p", affinity=far), nodes, by_node).node_name == "n0"


def test_schedule_anyway_spread_prefers_emptier_domain_but_never_blocks() -> None:
    nodes = [node("a1", labels={"zone": "a"}), node("b1", cpu="1", labels={"zone": "b"})]
    by_node: dict[str, list[dict[str, Any]]] = {"a1": [], "b1": [pod("w0", labels={"app": "w"})]}
    soft = [spread("zone", "w", when="ScheduleAnyway")]
    assert schedule(pod("w1", labels={"app": "w"}, topologySpreadConstraints=soft), nodes, by_node).node_name == "a1"
    by_node = {"a1": [pod(f"x{i}", labels={"app": "w"}) for i in range(5)], "b1": []}
    assert schedule(pod("w1", labels={"app": "w"}, topologySpreadConstraints=soft), nodes, by_node).node_name == "b1"
    assert (
        schedule(pod("w1", labels={"app": "w"}, topologySpreadConstraints=soft), nodes[:1], by_node).node_name == "a1"
    )


def test_least_allocated_then_name_breaks_ties() -> None:
    nodes = [node("b"), node("a"), node("c", cpu="16", memory="64Gi")]
    assert schedule(pod("p", requests={"cpu": "1"}), nodes, {}).node_name == "c"
    assert schedule(pod("p"), nodes[:2], {}).node_name == "a"
    # Best-effort pods still spread: kube's non-zero defaults (100m, 200Mi) count for scoring.
    cluster = Cluster(nodes[:2])
    assert [cluster.place(pod(f"be{i}")).node_name for i in range(4)] == ["a", "b", "a", "b"]


# ------------------------------------------------------------------------------------------------- usage and scale


def test_node_usage_add_remove_is_exact_and_idempotent() -> None:
    usage = NodeUsage()
    p = pod("p", requests={"cpu": "250m", "memory": "1Gi"}, limits={"nvidia.com/gpu": "1"})
    usage.add("n", p)
    usage.add("n", p)
    assert usage.requested("n") == {"cpu": Decimal(1) / 4, "memory": Decimal(2**30), "nvidia.com/gpu": Decimal(1)}
    assert usage.pod_count("n") == 1
    usage.add("m", p)  # re-binding moves the contribution
    assert usage.requested("n") == {}
    p["spec"]["containers"][0]["resources"] = {}  # later edits do not change what gets subtracted
    usage.remove(p)
    usage.remove(p)
    assert usage.requested("m") == {}
    assert usage.pod_count("m") == 0


def test_node_facts_cache_sees_node_updates() -> None:
    usage = NodeUsage()
    n = node("n")
    n["metadata"]["resourceVersion"] = "1"
    assert schedule(pod("p"), [n], {}, usage=usage).node_name == "n"
    cordoned = {**n, "metadata": {**n["metadata"], "resourceVersion": "2"}, "spec": {"unschedulable": True}}
    assert schedule(pod("p"), [cordoned], {}, usage=usage).reasons == {REASON_UNSCHEDULABLE: 1}


def test_scheduling_2000_pods_over_200_nodes_incrementally() -> None:
    nodes = [
        node(f"n{i:03}", cpu="16", memory="64Gi", extra={"nvidia.com/gpu": "8"}, labels={"zone": f"z{i % 4}"})
        for i in range(200)
    ]
    by_node: dict[str, list[dict[str, Any]]] = {n["metadata"]["name"]: [] for n in nodes}
    usage = NodeUsage()
    for i in range(2000):
        p = pod(f"p{i}", requests={"cpu": "1", "memory": "2Gi"}, limits={"nvidia.com/gpu": "1"} if i % 5 == 0 else None)
        d = schedule(p, nodes, by_node, usage=usage)
        assert d.node_name is not None
        by_node[d.node_name].append(p)
        usage.add(d.node_name, p)
    counts = sorted(len(ps) for ps in by_node.values())
    assert counts[0] == counts[-1] == 10  # least-allocated spreads identical pods evenly
    assert sum(usage.requested(n)["cpu"] for n in by_node) == 2000
    # Every node now holds 10 CPUs of 16: a 7-CPU pod fits nowhere.
    d = schedule(pod("big", requests={"cpu": "7"}), nodes, by_node, usage=usage)
    assert d.message == message(200, "200 Insufficient cpu", f"200 {NO_VICTIMS}")
