"""NCCL across the emulated fabric: the nccl-allreduce workload's pods run on emulated 8-GPU nodes through the
scripted runtime, printing real-format nccl-tests logs (tests/data), and the suite's analysis (parse, transports,
corruption, per-node attribution) names what a real cluster's logs would show. Results are emulated: this tests
the logic, never a fabric."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from judging import corruption, transport
from kubernetes import client
from workload_runs import run_spec

from harness.catalog.spec import load_workload
from harness.collectives import largest_busbw, nccl_run
from harness.embedded.cluster import EmbeddedCluster
from harness.errors import WorkloadFailed
from harness.node.emulated import Script
from harness.parsers.nccl import Transport
from harness.thresholds.attribution import Mode, Verdict, attribute
from harness.thresholds.evaluate import evaluate
from harness.thresholds.loader import load_profile
from harness.thresholds.model import Status

DATA = Path(__file__).resolve().parents[1] / "data"
A100_8GPU = (DATA / "nccl-tests_allreduce_1node-8gpu_a100_2020-format-redop-noroot_superbench.log").read_text()
TWO_NODE_IB = (DATA / "nccl-tests_constructed_2023-format_group-mpirun-prefix.txt").read_text()
INFO_LINES = (DATA / "nccl-info_transport-lines_format-samples.txt").read_text().splitlines()
P2P_LINE = next(line for line in INFO_LINES if "via P2P/IPC" in line)
SOCKET_LINE = next(line for line in INFO_LINES if "via NET/Socket" in line)
# the 8 GiB row of the superbench log with half the bandwidth: a node whose NVLink runs degraded
DEGRADED = A100_8GPU.replace("134.44  235.26", " 67.22  117.63").replace("134.30  235.03", " 67.15  117.51")


@pytest.fixture
def scripted(fabric_cluster: EmbeddedCluster) -> Iterator[EmbeddedCluster]:
    yield fabric_cluster
    fabric_cluster.kubelets.scripted.clear()


def _run_on(api: client.ApiClient, ns: str, tmp_path: Path, node: str, **params: str):
    spec = load_workload("nccl-allreduce")
    return run_spec(api, spec, ns, tmp_path / node, timeout_s=30, node=node, run_name=f"nccl-{node}", **params)


def test_per_node_sweep_names_the_degraded_node(
    scripted: EmbeddedCluster, fabric_api: client.ApiClient, fabric_ns: str, tmp_path: Path
) -> None:
    nodes = ["gpu-0", "gpu-1", "gpu-2"]
    for node in nodes:
        text = (DEGRADED if node == "gpu-2" else A100_8GPU) + P2P_LINE + "\n"
        scripted.kubelets.scripted.script(f"nccl-{node}-", Script(exit_code=0, after_s=0.1, log=text))
    results = {}
    for node in nodes:
        run = _run_on(fabric_api, fabric_ns, tmp_path, node)
        # one namespace holds all three runs: read this node's Job only
        mine = {k: t for k, t in run.logs.items() if k.startswith(f"nccl-{node}-")}
        assert run.emulated and {p.node for p in run.evidence.pods if f"{p.name}/nccl" in mine} == {node}
        parsed = nccl_run("".join(mine.values()), program="all_reduce_perf", emulated=run.emulated, node=node)
        assert all(m.emulated for m in parsed.measurements)
        assert parsed.transports == {Transport.P2P_IPC}
        assert transport(parsed.transports, scope="intra-node", rdma_available=True).status is Status.PASSED
        assert corruption(parsed.measurements) is None  # validation was off: N/A, never a wrong count
        results[(node,)] = largest_busbw(parsed.measurements)
    assert results[("gpu-0",)] == pytest.approx(235.26) and results[("gpu-2",)] == pytest.approx(117.63)
    _, rows = attribute(results, mode=Mode.SINGLE)
    assert {r.node: r.verdict for r in rows} == {"gpu-0": Verdict.OK, "gpu-1": Verdict.OK, "gpu-2": Verdict.SLOW}


def test_wrong_results_are_corruption_whatever_the_bandwidth(
    scripted: EmbeddedCluster, fabric_api: client.ApiClient, fabric_ns: str, tmp_path: Path
) -> None:
    scripted.kubelets.scripted.script("nccl-gpu-3-", Script(exit_code=0, after_s=0.1, log=TWO_NODE_IB))
    run = _run_on(fabric_api, fabric_ns, tmp_path, "gpu-3")
    parsed = nccl_run(run.log_of("nccl"), program="all_reduce_perf", scope="inter-node")
    assert largest_busbw(parsed.measurements) == pytest.approx(46.43)  # bandwidth looks fine...
    assert corruption(parsed.measurements) == "data corruption: 2 wrong element(s) at size 4294967296 B (out-of-place)"
    ib = transport(parsed.transports, scope="inter-node", rdma_available=True)
    assert ib.status is Status.PASSED  # NET/IB/GDRDMA


def test_socket_fallback_on_an_rdma_cluster_fails_with_a_hint() -> None:
    text = TWO_NODE_IB.replace(
        "h100-2:895544:895600 [0] NCCL INFO Channel 00/0 : 0[0] -> 1[0] [send] via NET/IB/0/GDRDMA", SOCKET_LINE
    )
    parsed = nccl_run(text, program="all_reduce_perf", scope="inter-node")
    verdict = transport(parsed.transports, scope="inter-node", rdma_available=True)
    assert verdict.status is Status.FAILED
    assert "fell back to TCP sockets" in verdict.message and "NCCL_IB_HCA" in verdict.message
    no_rdma = transport(parsed.transports, scope="inter-node", rdma_available=False)
    assert no_rdma.status is Status.PASSED  # no RDMA: expected
    assert transport(set(), scope="intra-node", rdma_available=False).status is Status.NO_DATA  # NCCL_DEBUG not INFO


def test_hung_ranks_time_out_with_their_last_log_lines(
    scripted: EmbeddedCluster, fabric_api: client.ApiClient, fabric_ns: str, tmp_path: Path
) -> None:
    hung = "\n".join(A100_8GPU.splitlines()[:20]) + "\n" + P2P_LINE + "\n"  # header, a few rows, then silence
    scripted.kubelets.scripted.script("nccl-gpu-4-", Script(exit_code=None, log=hung))
    spec = load_workload("nccl-allreduce")
    with pytest.raises(WorkloadFailed) as failure:
        run_spec(fabric_api, spec, fabric_ns, tmp_path, timeout_s=3, node="gpu-4", run_name="nccl-gpu-4")
    message = str(failure.value)
    assert "timed out" in message or "did not" in message, message
    assert "via P2P/IPC/read" in message  # the last NCCL line the hung rank printed


def test_scope_judges_only_the_runs_bars() -> None:
    parsed = nccl_run(A100_8GPU, program="all_reduce_perf", scope="intra-node", nvls="off")
    profile = load_profile("a100-sxm-8x-ib200")
    checks = evaluate(profile, "nccl-allreduce", parsed.measurements, scope={"scope": "intra-node"})
    assert {c.threshold_id: c.status for c in checks} == {"nccl-intra-busbw": Status.PASSED}  # 235.26 >= 228
    ib = evaluate(profile, "nccl-allreduce", parsed.measurements, scope={"scope": "ib-loopback"})
    assert [c.threshold_id for c in ib] == ["nccl-ib-loopback-busbw"] and ib[0].status is Status.NO_DATA
