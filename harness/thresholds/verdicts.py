"""Verdict rules: judgements that are not one number against a bar, made Checks like every other (DESIGN.md s. 6).

"No element was wrong", "NCCL used RDMA between nodes", "the storage classes form tiers", "the denied phase did not
connect", "the gang landed whole in one domain": each is a :class:`~harness.thresholds.model.Threshold` whose
:attr:`~harness.thresholds.model.RuleKind.is_verdict` kind names a function here. The function reads only
measurements (the evidence a suite records anyway), so a verdict can be re-judged from a run record and its Check
is recorded, rendered (JUnit properties, report, scorecard) and asserted with :func:`assert_passed` like a bar's.

Why a rule has a built-in default (:data:`DEFAULT_RULES`) rather than living only in profiles: a profile that
forgot it would silently stop checking for data corruption. A profile may still *tune* a verdict rule by giving a
threshold with the same rule kind under the same workload (severity, hint, source, the tier factor): the profile's
rule then replaces the default. :func:`evaluate` leaves verdict rules out; a suite judges them with :func:`judge`
where its evidence is complete (after every probe phase, after every storage class).

Evidence each kind reads (metric, labels):

- ``no-corruption``: ``wrong{size, placement}`` (nccl-tests' ``#wrong``, or the CPU collective's exact-sum count)
  and ``oob_values`` (the footer's out-of-bounds count, summed over processes);
- ``rdma-transport``: ``transport{transport, scope, rdma}``, one per transport NCCL_DEBUG=INFO named; ``scope`` is
  ``intra-node``/``inter-node``, ``rdma`` is ``true`` when the nodes offer RDMA resources;
- ``faster-tier-faster``: ``tier_seqread_bw{storage_class}`` and ``tier_randread_iops{storage_class}``;
- ``traffic-denied``: ``reachable{phase, expected[, detail, cni]}`` in probe order (value 1/0, ``expected`` 1/0),
  and ``policy_not_enforced{policy, message}`` for each Warning a policy agent recorded;
- ``gang-placed-whole``: ``gang_size`` (pods expected) and ``gang_pod{pod, node, domain, topology_key}`` (1 placed,
  0 not placed);
- ``split-within-binomial``: ``routed{subset, weight}``, the requests each subset answered and its configured weight
  (a subset that answered without a weight has weight 0);
- ``no-slow-node``: ``<metric>{group=a+b, attribution=single|pairs|reference[, reference]}``, one result per tested
  node or pair (:func:`harness.thresholds.attribution.group_measurements`); higher is better.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypedDict, Unpack

from harness.measurement import Measurement
from harness.parsers.nccl import Transport
from harness.statistics import DEFAULT_ALPHA, binomial_interval
from harness.thresholds.attribution import Mode, Verdict, attribute
from harness.thresholds.model import (
    Check,
    Checks,
    Profile,
    RuleKind,
    Status,
    Threshold,
    format_value,
)

__all__ = [
    "DEFAULT_RULES",
    "INTRA_NODE_TRANSPORTS",
    "RDMA_TRANSPORTS",
    "judge",
    "judge_threshold",
    "rule_for",
]

#: NCCL transport names (as :mod:`harness.parsers.nccl` spells them) that mean "the traffic between nodes went
#: through RDMA": InfiniBand or RoCE verbs, or AWS EFA through the aws-ofi-nccl plugin ("AWS Libfabric").
RDMA_TRANSPORTS: frozenset[str] = frozenset(
    {Transport.NET_IB, Transport.NET_IB_GDRDMA, Transport.NET_LIBFABRIC, Transport.NET_LIBFABRIC_GDRDMA}
)
_GDRDMA: frozenset[str] = frozenset({Transport.NET_IB_GDRDMA, Transport.NET_LIBFABRIC_GDRDMA})
#: Transports that stay inside one node.
INTRA_NODE_TRANSPORTS: frozenset[str] = frozenset(
    {Transport.NVLS, Transport.P2P_IPC, Transport.P2P_CUMEM, Transport.P2P_DIRECT, Transport.SHM}
)

_SOCKET_HINT = (
    "check the pods requested the rdma/*, SR-IOV or vpc.amazonaws.com/efa resource, IPC_LOCK and a large memlock "
    "limit, NCCL_IB_HCA names existing HCAs, NCCL_IB_GID_INDEX suits RoCE, and that no NCCL_IB_DISABLE=1 or "
    "NCCL_NET=Socket is set"
)


def _rule(workload: str, kind: RuleKind, rule_id: str, metric: str, source: str, **extra: Any) -> Threshold:
    return Threshold(id=rule_id, workload=workload, metric=metric, source=source, kind=kind, **extra)


_CORRUPTION_SOURCE = (
    "nccl-tests src/common.cu: the #wrong column counts elements that differ from the expected "
    "result and the footer's 'Out of bounds values' counts them over all processes; any is data corruption"
)

#: The built-in verdict rules, by (workload, kind). Sources name where the rule comes from (a project rule says so).
DEFAULT_RULES: Mapping[tuple[str, RuleKind], Threshold] = {
    (t.workload, t.kind): t
    for t in (
        _rule("nccl-allreduce", RuleKind.NO_CORRUPTION, "nccl-no-corruption", "wrong", _CORRUPTION_SOURCE),
        _rule(
            "collective-allreduce",
            RuleKind.NO_CORRUPTION,
            "collective-no-corruption",
            "wrong",
            "project rule (workloads/collective-allreduce): integer sums in float32 are exact, so any element "
            "that differs from the expected sum is corruption on the pod network path",
        ),
        _rule(
            "nccl-allreduce",
            RuleKind.RDMA_TRANSPORT,
            "nccl-rdma-transport",
            "transport",
            "NCCL environment variables documentation (NCCL_DEBUG=INFO names the transport: NET/IB, NET/Socket); "
            "project rule: NET/Socket between nodes that have RDMA resources is the silent fallback that costs an "
            "order of magnitude",
            hint=_SOCKET_HINT,
        ),
        _rule(
            "fio",
            RuleKind.FASTER_TIER,
            "storage-tiers-differ",
            "tier_seqread_bw",
            "project rule (storage tiering practice): a tier must beat the next by 1.5x on 1 MiB sequential read "
            "or 4 KiB random-read IOPS; below that, cloud-disk run-to-run noise (10-20%) could order equal classes",
            value=1.5,
            hint="add a faster class for model caches (local NVMe) or a capacity class for datasets",
        ),
        _rule(
            "net-reach",
            RuleKind.TRAFFIC_DENIED,
            "netpolicy-traffic-denied",
            "reachable",
            "Kubernetes documentation, Network Policies: 'Default deny all ingress traffic' and ingress rules "
            "(pods are isolated for ingress once a policy selects them; only allowed traffic gets in)",
        ),
        *(
            _rule(
                workload,
                RuleKind.WEIGHTED_SPLIT,
                f"{workload}-split",
                "routed",
                "project rule (harness.statistics, binomial acceptance): each request lands on a subset "
                "independently with its configured share, so the count is Binomial(N, share); the exact central "
                "interval at alpha 1e-3 fails a correct router 1 time in 1000 whatever N",
                value=1e-3,
                hint="check the route's weights as applied (VirtualService / HTTPRoute status) and that every "
                "backend is Ready: a subset with no ready endpoint gets no share",
            )
            for workload in ("inference-route-istio", "inference-route-gateway")
        ),
        *(
            _rule(
                workload,
                RuleKind.NO_SLOW_NODE,
                rule_id,
                metric,
                "gcm check-nccl pairwise and Azure NHC per-node checks (test nodes alone, in pairs or against a "
                "reference); SuperBench variance rules: a node below the median of its peers - 10% is an outlier",
                value=0.1,
                hint=hint,
            )
            for workload, rule_id, metric, hint in (
                (
                    "nccl-allreduce",
                    "nccl-no-slow-node",
                    "busbw",
                    "a slow node: check NVLink/NVSwitch health (nvidia-smi nvlink -s), GPU clocks, and its NICs",
                ),
                (
                    "perftest-ib",
                    "perftest-no-slow-node",
                    "ib_write_bw",
                    "a slow node: check the HCA's link rate and width (ibstat), PCIe width, and the cable",
                ),
            )
        ),
        _rule(
            "net-gang",
            RuleKind.GANG_WHOLE,
            "gang-one-domain",
            "gang_pod",
            "Kubernetes documentation, Assigning Pods to Nodes: requiredDuringSchedulingIgnoredDuringExecution pod "
            "affinity with a topologyKey keeps every pod of the gang in one domain of that key",
        ),
    )
}


def rule_for(profile: Profile | None, workload: str, kind: RuleKind) -> Threshold:
    """The profile's rule of ``kind`` for ``workload`` when it tunes one, else the built-in default.

    Raises KeyError when neither exists: asking for a verdict nobody defined is a programming error.
    """
    if profile is not None:
        for threshold in profile.thresholds_for(workload):
            if threshold.kind is kind:
                return threshold
    return DEFAULT_RULES[(workload, kind)]


def judge(profile: Profile | None, workload: str, kind: RuleKind, measurements: Iterable[Measurement]) -> Checks:
    """The Checks of the ``kind`` verdict rule for ``workload`` (see :func:`rule_for`) on ``measurements``."""
    measured = list(measurements)
    return Checks(judge_threshold(rule_for(profile, workload, kind), measured), measured=len(measured))


def judge_threshold(threshold: Threshold, measurements: Sequence[Measurement]) -> list[Check]:
    """The Checks of one verdict rule; raises ValueError for a numeric rule kind (those belong to evaluate)."""
    function = _JUDGES.get(threshold.kind)
    if function is None:
        raise ValueError(f"threshold {threshold.id}: {threshold.kind} is not a verdict rule")
    return function(threshold, [m for m in measurements if threshold.labels.matches(m.labels)])


# --- the verdict functions ----------------------------------------------------------------------------------------


class _Reading(TypedDict, total=False):
    """What a verdict says beyond its status: the observed value, its unit, the bar it was held to (the
    threshold's own value when absent) and the labels of the series it is about."""

    observed: float | None
    unit: str | None
    bar: float | None
    labels: Mapping[str, str] | None


def _verdict(
    threshold: Threshold, holds: bool, detail: str, evidence: Sequence[Measurement], **reading: Unpack[_Reading]
) -> Check:
    return _make(threshold, threshold.status_for(holds), detail, evidence, **reading)


def _no_data(threshold: Threshold, detail: str) -> Check:
    return _make(threshold, Status.NO_DATA, detail, ())


def _make(
    threshold: Threshold, status: Status, detail: str, evidence: Sequence[Measurement], **reading: Unpack[_Reading]
) -> Check:
    bar = reading.get("bar")
    return threshold.check(
        status=status,
        observed=reading.get("observed"),
        unit=reading.get("unit"),
        bar=bar if bar is not None else threshold.value,
        labels=reading.get("labels") or {},
        matched=len(evidence),
        emulated=any(m.emulated for m in evidence),
        detail=detail,
    )


def _of(measurements: Sequence[Measurement], metric: str) -> list[Measurement]:
    return [m for m in measurements if m.metric == metric]


def _no_corruption(threshold: Threshold, measurements: Sequence[Measurement]) -> list[Check]:
    """Every ``wrong`` is 0 and no ``oob_values`` is counted. Neither present: no-data (a log before ~2021 has an
    ``error`` column, not ``#wrong``; a cut log has neither), since an unjudged run must not read as exact."""
    wrong, oob = _of(measurements, "wrong"), _of(measurements, "oob_values")
    if not wrong and not oob:
        return [_no_data(threshold, "no #wrong column and no out-of-bounds footer: corruption cannot be judged")]
    bad = [m for m in wrong if m.value > 0]
    parts = [
        f"{int(m.value)} wrong element(s) at size {m.labels.get('size', '?')} B"
        + (f" ({m.labels['placement']})" if "placement" in m.labels else "")
        for m in bad
    ]
    out_of_bounds = sum(int(m.value) for m in oob if m.value > 0)
    if out_of_bounds:
        parts.append(f"nccl-tests reported {out_of_bounds} out-of-bounds value(s) (FAILED)")
    total = sum(m.value for m in bad) + out_of_bounds
    sizes = len({m.labels.get("size") for m in wrong})
    if parts:
        detail = "data corruption: " + "; ".join(parts)
    elif wrong:
        detail = f"every element exact at {sizes} message size(s)" + (", no out-of-bounds value" if oob else "")
    else:  # validation off (-c 0) or a pre-2021 log: only the footer speaks
        detail = "no out-of-bounds value in the footer (no #wrong column: validation off or an older log)"
    return [_verdict(threshold, not parts, detail, [*wrong, *oob], observed=total, unit="count", bar=0.0)]


def _rdma_transport(threshold: Threshold, measurements: Sequence[Measurement]) -> list[Check]:
    """Between nodes with RDMA resources an RDMA transport is required (NET/Socket is the silent fallback);
    RDMA without GPUDirect passes, noted; intra-node, NET/* between GPUs of one node is noted, not failed (the
    intra-node busbw bar catches its cost). No transport line at all: no-data (NCCL_DEBUG was not INFO)."""
    evidence = _of(measurements, "transport")
    found = frozenset(m.labels.get("transport", "") for m in evidence) - {""}
    if not found:
        return [_no_data(threshold, "no NCCL transport lines in the log (run with NCCL_DEBUG=INFO)")]
    names = ", ".join(sorted(found))
    scopes = {m.labels.get("scope", "") for m in evidence}
    rdma = any(m.labels.get("rdma") == "true" for m in evidence)
    labels = {"scope": "/".join(sorted(s for s in scopes if s)) or "?"}
    if "inter-node" in scopes:
        if rdma and not found & RDMA_TRANSPORTS:
            detail = f"transports {names}: NCCL fell back to TCP sockets although the nodes have RDMA resources"
            return [_verdict(threshold, False, detail, evidence, labels=labels)]
        if found & RDMA_TRANSPORTS and not found & _GDRDMA:
            detail = f"transports {names}: RDMA without GPUDirect (GDRDMA): check nvidia-peermem / dmabuf"
            return [_verdict(threshold, True, detail, evidence, labels=labels)]
        return [_verdict(threshold, True, f"transports {names}", evidence, labels=labels)]
    net = sorted(t for t in found if t.startswith("NET/"))
    note = f"; inter-GPU traffic inside the node went over {', '.join(net)}" if net else ""
    return [_verdict(threshold, True, f"transports {names}{note}", evidence, labels=labels)]


def _faster_tier(threshold: Threshold, measurements: Sequence[Measurement]) -> list[Check]:
    """Classes ranked fastest first (sequential read, then random-read IOPS); the fastest must beat the slowest by
    the rule's factor on at least one of the two. One class is not tiering (failed); none measured is no-data."""
    factor = threshold.value or 1.5
    seq = {m.labels.get("storage_class", "?"): m for m in _of(measurements, "tier_seqread_bw")}
    rnd = {m.labels.get("storage_class", "?"): m for m in _of(measurements, "tier_randread_iops")}
    names = sorted(set(seq) & set(rnd), key=lambda n: (-seq[n].value, -rnd[n].value, n))
    evidence = [m for n in names for m in (seq[n], rnd[n])]
    if not names:
        return [_no_data(threshold, "no storage class has both a sequential-read and a random-read headline")]
    ranking = ", ".join(f"{i}. {n} ({seq[n].value:.0f} MiB/s, {rnd[n].value:.0f} IOPS)" for i, n in enumerate(names, 1))
    if len(names) < 2:
        return [_verdict(threshold, False, f"only one storage tier ({names[0]})", evidence, bar=factor)]
    fast, slow = names[0], names[-1]
    seq_x = seq[fast].value / seq[slow].value if seq[slow].value else float("inf")
    rnd_x = rnd[fast].value / rnd[slow].value if rnd[slow].value else float("inf")
    best = max(seq_x, rnd_x)
    if best < factor:
        detail = (
            f"classes do not form tiers: the fastest ({fast}) is only {seq_x:.2f}x the slowest ({slow}) in "
            f"sequential read and {rnd_x:.2f}x in random-read IOPS (needs {format_value(factor)}x on one); "
            f"ranking: {ranking}"
        )
    else:
        detail = f"tiers: {ranking}; fastest/slowest = {seq_x:.2f}x seq read, {rnd_x:.2f}x IOPS"
    observed = best if best != float("inf") else None
    return [_verdict(threshold, best >= factor, detail, evidence, observed=observed, unit="ratio", bar=factor)]


def _traffic_denied(threshold: Threshold, measurements: Sequence[Measurement]) -> list[Check]:
    """Probe phases in order: a baseline that cannot connect makes the rest meaningless (failed, saying so); a
    phase that connects although a policy denies it means the CNI does not enforce NetworkPolicy; an allow rule that
    does not admit is a failure too; a policy the agent reports it cannot enforce fails even if probes look right."""
    probes = _of(measurements, "reachable")
    unenforced = _of(measurements, "policy_not_enforced")
    if not probes:
        return [_no_data(threshold, "no probe ran")]
    cni = next((m.labels["cni"] for m in probes if m.labels.get("cni")), "none detected")

    def expected(m: Measurement) -> bool:
        return m.labels.get("expected") == "1"

    first = probes[0]
    if expected(first) and first.value != 1:
        detail = (
            f"phase {first.labels.get('phase', '?')}: the service was unreachable before any policy "
            f"({first.labels.get('detail', '')}); isolation cannot be judged"
        )
        return [_verdict(threshold, False, detail, [*probes, *unenforced])]
    problems = []
    for probe in probes:
        reachable = probe.value == 1
        if reachable == expected(probe):
            continue
        phase, why = probe.labels.get("phase", "?"), probe.labels.get("detail", "")
        if expected(probe):
            problems.append(f"phase {phase}: the allow rule did not admit traffic ({why})")
        else:
            problems.append(f"phase {phase}: traffic was not blocked ({why}): the CNI does not enforce NetworkPolicy "
                            f"(CNI: {cni})")  # fmt: skip
    problems += [
        f"not enforced by the policy agent: {m.labels.get('policy', '?')}: {m.labels.get('message', '')}"
        for m in unenforced
    ]
    detail = "; ".join(problems) or f"default-deny blocked and the allow rule admitted traffic (CNI: {cni})"
    wrong = sum(1 for p in probes if (p.value == 1) != expected(p)) + len(unenforced)
    return [_verdict(threshold, not problems, detail, [*probes, *unenforced], observed=wrong, unit="count", bar=0.0)]


def _gang_whole(threshold: Threshold, measurements: Sequence[Measurement]) -> list[Check]:
    """``gang_size`` pods exist, every one placed, all in one domain of the topology key (an unlabelled node is no
    domain)."""
    sizes = _of(measurements, "gang_size")
    pods = _of(measurements, "gang_pod")
    if not sizes:
        return [_no_data(threshold, "no gang_size: the expected gang size was not recorded")]
    expected = int(sizes[0].value)
    key = next((m.labels["topology_key"] for m in [*sizes, *pods] if m.labels.get("topology_key")), "?")
    counts: dict[str, int] = {}
    for p in pods:
        if p.value == 1:
            domain = p.labels.get("domain") or "<unlabelled>"
            counts[domain] = counts.get(domain, 0) + 1
    where = ", ".join(f"{v}: {c} pod(s)" for v, c in sorted(counts.items())) or "nowhere"
    unplaced = [p.labels.get("pod", "?") for p in pods if p.value != 1]
    nodes = len({p.labels.get("node") for p in pods if p.value == 1})
    evidence = [*sizes, *pods]
    labels = {"topology_key": key}
    if len(pods) != expected:
        detail = f"{len(pods)} of {expected} pods exist ({where})"
    elif unplaced:
        detail = f"pods not placed: {', '.join(unplaced)} ({where})"
    elif len(counts) != 1 or "<unlabelled>" in counts:
        detail = f"gang split across {key} domains: {where}"
    else:
        detail = f"{expected} pods in one {key} domain ({where}) on {nodes} node(s)"
        return [_verdict(threshold, True, detail, evidence, observed=1, unit="count", bar=1.0, labels=labels)]
    return [_verdict(threshold, False, detail, evidence, observed=len(counts), unit="count", bar=1.0, labels=labels)]


def _weighted_split(threshold: Threshold, measurements: Sequence[Measurement]) -> list[Check]:
    """Each subset's count against Binomial(total, weight / sum of weights) at the rule's alpha (``value``, default
    1e-3): one check per subset, so a report names the subset that got too much or too little. A subset that
    answered without a weight is judged as weight 0 (only 0 of them is accepted)."""
    routed = _of(measurements, "routed")
    total = int(sum(m.value for m in routed))
    if total <= 0:
        return [_no_data(threshold, "no answered request to judge the split by")]
    weights = {m.labels.get("subset", "?"): float(m.labels.get("weight") or 0) for m in routed}
    scale = sum(weights.values())
    if scale <= 0:
        return [_no_data(threshold, "no subset has a positive configured weight")]
    alpha = threshold.value or DEFAULT_ALPHA
    checks = []
    for m in routed:
        subset = m.labels.get("subset", "?")
        share = weights[subset] / scale
        low, high = binomial_interval(total, share, alpha)
        observed = int(m.value)
        within = low <= observed <= high
        detail = (
            f"{subset}: {observed}/{total} = {100 * observed / total:.1f} % (configured {100 * share:g} %), "
            f"{'within' if within else 'OUTSIDE'} the binomial acceptance interval [{low}, {high}] "
            f"(alpha {format_value(alpha)})"
        )
        checks.append(
            _verdict(
                threshold, within, detail, [m], observed=observed, unit="count", bar=share, labels={"subset": subset}
            )
        )
    return checks


def _no_slow_node(threshold: Threshold, measurements: Sequence[Measurement]) -> list[Check]:
    """Per-node attribution of group results against the median - tolerance (``value``, default 0.1): one check
    per node, failed when every test it took part in was slow, warned when only some were (a suspect)."""
    groups = [m for m in measurements if m.metric == threshold.metric and m.labels.get("group")]
    if not groups:
        return [_no_data(threshold, f"no per-node or per-pair {threshold.metric} result to attribute")]
    mode = Mode(groups[0].labels.get("attribution", Mode.SINGLE))
    tolerance = threshold.value or 0.1
    results = {tuple(m.labels["group"].split("+")): m.value for m in groups}
    bar, rows = attribute(results, mode=mode, tolerance=tolerance, reference=groups[0].labels.get("reference", ""))
    unit = groups[0].unit
    checks = []
    for row in rows:
        partners = f" with {', '.join(row.partners)}" if row.partners else ""
        where = f"{row.node}: worst {row.worst:.1f} {unit}{partners}, bar {bar:.1f} {unit} (median - {tolerance:.0%})"
        if row.verdict is Verdict.OK:
            status, detail = Status.PASSED, where
        elif row.verdict is Verdict.SUSPECT:
            status, detail = Status.WARNED, f"suspect, slow in {row.slow_tests} of {row.tests} test(s): {where}"
        else:
            status = threshold.status_for(False)
            detail = f"slow in all {row.tests} test(s): {where}"
        check = _make(threshold, status, detail, groups, observed=row.worst, unit=unit, bar=bar,
                      labels={"node": row.node})  # fmt: skip
        checks.append(check)
    return checks


_JUDGES: dict[RuleKind, Callable[[Threshold, Sequence[Measurement]], list[Check]]] = {
    RuleKind.NO_CORRUPTION: _no_corruption,
    RuleKind.RDMA_TRANSPORT: _rdma_transport,
    RuleKind.FASTER_TIER: _faster_tier,
    RuleKind.TRAFFIC_DENIED: _traffic_denied,
    RuleKind.GANG_WHOLE: _gang_whole,
    RuleKind.WEIGHTED_SPLIT: _weighted_split,
    RuleKind.NO_SLOW_NODE: _no_slow_node,
}
