"""Pod-to-pod TCP throughput (iperf3) and request/response latency (a Python socket probe), same-node and
cross-node.

The suite picks the nodes: both pods on one node (the node's own pod networking: veth, bridge or eBPF path) and
on two nodes (the node network and the CNI's encapsulation). Throughput comes from iperf3's receiver-side sum;
latency from thousands of small round trips over one connection (netperf's TCP_RR pattern, in Python, so an upper
bound on the network's own latency).
"""

from __future__ import annotations

import shutil

import pytest

from harness.collectives import with_labels
from harness.fixture_types import Capabilities, NodeInfo, Profile, RunWorkload, TestRecord
from harness.parsers.iperf import iperf_measurements, parse_iperf3
from harness.parsers.sentinel import parse_sentinel
from harness.probes.topology import hostname_of, node_pairs
from harness.thresholds.assertions import assert_passed
from harness.thresholds.evaluate import evaluate

PATHS = ("same-node", "cross-node")


def _pair(capabilities: Capabilities, path: str) -> tuple[NodeInfo, NodeInfo]:
    pair = node_pairs(capabilities.nodes, path)
    if isinstance(pair, str):
        pytest.skip(f"{path}: {pair}")
    return pair


@pytest.mark.network
@pytest.mark.perf
@pytest.mark.parametrize("path", PATHS)
def test_pod_to_pod_tcp_throughput(
    path: str, run_workload: RunWorkload, capabilities: Capabilities, profile: Profile, record: TestRecord
) -> None:
    """iperf3 between two pods (parallel TCP streams) clears the profile's throughput bar."""
    if capabilities.embedded and shutil.which("iperf3") is None:
        pytest.skip(
            "the embedded target runs pods as host processes and this machine has no iperf3 (apt-get install iperf3)"
        )
    server, client = _pair(capabilities, path)
    run = run_workload("net-iperf3", server_node=hostname_of(server), client_node=hostname_of(client))
    result = parse_iperf3(run.log_of("client"))
    labels = {"path": path, "server_node": server.name, "client_node": client.name}
    measurements = with_labels(iperf_measurements(result, extra_labels=labels), emulated=run.emulated)
    checks = evaluate(profile, "net-iperf3", measurements)
    record.add(measurements=measurements, checks=checks)
    assert_passed(checks)


@pytest.mark.network
@pytest.mark.perf
@pytest.mark.parametrize("path", PATHS)
def test_pod_to_pod_latency(
    path: str, run_workload: RunWorkload, capabilities: Capabilities, profile: Profile, record: TestRecord
) -> None:
    """Request/response round trips between two pods (Python TCP probe) complete and their latency percentiles
    clear the profile's bars."""
    server, client = _pair(capabilities, path)
    run = run_workload("net-latency", server_node=hostname_of(server), client_node=hostname_of(client))
    result = parse_sentinel(run.log_of("client"))
    labels = {"path": path, "server_node": server.name, "client_node": client.name}
    measurements = with_labels(result.measurements, emulated=run.emulated, **labels)
    record.add(measurements=measurements)
    done = next(m.value for m in measurements if m.metric == "round_trips")
    assert done == result.info["requested"], (
        f"only {int(done)} of {result.info['requested']} round trips completed within the probe's duration bound"
    )
    checks = evaluate(profile, "net-latency", measurements)
    record.add(checks=checks)
    assert_passed(checks)
