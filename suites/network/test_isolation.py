"""Network isolation (the "network isolation" best practice): a default-deny NetworkPolicy in the test namespace
blocks pod traffic, and an allow rule admits exactly the pods it names.

The check really applies the policies and really probes: a CNI that does not enforce NetworkPolicy fails with that
reason; it is never assumed. The one skip: the embedded target on its host-network fallback (no root or no
``ip``/``nft``), where pods share one network namespace and nothing could enforce a policy; the skip names why.
"""

from __future__ import annotations

import pytest

from harness.cluster.namespaces import run_labels
from harness.collectives import with_labels
from harness.fixture_types import Capabilities, DeployService, HarnessConfig, Profile, RunWorkload, Target, TestRecord
from harness.parsers.sentinel import parse_sentinel
from harness.probes.netpolicy import (
    allow_ingress_from,
    apply_policies,
    default_deny_ingress,
    enforcer,
    unenforced_policies,
)
from harness.thresholds.assertions import assert_passed
from harness.thresholds.model import RuleKind
from harness.thresholds.verdicts import judge

ECHO_LABELS = {"app.kubernetes.io/name": "net-echo"}
PORT = 5401
CLIENT = {"aibench.io/probe-role": "client"}
SETTLE_S = 10  # policy agents (Cilium, Calico) program a new policy within seconds
#: (phase, probe role, should connect, policies applied before the probe)
PHASES = (
    ("baseline", "client", True, ()),
    ("denied", "client", False, (default_deny_ingress(),)),
    (
        "allowed",
        "client",
        True,
        (allow_ingress_from(name="allow-probe-clients", to=ECHO_LABELS, from_pods=CLIENT, port=PORT),),
    ),
    ("other-denied", "other", False, ()),
)


@pytest.mark.network
@pytest.mark.practices
@pytest.mark.conformance
def test_default_deny_blocks_and_allow_rule_admits(
    deploy_service: DeployService,
    run_workload: RunWorkload,
    target: Target,
    namespace: str,
    harness_config: HarnessConfig,
    capabilities: Capabilities,
    request: pytest.FixtureRequest,
    profile: Profile,
    record: TestRecord,
) -> None:
    """Traffic reaches an echo service; after a default-deny ingress policy it does not; an allow rule for the
    probe's label admits it again while pods without that label stay blocked."""
    if capabilities.embedded and capabilities.pod_network.get("mode") == "host":
        pytest.skip(
            "the embedded target runs pods on the host network "
            f"({capabilities.pod_network.get('reason') or 'no pod network'}): no NetworkPolicy can be enforced there"
        )
    evidence = []
    labels = run_labels(harness_config.run_id, request.node.nodeid)
    cni = enforcer(capabilities.cni, embedded=capabilities.embedded)
    with deploy_service("net-echo", port=PORT):
        for phase, role, should_connect, policies in PHASES:
            if policies:
                apply_policies(target, policies, namespace=namespace, labels=labels)
            run = run_workload(
                "net-reach",
                phase=phase,
                role=role,
                port=PORT,
                expect="reachable" if should_connect else "unreachable",
                settle_s=SETTLE_S,
            )
            # the run's logs cover every probe pod of this test so far: read this phase's Job only
            result = parse_sentinel("".join(t for k, t in run.logs.items() if k.startswith(f"reach-{phase}-")))
            evidence += with_labels(
                result.measurements,
                emulated=run.emulated,
                expected=str(int(should_connect)),
                detail=str(result.info.get("detail", "")),
                cni=cni,
            )
    evidence += unenforced_policies(target, namespace)
    verdicts = judge(profile, "net-reach", RuleKind.TRAFFIC_DENIED, evidence)
    record.add(measurements=evidence, checks=verdicts)
    assert_passed(verdicts)
