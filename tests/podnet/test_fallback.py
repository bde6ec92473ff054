"""Without root, CAP_NET_ADMIN, ``ip`` or ``nft`` the embedded target keeps today's host network and says so: in the
host Node's ``aibench.io/pod-network`` (capabilities, run.json) and in every pod's runtime annotation."""

from __future__ import annotations

import ipaddress
import json
import sys
from pathlib import Path

import pytest
from eventually import eventually

from harness.embedded import cluster as cluster_module
from harness.embedded.cluster import EmbeddedCluster, EmbeddedOptions
from harness.embedded.network import POD_NETWORK
from harness.podnet import commands


def test_fallback_is_labelled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster_module, "unavailable_reason", lambda: "not root and no CAP_NET_ADMIN")
    with EmbeddedCluster(EmbeddedOptions(state_dir=tmp_path, system_services=False)) as cluster:
        assert cluster.podnet is None
        node = next(iter(cluster.store.iter(("", "nodes"))))
        network = json.loads(node["metadata"]["annotations"]["aibench.io/pod-network"])
        assert network == {"mode": "host", "reason": "not root and no CAP_NET_ADMIN", "provider": "none"}
        container = {"name": "c", "image": "none", "command": [sys.executable, "-c", "0"]}
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [container]}}
        cluster.create(pod, namespace="default")

        def annotated() -> dict[str, str] | None:
            pod = cluster.store.find(("", "pods"), "default", "p") or {}
            return (pod.get("metadata") or {}).get("annotations") if (pod.get("status") or {}).get("podIP") else None

        annotations = eventually(annotated, timeout_s=15, what="the pod addressed")
        assert annotations["aibench.io/runtime"].endswith("network=host (not root and no CAP_NET_ADMIN)")
        stored = cluster.store.find(("", "pods"), "default", "p")
        assert stored is not None
        assert ipaddress.IPv4Address(stored["status"]["podIP"]) in POD_NETWORK  # loopback, as before
        assert "k8s.v1.cni.cncf.io/network-status" not in annotations


def test_reasons_name_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commands.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(commands, "has_cap_net_admin", lambda: False)
    assert commands.unavailable_reason() == "not root and no CAP_NET_ADMIN"
    monkeypatch.setattr(commands.os, "geteuid", lambda: 0)
    monkeypatch.setattr(commands.shutil, "which", lambda tool: None if tool == "nft" else f"/usr/sbin/{tool}")
    assert commands.unavailable_reason() == "missing command(s): nft (apt-get install nftables)"
