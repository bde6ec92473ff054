"""A served CRD is only a schema: Istio and Multus count as installed when their agents are there too."""

from __future__ import annotations

from harness.cluster.capabilities import Capabilities, addon_gaps


def test_crds_without_their_agents_are_gaps() -> None:
    gaps = addon_gaps({"istio", "multus", "kueue"}, daemonsets=["kube-proxy"], services=["kubernetes"])
    assert gaps == {"multus": "no multus DaemonSet runs", "istio": "no istiod Service exists (no mesh control plane)"}


def test_agents_present_or_unreadable_leave_the_addon_alone() -> None:
    assert addon_gaps({"istio", "multus"}, daemonsets=["kube-multus-ds"], services=["istiod"]) == {}
    assert addon_gaps({"istio", "multus"}, daemonsets=None, services=None) == {}  # the account could not list them
    assert addon_gaps(set(), daemonsets=[], services=[]) == {}


def test_a_gap_is_named_in_the_skip_reason() -> None:
    caps = Capabilities(
        server_version="v1.37.2", embedded=False, nodes=(), api_groups=frozenset({"networking.istio.io"}),
        addons=frozenset(), storage_classes=(), cni=(), prometheus=(),
        addon_gaps={"istio": "no istiod Service exists (no mesh control plane)"},
    )  # fmt: skip
    assert caps.missing("istio") == (
        "istio is not installed (virtualservices.networking.istio.io is served, but no istiod Service exists "
        "(no mesh control plane))"
    )
    assert caps.missing("kueue") == "kueue is not installed (clusterqueues.kueue.x-k8s.io is not served)"


def test_a_node_agent_that_makes_attachments_acts_on_nads() -> None:
    network = {"mode": "netns", "attachments": "multus-compatible (bridge, macvlan)"}
    assert addon_gaps({"multus"}, daemonsets=[], services=[], pod_network=network) == {}
    assert addon_gaps({"multus"}, daemonsets=[], services=[], pod_network={"mode": "host"}) == {
        "multus": "no multus DaemonSet runs"
    }
