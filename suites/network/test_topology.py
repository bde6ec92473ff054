"""Topology-aware placement: the topology labels nodes carry, and a gang that must share one topology domain.

Collective bandwidth falls with every switch hop between ranks, so training jobs ask the scheduler to keep a gang
inside one block, rack or zone. These checks show the levels the cluster labels and prove the scheduler honours a
required co-location on the narrowest one. With a cluster spec, the embedded target's emulated nodes carry the
topology, and results say they are emulated.
"""

from __future__ import annotations

import pytest

from harness.catalog.render import rewrite_image
from harness.cluster.namespaces import run_labels
from harness.errors import WorkloadFailed
from harness.fixture_types import Capabilities, DeployService, HarnessConfig, Profile, Target, TestRecord
from harness.measurement import Measurement
from harness.probes.kueue import dedicated_queue, gang_job, submit_gang
from harness.probes.topology import (
    colocation_key,
    gang_evidence,
    over_capacity_gang,
    placement_of,
    topology_table,
)
from harness.thresholds.assertions import assert_passed
from harness.thresholds.model import RuleKind
from harness.thresholds.verdicts import judge

ZONE = "topology.kubernetes.io/zone"
MAX_GANG = 4
KUEUE_GANG = 2
BUSYBOX = "docker.io/library/busybox:1.36.1"


@pytest.mark.network
@pytest.mark.conformance
def test_nodes_carry_topology_labels(capabilities: Capabilities, record: TestRecord) -> None:
    """Every node of a multi-node cluster names its zone, and the report lists each node's topology labels
    (zone and any block/rack/spine level)."""
    rows = topology_table(capabilities.nodes)
    record.add(
        measurements=[
            Measurement(
                metric="topology_labels",
                value=len(row) - 2,
                unit="count",
                labels={k.rsplit("/", 1)[-1]: v for k, v in row.items()},
                emulated=row["emulated"] == "true",
            )
            for row in rows
        ]
    )
    if len(rows) < 2:
        pytest.skip(f"one node ({rows[0]['node'] if rows else 'none'}): no topology to place a gang across")
    missing = [row["node"] for row in rows if ZONE not in row]
    hint = " (embedded target: give the host one in the cluster spec, host.labels)" if capabilities.embedded else ""
    assert not missing, f"nodes without {ZONE}: {', '.join(missing)}{hint}"


@pytest.mark.network
@pytest.mark.conformance
def test_gang_lands_in_one_topology_domain(
    deploy_service: DeployService, target: Target, capabilities: Capabilities, profile: Profile, record: TestRecord
) -> None:
    """A gang of pods with required pod affinity on the narrowest labelled topology level all land inside one
    domain of it."""
    key, domain, domain_nodes = colocation_key(capabilities.nodes)
    size = max(2, min(MAX_GANG, len(domain_nodes)))
    with deploy_service("net-gang", size=size, topology_key=key) as handle:
        placements = placement_of(target, handle.namespace, "app.kubernetes.io/name=net-gang")
    emulated = any(p.emulated for p in placements)
    evidence = gang_evidence(placements, capabilities.nodes, key=key, expected=size)
    verdicts = judge(profile, "net-gang", RuleKind.GANG_WHOLE, evidence)
    labels = {"topology_key": key, "largest_domain": domain}
    domains = {m.labels["domain"] for m in evidence if m.metric == "gang_pod" and m.value == 1}
    record.add(
        params={"topology_key": key},
        measurements=[
            *evidence,
            Measurement(metric="gang_domains", value=len(domains), unit="count", labels=labels, emulated=emulated),
            Measurement(metric="gang_nodes", value=len({p.node for p in placements if p.node}), unit="count",
                        labels=labels, emulated=emulated),
        ],
        checks=verdicts,
    )  # fmt: skip
    assert_passed(verdicts)


