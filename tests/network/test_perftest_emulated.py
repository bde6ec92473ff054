"""perftest-ib across the emulated fabric: server and client pods on emulated RDMA nodes print real-format
perftest output through the scripted runtime; parsing, side detection and per-node attribution name the node with
the degraded HCA. Emulated: this tests the logic, never a fabric."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from workload_runs import run_spec

from harness.catalog.spec import load_workload
from harness.embedded.cluster import EmbeddedCluster
from harness.node.emulated import Script
from harness.parsers.perftest import parse_perftest, perftest_measurements
from harness.thresholds.attribution import Mode, Verdict, attribute, plan

DATA = Path(__file__).resolve().parents[1] / "data"
CLIENT = (DATA / "perftest_constructed_ib_write_bw_roce_report-gbits_client.txt").read_text()
LOOPBACK = (DATA / "perftest_ib_write_bw_8M_loopback_superbench.log").read_text()
SERVER = LOOPBACK[LOOPBACK.index("*****") :]  # the server's half: its waiting box, then its table
DEGRADED = CLIENT.replace("388.51             388.45", "193.10             190.02")


@pytest.fixture
def scripted(fabric_cluster: EmbeddedCluster) -> Iterator[EmbeddedCluster]:
    yield fabric_cluster
    fabric_cluster.kubelets.scripted.clear()


def test_reference_pairs_name_the_node_with_a_degraded_hca(
    scripted: EmbeddedCluster, fabric_api: client.ApiClient, fabric_ns: str, tmp_path: Path
) -> None:
    spec = load_workload("perftest-ib")
    results = {}
    for i, (server, node) in enumerate(plan(["gpu-0", "gpu-1", "gpu-4", "gpu-5"], Mode.REFERENCE)):
        run_name = f"ptx-{i}"
        scripted.kubelets.scripted.script(f"{run_name}-server", Script(exit_code=0, after_s=0.2, log=SERVER))
        client_log = DEGRADED if node == "gpu-4" else CLIENT
        scripted.kubelets.scripted.script(f"{run_name}-client", Script(exit_code=0, after_s=0.1, log=client_log))
        run = run_spec(fabric_api, spec, fabric_ns, tmp_path / run_name, timeout_s=30, server_node=server,
                       client_node=node, run_name=run_name)  # fmt: skip
        assert run.emulated
        pods = {p.name: p.node for p in run.evidence.pods if p.name.startswith(run_name)}
        assert pods[f"{run_name}-server"] == server and node in pods.values()
        server_tables = parse_perftest(run.logs[f"{run_name}-server/server"])
        assert [t.side for t in server_tables] == ["server"]
        text = "".join(t for k, t in run.logs.items() if k.startswith(f"{run_name}-client"))
        (table,) = parse_perftest(text)
        assert table.side == "client" and table.device == "mlx5_3"
        measurements = perftest_measurements([table], extra_labels={"pair": f"{server}+{node}"})
        results[(server, node)] = next(m.value for m in measurements if m.metric == "ib_write_bw")
    bar, rows = attribute(results, mode=Mode.REFERENCE)
    assert bar == pytest.approx(388.45 * 0.9)
    assert {r.node: r.verdict for r in rows} == {"gpu-1": Verdict.OK, "gpu-4": Verdict.SLOW, "gpu-5": Verdict.OK}
