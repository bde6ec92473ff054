"""The dataplane without an API server: a ClusterIP whose endpoint is on the host's loopback (hostNetwork pods, the
control plane's own servers) is reachable from a pod namespace, and a pod cannot address the host's loopback
directly. Root-only."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from harness.embedded.network import Backend
from harness.podnet import commands
from harness.podnet.commands import NetCommandError
from harness.podnet.dataplane import PodAttachment, PodNetwork, unavailable_reason

WHY = unavailable_reason()
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"no pod network on this host: {WHY}")
CONNECT = (
    "import socket, sys\n"
    "try:\n"
    "    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1.5); print('ok', c.recv(64).decode())\n"
    "except OSError as e:\n"
    "    print('blocked', type(e).__name__)\n"
)


@pytest.fixture
def network() -> Iterator[tuple[PodNetwork, PodAttachment]]:
    net = PodNetwork.create()
    try:
        pod = net.attach({"metadata": {"name": "p", "namespace": "n", "uid": "u-p"}, "spec": {}}, lambda a, b: None)
        yield net, pod
    finally:
        net.stop()


def _from_pod(pod: PodAttachment, ip: str, port: int) -> str:
    argv = ["nsenter", f"--net={pod.netns_path}", sys.executable, "-c", CONNECT, ip, str(port)]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def test_loopback_endpoint_through_a_cluster_ip(network: tuple[PodNetwork, PodAttachment]) -> None:
    net, pod = network
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, peer = server.accept()
            except OSError:
                return
            conn.sendall(peer[0].encode())
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        cluster_ip = str(net.service_subnet.network_address + 7)
        net.sync(cluster_ip, 443, [Backend("127.0.0.1", port)])
        assert _from_pod(pod, cluster_ip, 443) == f"ok {pod.ip}"  # the host's loopback server sees the pod
        assert _from_pod(pod, "127.0.0.1", port).startswith("blocked")  # its own loopback: nothing listens there
        net.remove(cluster_ip)
        assert _from_pod(pod, cluster_ip, 443).startswith("blocked ConnectionRefused")  # no Service: refused
    finally:
        server.close()


def test_refuses_what_could_leave_the_machine(network: tuple[PodNetwork, PodAttachment]) -> None:
    net, _ = network
    with pytest.raises(ValueError, match="outside this cluster's Service range"):
        net.sync("10.96.0.1", 80, [])
    with pytest.raises(ValueError, match="refusing to forward"):
        net.sync(str(net.service_subnet.network_address + 9), 80, [Backend("192.0.2.1", 80)])


def test_a_refused_script_raises_with_nfts_own_message(network: tuple[PodNetwork, PodAttachment]) -> None:
    _, pod = network
    with pytest.raises(NetCommandError, match=r"nft \(netns aib-.*Error"):
        commands.nft("table ip broken {\n  chain c {\n    nonsense here\n  }\n}\n", netns=pod.netns_path.name)
    with pytest.raises(NetCommandError, match="netns aib-"):
        commands.nft("table ip t {\n}\n", netns="aib-000000-0")  # no such namespace
