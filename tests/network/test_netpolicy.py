"""The isolation check's policies (valid NetworkPolicies for every supported Kubernetes version) and its verdict,
including the honest failure for a CNI that does not enforce policies; the probe's reach mode over loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from kubernetes import client

from harness.catalog.validate import ManifestValidator
from harness.cluster.namespaces import run_labels
from harness.cluster.target import Connection
from harness.measurement import Measurement
from harness.parsers.sentinel import parse_sentinel
from harness.probes.netpolicy import (
    allow_ingress_from,
    apply_policies,
    default_deny_ingress,
    enforcer,
)
from harness.thresholds.model import Check, RuleKind, Status
from harness.thresholds.verdicts import judge

PROBE = Path(__file__).resolve().parents[2] / "workloads" / "net-latency" / "tcp_probe.py"
ALLOW = allow_ingress_from(name="allow", to={"app": "echo"}, from_pods={"role": "client"}, port=5401)


def test_policies_validate_against_the_kubernetes_schemas() -> None:
    validator = ManifestValidator()
    for policy in (default_deny_ingress(), ALLOW):
        assert not validator.problems(policy, source="netpolicy"), policy


def test_policies_are_applied_with_the_run_labels(api: client.ApiClient, ns: str) -> None:
    refs = apply_policies(
        Connection(api), [default_deny_ingress(), ALLOW], namespace=ns, labels=run_labels("run-p", "t")
    )
    assert [r.kind for r in refs] == ["NetworkPolicy", "NetworkPolicy"]
    stored = client.NetworkingV1Api(api).read_namespaced_network_policy("allow", ns)
    assert stored.spec.ingress[0].ports[0].port == 5401
    assert stored.metadata.labels["aibench.io/run-id"] == "run-p"


def _probe(phase: str, expected: bool, reachable: bool, cni: str = "cilium") -> Measurement:
    """One probe phase as the suite records it: ``reachable{phase, expected, detail, cni}``."""
    labels = {"phase": phase, "expected": str(int(expected)), "detail": "d", "cni": cni}
    return Measurement(metric="reachable", value=int(reachable), unit="count", labels=labels)


def _verdict(evidence: list[Measurement]) -> Check:
    checks = judge(None, "net-reach", RuleKind.TRAFFIC_DENIED, evidence)
    assert len(checks) == 1 and checks[0].kind is RuleKind.TRAFFIC_DENIED
    return checks[0]


def test_enforcing_cni_passes() -> None:
    probes = [_probe("baseline", True, True), _probe("denied", False, False), _probe("allowed", True, True)]
    verdict = _verdict(probes)
    assert verdict.status is Status.PASSED and "CNI: cilium" in verdict.detail


def test_non_enforcing_cni_fails_with_that_reason() -> None:
    cni = enforcer((), embedded=True)
    probes = [
        _probe("baseline", True, True, cni),
        _probe("denied", False, True, cni),
        _probe("allowed", True, True, cni),
    ]
    verdict = _verdict(probes)
    assert verdict.status is Status.FAILED
    assert verdict.detail == (
        "phase denied: traffic was not blocked (d): the CNI does not enforce NetworkPolicy "
        "(CNI: none (embedded target: loopback networking))"
    )


def test_unreachable_baseline_and_broken_allow_rule_are_named() -> None:
    first = _verdict([_probe("baseline", True, False)])
    assert first.status is Status.FAILED and "unreachable before any policy" in first.detail
    probes = [_probe("baseline", True, True), _probe("denied", False, False), _probe("allowed", True, False)]
    assert "allow rule did not admit" in _verdict(probes).detail
    assert _verdict([]).status is Status.NO_DATA


def _reach(port: int, expect: str) -> dict:
    env = {**os.environ, "TARGET": "127.0.0.1", "PORT": str(port), "EXPECT": expect, "SETTLE_S": "2",
           "CONNECT_TIMEOUT_S": "1", "PHASE": "t"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, str(PROBE), "reach"], check=False, env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    result = parse_sentinel(done.stdout)
    return {m.metric: m.value for m in result.measurements} | {"detail": result.info["detail"]}


def test_reach_mode_reports_both_outcomes() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    refused = _reach(closed_port, "reachable")  # keeps trying for SETTLE_S, then reports what it saw
    assert refused["reachable"] == 0 and refused["attempts"] >= 2 and "ConnectionRefusedError" in refused["detail"]

    server = subprocess.Popen(
        [sys.executable, str(PROBE), "serve"],
        env={**os.environ, "BIND_IP": "127.0.0.1", "PORT": str(closed_port), "WAIT_S": "20"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = threading.Event()
        threading.Thread(target=lambda: (server.stderr.readline(), ready.set()), daemon=True).start()
        assert ready.wait(10)
        reached = _reach(closed_port, "reachable")
        assert reached["reachable"] == 1 and reached["attempts"] == 1
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.parametrize("bad", ["maybe"])
def test_reach_mode_rejects_an_unknown_expectation(bad: str) -> None:
    env = {**os.environ, "TARGET": "127.0.0.1", "PORT": "1", "EXPECT": bad}
    done = subprocess.run(
        [sys.executable, str(PROBE), "reach"], check=False, env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode != 0 and "EXPECT='maybe'" in done.stderr


def test_unenforced_policy_fails_even_when_probes_look_right() -> None:
    probes = [_probe("baseline", True, True), _probe("denied", False, False), _probe("allowed", True, True)]
    labels = {"policy": "allow", "message": "not enforced: spec.ingress[0].from[0]: IPv6"}
    warning = Measurement(metric="policy_not_enforced", value=1, unit="count", labels=labels)
    verdict = _verdict([*probes, warning])
    assert verdict.status is Status.FAILED
    assert verdict.detail == "not enforced by the policy agent: allow: not enforced: spec.ingress[0].from[0]: IPv6"


def test_unenforced_policies_are_read_from_the_agents_warnings(api: client.ApiClient, ns: str) -> None:
    from harness.probes.netpolicy import unenforced_policies

    core = client.CoreV1Api(api)
    for reason, kind in (
        ("PolicyNotEnforced", "NetworkPolicy"),
        ("BackOff", "NetworkPolicy"),
        ("PolicyNotEnforced", "Pod"),
    ):
        core.create_namespaced_event(
            ns,
            client.CoreV1Event(
                metadata=client.V1ObjectMeta(generate_name="e-"),
                involved_object=client.V1ObjectReference(kind=kind, name="p", namespace=ns),
                reason=reason,
                message="not enforced: x",
                type="Warning",
            ),
        )
    found = unenforced_policies(Connection(api), ns)
    assert [(m.metric, m.labels) for m in found] == [
        ("policy_not_enforced", {"policy": "p", "message": "not enforced: x"})
    ]
