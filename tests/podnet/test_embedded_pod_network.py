"""End to end on this machine: the embedded target with pods in their own network namespaces.

Root-only (network namespaces, veths, nftables): skipped elsewhere, naming why. One cluster for the module; every
check reaches real pods through real namespaces: Service DNAT from a pod and from the host, NetworkPolicy
default-deny / allow-from-label / egress deny, an unenforceable policy reported, Multus attachments, a missing
NetworkAttachmentDefinition keeping a pod Pending, and a clean teardown.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eventually import eventually

from harness.embedded.cluster import EmbeddedCluster, EmbeddedOptions
from harness.podnet.dataplane import unavailable_reason
from harness.podnet.ranges import POD_RANGE, SERVICE_RANGE

WHY = unavailable_reason()
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"no pod network on this host: {WHY}")

SERVER = (
    "import socket\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('0.0.0.0', 8080)); s.listen(64)\n"
    "while True:\n"
    "    c, peer = s.accept(); c.sendall(peer[0].encode()); c.close()\n"
)
CONNECT = (
    "import socket, sys\n"
    "try:\n"
    "    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1.5); print('ok', c.recv(64).decode())\n"
    "except OSError as e:\n"
    "    print('blocked', type(e).__name__)\n"
)
NS = "podnet"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    options = EmbeddedOptions(state_dir=tmp_path_factory.mktemp("podnet"), system_services=False)
    with EmbeddedCluster(options) as running:
        running.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        yield running


def _pod(
    name: str, labels: dict[str, str], argv: list[str], annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": labels, "annotations": annotations or {}},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {"name": "c", "image": "none", "command": argv, "ports": [{"name": "echo", "containerPort": 8080}]}
            ],
        },
    }


def _running(cluster: EmbeddedCluster, name: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        pod = cluster.store.find(("", "pods"), NS, name)
        ok = pod and pod.get("status", {}).get("phase") == "Running" and pod["status"].get("podIP")
        return pod if ok else None

    return eventually(check, timeout_s=20, what=f"pod {name} running")


def _exec(cluster: EmbeddedCluster, pod: dict[str, Any], *argv: str) -> str:
    result = cluster.kubelets.containers.running_container(pod, "c").run_exec(argv, timeout_s=60)
    assert result.exit_code == 0, result.output
    return result.output.decode().strip()


def _connect_from(cluster: EmbeddedCluster, pod: dict[str, Any], ip: str, port: int) -> str:
    return _exec(cluster, pod, sys.executable, "-c", CONNECT, ip, str(port))


def _connect_from_host(ip: str, port: int) -> str:
    return subprocess.run(
        [sys.executable, "-c", CONNECT, ip, str(port)], check=False, capture_output=True, text=True
    ).stdout.strip()


def _policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


def _synced(cluster: EmbeddedCluster) -> None:
    assert cluster.podnet is not None and cluster.podnet.policy is not None
    assert cluster.podnet.policy.wait_synced(5), "the policy agent did not program the change within 5 s"


@pytest.fixture(scope="module")
def pods(cluster: EmbeddedCluster) -> dict[str, dict[str, Any]]:
    cluster.create(_pod("srv", {"app": "srv"}, [sys.executable, "-c", SERVER]))
    cluster.create(_pod("cli", {"role": "client"}, ["sleep", "600"]))
    cluster.create(_pod("other", {"role": "other"}, ["sleep", "600"]))
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "srv", "namespace": NS},
            "spec": {"selector": {"app": "srv"}, "ports": [{"port": 80, "targetPort": 8080}]},
        }
    )
    return {name: _running(cluster, name) for name in ("srv", "cli", "other")}


def test_pods_get_their_own_namespace_and_addresses(cluster: EmbeddedCluster, pods: dict[str, dict[str, Any]]) -> None:
    assert cluster.podnet is not None
    for pod in pods.values():
        ip = ipaddress.IPv4Address(pod["status"]["podIP"])
        assert ip in cluster.podnet.pod_subnet and cluster.podnet.pod_subnet.subnet_of(POD_RANGE)
        assert "network=pod-netns" in pod["metadata"]["annotations"]["aibench.io/runtime"]
        status = json.loads(pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"])
        assert status[0]["default"] is True and status[0]["ips"] == [str(ip)]
    assert cluster.service_network.subnet_of(SERVICE_RANGE)
    interfaces = _exec(cluster, pods["cli"], "ls", "/sys/class/net").split()
    assert sorted(interfaces) == ["eth0", "lo"], interfaces
    routes = _exec(cluster, pods["cli"], "ip", "route")
    assert f"default via {cluster.podnet.gateway}" in routes


def test_service_reached_from_pod_and_host_with_client_address_kept(
    cluster: EmbeddedCluster, pods: dict[str, dict[str, Any]]
) -> None:
    svc = cluster.store.find(("", "services"), NS, "srv")
    assert svc is not None
    cluster_ip = svc["spec"]["clusterIP"]
    cli_ip = pods["cli"]["status"]["podIP"]
    eventually(lambda: _connect_from(cluster, pods["cli"], cluster_ip, 80) == f"ok {cli_ip}", timeout_s=10,
               what="the ClusterIP from a pod answers with the client pod's own address")  # fmt: skip
    assert cluster.podnet is not None
    assert _connect_from_host(cluster_ip, 80) == f"ok {cluster.podnet.gateway}"
    assert _connect_from_host(cluster_ip, 81).startswith("blocked")  # no such port: refused, not hung


def test_default_deny_then_allow_from_label(cluster: EmbeddedCluster, pods: dict[str, dict[str, Any]]) -> None:
    srv_ip = pods["srv"]["status"]["podIP"]
    assert _connect_from(cluster, pods["cli"], srv_ip, 8080).startswith("ok")
    cluster.create(_policy("deny", {"podSelector": {}, "policyTypes": ["Ingress"]}))
    _synced(cluster)
    assert _connect_from(cluster, pods["cli"], srv_ip, 8080).startswith("blocked")
    assert _connect_from_host(srv_ip, 8080).startswith("ok")  # the node itself stays allowed (kubelet probes)
    cluster.create(
        _policy(
            "allow-clients",
            {
                "podSelector": {"matchLabels": {"app": "srv"}},
                "ingress": [
                    {"from": [{"podSelector": {"matchLabels": {"role": "client"}}}], "ports": [{"port": "echo"}]}
                ],
            },
        )
    )
    _synced(cluster)
    assert _connect_from(cluster, pods["cli"], srv_ip, 8080).startswith("ok")
    assert _connect_from(cluster, pods["other"], srv_ip, 8080).startswith("blocked")
    # a client that starts after the policy is admitted once its address is published
    cluster.create(_pod("late-client", {"role": "client"}, ["sleep", "600"]))
    late = _running(cluster, "late-client")
    eventually(lambda: _connect_from(cluster, late, srv_ip, 8080).startswith("ok"), timeout_s=5,
               what="a client created after the allow rule is admitted")  # fmt: skip
    for name in ("deny", "allow-clients"):
        cluster.store.delete(cluster.registry.get("networking.k8s.io", "networkpolicies"), NS, name)
    _synced(cluster)
    assert _connect_from(cluster, pods["other"], srv_ip, 8080).startswith("ok")


def test_egress_deny(cluster: EmbeddedCluster, pods: dict[str, dict[str, Any]]) -> None:
    srv_ip = pods["srv"]["status"]["podIP"]
    cluster.create(
        _policy("no-egress", {"podSelector": {"matchLabels": {"role": "client"}}, "policyTypes": ["Egress"]})
    )
    _synced(cluster)
    assert _connect_from(cluster, pods["cli"], srv_ip, 8080).startswith("blocked")
    assert _connect_from(cluster, pods["other"], srv_ip, 8080).startswith("ok")
    cluster.store.delete(cluster.registry.get("networking.k8s.io", "networkpolicies"), NS, "no-egress")
    _synced(cluster)
    assert _connect_from(cluster, pods["cli"], srv_ip, 8080).startswith("ok")


def test_unenforceable_policy_is_kept_and_reported(cluster: EmbeddedCluster, pods: dict[str, dict[str, Any]]) -> None:
    spec = {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "fd00::/8"}}]}]}
    cluster.create(_policy("v6-only", spec))
    _synced(cluster)

    def warning() -> str:
        for event in cluster.store.iter(("", "events"), NS):
            if event["involvedObject"].get("name") == "v6-only" and event.get("reason") == "PolicyNotEnforced":
                return str(event["message"])
        return ""

    message = eventually(warning, timeout_s=5, what="a PolicyNotEnforced event")
    assert "IPv6" in message and "not enforced" in message
    assert cluster.store.find(("networking.k8s.io", "networkpolicies"), NS, "v6-only") is not None
    cluster.store.delete(cluster.registry.get("networking.k8s.io", "networkpolicies"), NS, "v6-only")
    _synced(cluster)


def _nad(name: str, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"config": json.dumps(config)},
    }


def _events(cluster: EmbeddedCluster, name: str) -> list[str]:
    return [e["message"] for e in cluster.store.iter(("", "events"), NS) if e["involvedObject"].get("name") == name]


def test_multus_attachments(cluster: EmbeddedCluster, pods: dict[str, dict[str, Any]]) -> None:
    assert cluster.podnet is not None
    parent = json.loads(cluster.podnet.node_annotation())["macvlan_parent"]
    cluster.create(_nad("sec", {"cniVersion": "0.3.1", "name": "sec", "type": "bridge", "bridge": "br-sec",
                                "ipam": {"type": "host-local", "subnet": "198.18.5.0/24"}}))  # fmt: skip
    cluster.create(_nad("mv", {"cniVersion": "0.3.1", "name": "mv", "type": "macvlan", "master": parent,
                               "mode": "bridge", "ipam": {"type": "static"}}))  # fmt: skip
    networks = json.dumps([{"name": "sec"}, {"name": "mv", "ips": ["198.18.6.7/24"], "interface": "fast0"}])
    cluster.create(_pod("multi", {"app": "multi"}, ["sleep", "600"], {"k8s.v1.cni.cncf.io/networks": networks}))
    cluster.create(_pod("multi2", {"app": "multi"}, ["sleep", "600"], {"k8s.v1.cni.cncf.io/networks": "sec"}))
    pod, pod2 = _running(cluster, "multi"), _running(cluster, "multi2")
    status = json.loads(pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"])
    assert [s["name"] for s in status] == ["aibench-podnet", f"{NS}/sec", f"{NS}/mv"]
    assert status[1]["interface"] == "net1" and ipaddress.IPv4Address(status[1]["ips"][0]) in ipaddress.IPv4Network(
        "198.18.5.0/24"
    )
    assert status[2]["interface"] == "fast0" and status[2]["ips"] == ["198.18.6.7"]
    assert sorted(_exec(cluster, pod, "ls", "/sys/class/net").split()) == ["eth0", "fast0", "lo", "net1"]
    addresses = _exec(cluster, pod, "ip", "-4", "-o", "addr", "show", "dev", "net1")
    assert status[1]["ips"][0] in addresses
    # the secondary network carries pod-to-pod traffic
    net1_of_2 = json.loads(pod2["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"])[1]["ips"][0]
    assert net1_of_2 != status[1]["ips"][0]
    ping = _exec(cluster, pod, sys.executable, "-c", CONNECT, net1_of_2, "9")
    assert ping.startswith("blocked ConnectionRefused"), ping  # an RST from the peer: it is reachable on net1


def test_attachment_problems_keep_the_pod_pending_with_an_event(
    cluster: EmbeddedCluster, pods: dict[str, dict[str, Any]]
) -> None:
    cluster.create(_nad("outside", {"cniVersion": "0.3.1", "name": "outside", "type": "bridge",
                                    "ipam": {"type": "host-local", "subnet": "10.0.0.0/24"}}))  # fmt: skip
    cluster.create(_nad("on-eth0", {"cniVersion": "0.3.1", "name": "on-eth0", "type": "macvlan", "master": "eth0",
                                    "ipam": {"type": "host-local", "subnet": "198.18.7.0/24"}}))  # fmt: skip
    cases = {"nonad": ("does-not-exist", "not found"), "outside": ("outside", "outside 198.18.0.0/15"),
             "on-eth0": ("on-eth0", "is not a link this agent created")}  # fmt: skip
    for name, (network, _) in cases.items():
        cluster.create(_pod(name, {}, ["sleep", "600"], {"k8s.v1.cni.cncf.io/networks": network}))
    for name, (_, text) in cases.items():
        message = eventually(
            lambda n=name, t=text: next((m for m in _events(cluster, n) if t in m), None),
            timeout_s=10,
            what=f"a FailedCreatePodSandBox event on {name} naming {text!r}",
        )
        assert message.startswith("Failed to create pod sandbox")
        pod = cluster.store.find(("", "pods"), NS, name)
        assert pod is not None and pod["status"].get("phase", "Pending") == "Pending" and not pod["status"].get("podIP")


def test_teardown_removes_everything(tmp_path: Path) -> None:
    with EmbeddedCluster(EmbeddedOptions(state_dir=tmp_path, system_services=False)) as other:
        assert other.podnet is not None
        cid = other.podnet.cluster_id
        other.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        other.create(_pod("p", {}, ["sleep", "60"]), namespace=NS)
        eventually(lambda: (other.store.find(("", "pods"), NS, "p") or {}).get("status", {}).get("podIP"),
                   timeout_s=15, what="pod addressed")  # fmt: skip
        assert [p.name for p in Path("/run/netns").iterdir() if cid in p.name], "the pod has no namespace"
    links = subprocess.run(["ip", "-o", "link"], check=False, capture_output=True, text=True).stdout
    tables = subprocess.run(["nft", "list", "tables"], check=False, capture_output=True, text=True).stdout
    netns = [p.name for p in Path("/run/netns").iterdir()] if Path("/run/netns").is_dir() else []
    assert cid not in links and cid not in tables and not [n for n in netns if cid in n]
    routes = subprocess.run(
        ["ip", "route", "show", "type", "blackhole"], check=False, capture_output=True, text=True
    ).stdout
    assert "198.18.0.0/15" in routes  # never removed


@pytest.mark.skipif(shutil.which("iperf3") is None, reason="iperf3 is not installed (apt-get install iperf3)")
def test_bandwidth_annotations_shape_traffic(cluster: EmbeddedCluster, pods: dict[str, dict[str, Any]]) -> None:
    annotations = {"kubernetes.io/ingress-bandwidth": "10M", "kubernetes.io/egress-bandwidth": "20M"}
    cluster.create(_pod("shaped", {"app": "shaped"}, ["iperf3", "-s", "-p", "5201"], annotations))
    shaped = _running(cluster, "shaped")
    assert cluster.podnet is not None
    netns = cluster.podnet.netns_of(shaped["metadata"]["uid"])
    assert netns is not None
    egress = subprocess.run(["tc", "-n", netns.name, "qdisc", "show", "dev", "eth0"], check=True, capture_output=True,
                            text=True).stdout  # fmt: skip
    assert "tbf" in egress and "rate 20Mbit" in egress
    ip = shaped["status"]["podIP"]

    def iperf() -> str:
        argv = ("iperf3", "-c", ip, "-p", "5201", "-t", "2", "-J")
        result = cluster.kubelets.containers.running_container(pods["cli"], "c").run_exec(argv, timeout_s=60)
        return result.output.decode() if result.exit_code == 0 else ""

    report = eventually(iperf, timeout_s=15, interval_s=0.2, what="an iperf3 run against the shaped pod")
    received = json.loads(report)["end"]["sum_received"]["bits_per_second"]
    assert 1e6 < received <= 12e6, f"{received / 1e6:.1f} Mbit/s into a pod limited to 10 Mbit/s"
