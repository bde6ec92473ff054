"""Per-node RDMA: perftest (ib_write_bw) on every RDMA node, looped back through its own NIC and, with two or more
RDMA nodes, against a reference node; GPUDirect RDMA (--use_cuda) where the node has GPUs.

Results form a per-node table (node, HCA, Gbit/s, verdict): a cluster-relative outlier (median - 10%) is named
even when the profile has no bar for the hardware.
"""

from __future__ import annotations

import re

import pytest

from harness.collectives import with_labels
from harness.fixture_types import Capabilities, NodeInfo, Profile, RunResult, RunWorkload, TestRecord
from harness.measurement import Measurement
from harness.parsers.perftest import parse_perftest, perftest_measurements
from harness.probes.topology import hostname_of
from harness.thresholds.assertions import assert_passed
from harness.thresholds.attribution import Mode, group_measurements, plan
from harness.thresholds.evaluate import evaluate
from harness.thresholds.model import RuleKind
from harness.thresholds.verdicts import judge

WORKLOAD = "perftest-ib"
LOOPBACK, CROSS = "perftest-loopback", "perftest-cross-node"


def _name(prefix: str, *nodes: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", "-".join([prefix, *nodes]).lower())[:40].rstrip("-")


def _params(node: NodeInfo) -> dict[str, str]:
    """RDMA resource of the node, and GPUDirect (GPU 0's memory) when it has GPUs."""
    resource = sorted(node.rdma_resources)[0]
    gdr = {"use_cuda": "0", "gpus": "1"} if node.gpus else {"use_cuda": "", "gpus": "0"}
    return {"rdma_resource": resource, "rdma_count": "1", **gdr}


def _client_results(run: RunResult, run_name: str, **labels: str) -> list[Measurement]:
    text = "".join(t for k, t in run.logs.items() if k.startswith(f"{run_name}-client"))
    tables = [r for r in parse_perftest(text) if r.side == "client"]
    return with_labels(perftest_measurements(tables, extra_labels=labels), emulated=run.emulated)


def _headline(measurements: list[Measurement]) -> float:
    return min(m.value for m in measurements if m.metric == "ib_write_bw")


@pytest.mark.network
@pytest.mark.perf
@pytest.mark.rdma
def test_rdma_loopback_per_node(
    rdma_node: NodeInfo,
    run_workload: RunWorkload,
    profile: Profile,
    record: TestRecord,
    per_node_results: dict[str, dict[tuple[str, ...], float]],
) -> None:
    """ib_write_bw through the node's own HCA (server and client on the node, GPUDirect when it has GPUs) clears
    the profile's per-HCA bar."""
    params = _params(rdma_node)
    run_name = _name("pt", rdma_node.name)
    host = hostname_of(rdma_node)
    run = run_workload(WORKLOAD, server_node=host, client_node=host, run_name=run_name, **params)
    measurements = _client_results(
        run, run_name, node=rdma_node.name, path="loopback", gpudirect=str(bool(params["use_cuda"])).lower()
    )
    record.add(measurements=measurements)
    assert measurements, f"{rdma_node.name}: perftest printed no client result table"
    per_node_results.setdefault(LOOPBACK, {})[(rdma_node.name,)] = _headline(measurements)
    checks = evaluate(profile, WORKLOAD, measurements)
    record.add(checks=checks)
    assert_passed(checks)


@pytest.mark.network
@pytest.mark.perf
@pytest.mark.rdma
@pytest.mark.requires("rdma")
def test_rdma_per_node_table(
    per_node_results: dict[str, dict[tuple[str, ...], float]],
    capabilities: Capabilities,
    run_workload: RunWorkload,
    profile: Profile,
    record: TestRecord,
) -> None:
    """No RDMA node is an outlier: loopback results per node, then each node against a reference node across the
    fabric (when there are two or more real RDMA nodes); the table names the slow node."""
    loopback = per_node_results.get(LOOPBACK, {})
    if not loopback:
        pytest.skip("no per-node loopback result in this run (test_rdma_loopback_per_node did not measure)")
    tables = [("loopback", Mode.SINGLE, loopback)]
    nodes = [n for n in capabilities.rdma_nodes if not n.emulated and n.ready]
    if len(nodes) >= 2:
        cross: dict[tuple[str, ...], float] = {}
        for server, client in plan([n.name for n in nodes], Mode.REFERENCE):
            pair = {n.name: n for n in nodes if n.name in (server, client)}
            run_name = _name("ptx", server, client)
            run = run_workload(
                WORKLOAD,
                server_node=hostname_of(pair[server]),
                client_node=hostname_of(pair[client]),
                run_name=run_name,
                **_params(pair[server]),
            )
            measurements = _client_results(run, run_name, path="cross-node", pair=f"{server}+{client}")
            record.add(measurements=measurements)
            cross[(server, client)] = _headline(measurements)
        tables.append(("cross-node", Mode.REFERENCE, cross))
    verdicts = []
    for path, mode, results in tables:
        evidence = group_measurements(results, metric="ib_write_bw", unit="Gbit/s", mode=mode, path=path)
        checks = judge(profile, WORKLOAD, RuleKind.NO_SLOW_NODE, evidence)
        record.add(measurements=evidence, checks=checks)
        verdicts += checks
    assert_passed(verdicts)
