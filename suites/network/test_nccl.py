"""NCCL collectives (nvidia nccl-tests): intra-node on every GPU node, across nodes through the MPI Operator, and
pairwise across nodes to name a slow one.

Bars judge busbw at the largest message sizes, never the sweep's "Avg bus bandwidth" (DESIGN.md section 6). Wrong
results (#wrong > 0) are data corruption: a failure whatever the bandwidth. The NCCL_DEBUG=INFO lines say which
transport NCCL used; between nodes of a cluster with RDMA resources a fall-back to TCP sockets fails with the usual
causes as a hint.
"""

from __future__ import annotations

import re

import pytest

from harness.collectives import largest_busbw, nccl_run, transport_measurements
from harness.fixture_types import Capabilities, NodeInfo, RunWorkload, TestRecord
from harness.measurement import Measurement
from harness.parsers.nccl import Transport, transports
from harness.probes.topology import hostname_of
from harness.thresholds.assertions import assert_passed
from harness.thresholds.attribution import Mode, group_measurements, plan
from harness.thresholds.evaluate import evaluate
from harness.thresholds.model import Checks, Profile, RuleKind
from harness.thresholds.verdicts import judge

WORKLOAD, MPI_WORKLOAD = "nccl-allreduce", "nccl-allreduce-mpijob"
INTRA = "nccl-intra-node"


def _rdma(node: NodeInfo) -> dict[str, str]:
    """The RDMA resource a pod on ``node`` should request (the first the node offers), or none."""
    resources = node.rdma_resources
    if not resources:
        return {"rdma_count": "0"}
    name = sorted(resources)[0]
    return {"rdma_resource": name, "rdma_count": "1"}


def _job_name(prefix: str, node: str) -> str:
    """A Job name derived from a node name (node names may hold dots; Job names become pod-name prefixes)."""
    return f"{prefix}-{re.sub(r'[^a-z0-9-]+', '-', node.lower())}"[:52].rstrip("-")


def _real_gpu_nodes(capabilities: Capabilities) -> list[NodeInfo]:
    return [n for n in capabilities.gpu_nodes if not n.emulated and n.ready]


def _verdicts(profile: Profile, evidence: list[Measurement], *, transport: bool = True) -> Checks:
    """The nccl-allreduce verdict rules on one run's evidence: no corruption, and (when asked) the transport."""
    checks = judge(profile, WORKLOAD, RuleKind.NO_CORRUPTION, evidence)
    if transport:
        checks.extend(judge(profile, WORKLOAD, RuleKind.RDMA_TRANSPORT, evidence))
    return checks


@pytest.mark.network
@pytest.mark.perf
@pytest.mark.gpu
def test_nccl_intra_node(
    gpu_node: NodeInfo,
    run_workload: RunWorkload,
    profile: Profile,
    record: TestRecord,
    per_node_results: dict[str, dict[tuple[str, ...], float]],
) -> None:
    """all_reduce_perf over every GPU of the node is exact, uses NVLink/P2P (or NVLS), and its large-message busbw
    clears the profile's intra-node bar."""
    run = run_workload(
        WORKLOAD,
        node=hostname_of(gpu_node),
        run_name=_job_name("nccl", gpu_node.name),
        gpus=gpu_node.gpus,
        **_rdma(gpu_node),
    )
    text = run.log_of("nccl")
    nvls = "on" if Transport.NVLS in transports(text) else "off"
    parsed = nccl_run(
        text, program="all_reduce_perf", emulated=run.emulated, scope="intra-node", node=gpu_node.name, nvls=nvls
    )
    evidence = [
        *parsed.measurements,
        *transport_measurements(
            parsed.transports, scope="intra-node", rdma_available=False, emulated=run.emulated, node=gpu_node.name
        ),
    ]
    verdicts = _verdicts(profile, evidence)
    if (busbw := largest_busbw(parsed.measurements)) is not None and not verdicts[0].counts_as_failure:
        per_node_results.setdefault(INTRA, {})[(gpu_node.name,)] = busbw
    checks = evaluate(profile, WORKLOAD, parsed.measurements, scope={"scope": "intra-node"})
    record.add(measurements=evidence, checks=[*verdicts, *checks])
    assert_passed(checks, verdicts=verdicts)


@pytest.mark.network
@pytest.mark.perf
@pytest.mark.gpu
@pytest.mark.rdma
def test_nccl_ib_loopback(gpu_node: NodeInfo, run_workload: RunWorkload, profile: Profile, record: TestRecord) -> None:
    """all_reduce_perf on one node with P2P and SHM disabled goes through the node's own HCAs (NET/IB): it is exact
    and clears the profile's IB-loopback bar, proving every GPU-NIC pairing carries RDMA traffic."""
    if not gpu_node.rdma_resources:
        pytest.skip(f"{gpu_node.name} has no RDMA resource: no IB loopback to test")
    run = run_workload(
        WORKLOAD,
        node=hostname_of(gpu_node),
        run_name=_job_name("nccl-ibl", gpu_node.name),
        gpus=gpu_node.gpus,
        p2p_disable="1",
        shm_disable="1",
        **_rdma(gpu_node),
    )
    parsed = nccl_run(
        run.log_of("nccl"), program="all_reduce_perf", emulated=run.emulated, scope="ib-loopback", node=gpu_node.name
    )
    evidence = [
        *parsed.measurements,
        *transport_measurements(
            parsed.transports, scope="inter-node", rdma_available=True, emulated=run.emulated, node=gpu_node.name
        ),
    ]
    verdicts = _verdicts(profile, evidence)
    checks = evaluate(profile, WORKLOAD, parsed.measurements, scope={"scope": "ib-loopback"})
    record.add(measurements=evidence, checks=[*verdicts, *checks])
    assert_passed(checks, verdicts=verdicts)


