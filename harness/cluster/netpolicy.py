"""Network isolation: the NetworkPolicies the isolation check applies, and the verdict on what probes saw.

Why the harness builds the policies (not a workload manifest): they must go in *between* probes (reachable before,
blocked after default-deny, admitted again by an allow rule), and the suite may not call the API itself. The verdict
is honest about a CNI that ignores NetworkPolicy (flannel without a policy agent, kubenet): traffic that a
default-deny should block but does not is a failure with that reason, never a skip. A policy the agent reports it
cannot fully enforce (a ``PolicyNotEnforced`` Warning) fails the check too. The embedded target enforces policy with
its pod network (harness.podnet); on its host-network fallback the suite skips, naming why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from harness.cluster.manifests import AppliedRef, Applier

__all__ = [
    "IsolationProbe",
    "IsolationVerdict",
    "allow_ingress_from",
    "apply_policies",
    "default_deny_ingress",
    "isolation_verdict",
    "unenforced_policies",
]

UNENFORCED_REASON = "PolicyNotEnforced"  # the Warning the project's policy agent records (harness.podnet)

POLICY_API = "networking.k8s.io/v1"


def default_deny_ingress(name: str = "default-deny-ingress") -> dict[str, Any]:
    """Every pod of the namespace selected, Ingress listed, no rule: nothing may connect in (the Kubernetes docs'
    "Default deny all ingress traffic" policy)."""
    return {
        "apiVersion": POLICY_API,
        "kind": "NetworkPolicy",
        "metadata": {"name": name},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }


def allow_ingress_from(*, name: str, to: Mapping[str, str], from_pods: Mapping[str, str], port: int) -> dict[str, Any]:
    """Allow TCP ``port`` into pods labelled ``to`` from pods (same namespace) labelled ``from_pods``."""
    return {
        "apiVersion": POLICY_API,
        "kind": "NetworkPolicy",
        "metadata": {"name": name},
        "spec": {
            "podSelector": {"matchLabels": dict(to)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": dict(from_pods)}}],
                    "ports": [{"protocol": "TCP", "port": port}],
                }
            ],
        },
    }


def apply_policies(
    api_client: client.ApiClient,
    policies: Sequence[Mapping[str, Any]],
    *,
    namespace: str,
    labels: Mapping[str, str],
    applier: Applier | None = None,
) -> list[AppliedRef]:
    """Create the policies in ``namespace`` with the run's labels (the namespace's deletion removes them)."""
    return (applier or Applier(api_client)).apply([dict(p) for p in policies], namespace=namespace, labels=labels)


@dataclass(frozen=True, slots=True, kw_only=True)
class IsolationProbe:
    """One probe's outcome: the phase, what it expected, what it saw."""

    phase: str
    expected: bool  # True: should connect
    reachable: bool
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class IsolationVerdict:
    ok: bool
    message: str


def unenforced_policies(api_client: client.ApiClient, namespace: str) -> list[str]:
    """``policy: message`` for every Warning a policy agent recorded about a NetworkPolicy of ``namespace`` that it
    cannot enforce completely (reason ``PolicyNotEnforced``)."""
    events = client.CoreV1Api(api_client).list_namespaced_event(namespace).items
    return sorted(
        {
            f"{e.involved_object.name}: {e.message}"
            for e in events
            if e.type == "Warning" and e.reason == UNENFORCED_REASON and e.involved_object.kind == "NetworkPolicy"
        }
    )


def isolation_verdict(
    probes: Sequence[IsolationProbe], *, cni: Sequence[str], embedded: bool, unenforced: Sequence[str] = ()
) -> IsolationVerdict:
    """Judge the phases in order. A baseline that cannot connect makes the rest meaningless (the failure says so);
    a blocked phase that still connects means the CNI does not enforce NetworkPolicy; a policy the agent says it
    cannot fully enforce fails the check even when the probes look right (no silent allow)."""
    if not probes:
        return IsolationVerdict(ok=False, message="no probe ran")
    first = probes[0]
    if first.expected and not first.reachable:
        return IsolationVerdict(
            ok=False,
            message=f"phase {first.phase}: the echo service was unreachable before any policy ({first.detail}); "
            "isolation cannot be judged",
        )
    enforcer = ", ".join(cni) or ("none (embedded target: loopback networking)" if embedded else "none detected")
    problems = []
    for probe in probes:
        if probe.reachable == probe.expected:
            continue
        if probe.expected:
            problems.append(f"phase {probe.phase}: the allow rule did not admit traffic ({probe.detail})")
        else:
            problems.append(
                f"phase {probe.phase}: traffic was not blocked ({probe.detail}): the CNI does not enforce "
                f"NetworkPolicy (CNI: {enforcer})"
            )
    problems += [f"not enforced by the policy agent: {u}" for u in unenforced]
    if problems:
        return IsolationVerdict(ok=False, message="; ".join(problems))
    return IsolationVerdict(
        ok=True, message=f"default-deny blocked and the allow rule admitted traffic (CNI: {enforcer})"
    )