@pytest.mark.network
@pytest.mark.conformance
@pytest.mark.conformance_requirement("gang_scheduling")
@pytest.mark.requires("volcano")
def test_gang_scheduling_is_all_or_nothing(
    deploy_service: DeployService, target: Target, capabilities: Capabilities, record: TestRecord
) -> None:
    """Volcano gang scheduling: a gang that fits starts all its pods together, and a gang one pod larger than the
    cluster can hold starts none of them."""
    selector = "app.kubernetes.io/name=net-gang-volcano"
    with deploy_service("net-gang-volcano", size=2, gang_id="fits") as handle:
        fits = placement_of(target, handle.namespace, selector + ",aibench.io/gang=fits")
    running = [p for p in fits if p.phase == "Running"]
    size, cpu = over_capacity_gang(capabilities.nodes)
    try:
        with deploy_service("net-gang-volcano", size=size, cpu=cpu, gang_id="too-big"):
            pass
    except WorkloadFailed:
        pass  # expected: the gang cannot become ready
    too_big = placement_of(target, handle.namespace, selector + ",aibench.io/gang=too-big")
    started = [p for p in too_big if p.phase == "Running" or p.node]
    emulated = any(p.emulated for p in fits + too_big)
    record.add(
        measurements=[
            Measurement(metric="gang_running", value=len(running), unit="count", labels={"gang": "fits", "size": "2"},
                        emulated=emulated),
            Measurement(metric="gang_running", value=len(started), unit="count",
                        labels={"gang": "too-big", "size": str(size), "cpu": cpu}, emulated=emulated),
        ]
    )  # fmt: skip
    assert len(running) == 2, f"a gang of 2 that fits: {len(running)} pod(s) Running"
    assert not started, (
        f"an over-capacity gang of {size} x {cpu} CPU started {len(started)} pod(s) "
        f"({', '.join(f'{p.pod} on {p.node}' for p in started)}): scheduling is not all-or-nothing"
    )


@pytest.mark.network
@pytest.mark.conformance
@pytest.mark.conformance_requirement("gang_scheduling")
@pytest.mark.requires("kueue")
def test_kueue_admission_is_all_or_nothing(
    target: Target, namespace: str, harness_config: HarnessConfig, request: pytest.FixtureRequest, record: TestRecord
) -> None:
    """Kueue gang admission: with a queue whose quota holds exactly N pods, a Job of N pods starts all of them
    together, and a Job of N+1 pods in an equal queue starts none (it stays suspended)."""
    labels = run_labels(harness_config.run_id, request.node.nodeid)
    image = rewrite_image(BUSYBOX, harness_config.image_registry)
    outcomes = {}
    for case, size, expect in (("fits", KUEUE_GANG, True), ("too-big", KUEUE_GANG + 1, False)):
        name = f"aibench-{namespace}-{case}"[:63]
        with dedicated_queue(target, name=name, namespace=namespace, pods=KUEUE_GANG, labels=labels) as queue:
            outcomes[case] = submit_gang(
                target,
                gang_job(name=f"gang-{case}", queue=queue, size=size, image=image),
                namespace=namespace,
                labels=labels,
                settle_s=harness_config.timeout(120 if expect else 30),
                expect_admission=expect,
            )
    record.add(
        measurements=[
            Measurement(metric="gang_running", value=a.most_running, unit="count",
                        labels={"gang": case, "size": str(a.size), "quota_pods": str(KUEUE_GANG)})
            for case, a in outcomes.items()
        ]
    )  # fmt: skip
    fits, too_big = outcomes["fits"], outcomes["too-big"]
    assert fits.admitted and fits.running == fits.size, (
        f"a gang of {fits.size} within the quota: admitted={fits.admitted}, {fits.running} pod(s) Running"
    )
    assert too_big.most_running == 0 and not too_big.admitted, (
        f"a gang of {too_big.size} over a {KUEUE_GANG}-pod quota: admitted={too_big.admitted}, up to "
        f"{too_big.most_running} pod(s) Running: admission is not all-or-nothing"
    )