@pytest.mark.network
@pytest.mark.perf
@pytest.mark.gpu
def test_nccl_intra_node_attribution(
    per_node_results: dict[str, dict[tuple[str, ...], float]], profile: Profile, record: TestRecord
) -> None:
    """No GPU node's intra-node busbw is an outlier against the others (median - 10%): the per-node table names
    any slow node."""
    results = per_node_results.get(INTRA, {})
    if len(results) < 2:
        pytest.skip(f"needs intra-node results from 2+ GPU nodes in this run, got {len(results)}")
    evidence = group_measurements(results, metric="busbw", unit="GB/s", mode=Mode.SINGLE, scope="intra-node")
    verdicts = judge(profile, WORKLOAD, RuleKind.NO_SLOW_NODE, evidence)
    record.add(measurements=evidence, checks=verdicts)
    assert_passed(verdicts)


@pytest.mark.network
@pytest.mark.perf
@pytest.mark.gpu
@pytest.mark.requires("mpijob", "gpu-nodes>=2")
def test_nccl_inter_node(
    run_mpijob: RunWorkload, capabilities: Capabilities, profile: Profile, record: TestRecord
) -> None:
    """all_reduce_perf across two GPU nodes (one rank per GPU, MPI Operator) is exact, runs over RDMA (NET/IB) when
    the nodes have RDMA resources, and its large-message busbw clears the profile's inter-node bar."""
    nodes = _real_gpu_nodes(capabilities)[:2]
    if len(nodes) < 2:
        pytest.skip(f"needs 2 real GPU nodes, the target has {len(nodes)}")
    gpus = min(n.gpus for n in nodes)
    run = run_mpijob(
        MPI_WORKLOAD,
        workers=2,
        gpus_per_worker=gpus,
        ranks=2 * gpus,
        node_operator="In",
        worker_nodes=", ".join(hostname_of(n) for n in nodes),
        **_rdma(nodes[0]),
    )
    parsed = nccl_run(run.log_of("launcher"), program="all_reduce_perf", emulated=run.emulated, scope="inter-node")
    rdma = bool(capabilities.rdma_nodes)
    evidence = [
        *parsed.measurements,
        *transport_measurements(parsed.transports, scope="inter-node", rdma_available=rdma, emulated=run.emulated),
    ]
    verdicts = _verdicts(profile, evidence)
    checks = evaluate(profile, WORKLOAD, parsed.measurements, scope={"scope": "inter-node"})
    record.add(measurements=evidence, checks=[*verdicts, *checks])
    assert_passed(checks, verdicts=verdicts)


@pytest.mark.network
@pytest.mark.perf
@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.requires("mpijob", "gpu-nodes>=3")
def test_nccl_pairwise(
    run_mpijob: RunWorkload, capabilities: Capabilities, profile: Profile, record: TestRecord
) -> None:
    """Every GPU node paired with a reference node (NCCL_ALGO=RING, so the pair's NICs set the pace): no node's
    pair is an outlier; the per-node table names the slow node."""
    nodes = _real_gpu_nodes(capabilities)
    if len(nodes) < 3:
        pytest.skip(f"needs 3 real GPU nodes for a reference and two others, the target has {len(nodes)}")
    gpus = min(n.gpus for n in nodes)
    results: dict[tuple[str, ...], float] = {}
    for i, pair in enumerate(plan([n.name for n in nodes], Mode.REFERENCE)):
        chosen = [n for n in nodes if n.name in pair]
        run = run_mpijob(
            MPI_WORKLOAD,
            run_name=f"nccl-pair-{i}",
            workers=2,
            gpus_per_worker=gpus,
            ranks=2 * gpus,
            node_operator="In",
            worker_nodes=", ".join(hostname_of(n) for n in chosen),
            nccl_algo="RING",
            **_rdma(chosen[0]),
        )
        text = "".join(t for k, t in run.logs.items() if k.startswith(f"nccl-pair-{i}-launcher"))
        parsed = nccl_run(text, program="all_reduce_perf", emulated=run.emulated, scope="pair", pair="+".join(pair))
        verdicts = _verdicts(profile, parsed.measurements, transport=False)
        record.add(measurements=parsed.measurements, checks=verdicts)
        assert_passed(verdicts)  # a corrupting pair fails here, before its busbw is compared with the others
        if (busbw := largest_busbw(parsed.measurements)) is not None:
            results[pair] = busbw
    evidence = group_measurements(
        results, metric="busbw", unit="GB/s", mode=Mode.REFERENCE, reference=nodes[0].name, scope="pair"
    )
    verdicts = judge(profile, WORKLOAD, RuleKind.NO_SLOW_NODE, evidence)
    record.add(measurements=evidence, checks=verdicts)
    assert_passed(verdicts)
