"""CNI data-path detection against an embedded target (kube-system objects as a Cilium cluster has them), and the
secondary-network probe scripts run on this machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kubernetes import client

from harness.cluster.capabilities import discover
from harness.cluster.cni import data_path
from harness.cluster.target import Connection
from harness.parsers.sentinel import parse_sentinel

ROOT = Path(__file__).resolve().parents[2] / "workloads"


def test_cilium_kube_proxy_replacement_and_kube_proxy(fabric_api: client.ApiClient) -> None:
    core, apps = client.CoreV1Api(fabric_api), client.AppsV1Api(fabric_api)
    assert data_path(Connection(fabric_api), ()).service_path == "unknown"  # no kube-proxy, no Cilium
    assert data_path(Connection(fabric_api), ()).kube_proxy == "absent"
    core.create_namespaced_config_map(
        "kube-system", {"metadata": {"name": "cilium-config"}, "data": {"kube-proxy-replacement": "true"}}
    )
    try:
        path = data_path(Connection(fabric_api), ("cilium",))
        assert (path.cilium_kube_proxy_replacement, path.service_path) == ("true", "cilium-ebpf")
    finally:
        core.delete_namespaced_config_map("cilium-config", "kube-system")
    assert (
        data_path(Connection(fabric_api), ("cilium",)).cilium_kube_proxy_replacement == "unknown"
    )  # config unreadable/absent
    ds = {
        "metadata": {"name": "kube-proxy"},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
            "template": {"metadata": {"labels": {"k8s-app": "kube-proxy"}},
                         "spec": {"containers": [{"name": "kube-proxy", "image": "registry.k8s.io/kube-proxy:v1.33.0",
                                                  "command": ["sleep", "60"]}]}},
        },
    }  # fmt: skip
    apps.create_namespaced_daemon_set("kube-system", ds)
    try:
        assert data_path(Connection(fabric_api), ("calico",)).service_path == "kube-proxy"
    finally:
        apps.delete_namespaced_daemon_set("kube-proxy", "kube-system")


def _run(script: str, **env: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(ROOT / script)], check=False, capture_output=True, text=True, timeout=30,
        env={**os.environ, **env},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = parse_sentinel(done.stdout)
    return {"measurements": {m.metric: m.value for m in result.measurements}, "info": result.info}


def test_interface_probe_reports_what_the_kernel_shows(tmp_path: Path) -> None:
    status = tmp_path / "network-status"
    status.write_text('[{"name": "ns/aibench-secondary", "interface": "net1", "ips": ["10.254.254.7"]}]')
    found = _run("net-multus/iface_probe.py", EXPECTED_INTERFACE="lo", NETWORK_STATUS_FILE=str(status))
    assert "lo" in found["info"]["interfaces"] and found["measurements"]["attached"] == 1
    assert found["info"]["network_status"][0]["interface"] == "net1"
    missing = _run("net-multus/iface_probe.py", EXPECTED_INTERFACE="net1", NETWORK_STATUS_FILE=str(tmp_path / "x"))
    assert (
        missing["measurements"]["attached"] == 0
        and "FileNotFoundError" in missing["info"]["network_status"][0]["error"]
    )


def test_device_probe_reads_sriov_environment() -> None:
    found = _run("net-device-probe/device_probe.py", PCIDEVICE_NVIDIA_COM_SRIOV_IB="0000:3b:00.2,0000:3b:00.3",
                 RESOURCE="nvidia.com/sriov_ib")  # fmt: skip
    assert found["measurements"]["pci_devices"] == 2
    assert found["info"]["pcidevice_env"] == {"PCIDEVICE_NVIDIA_COM_SRIOV_IB": "0000:3b:00.2,0000:3b:00.3"}


def test_cni_agents_outside_kube_system_are_found(fabric_api: client.ApiClient) -> None:
    """The Tigera operator runs calico-node in calico-system: discovery lists DaemonSets in every namespace."""
    core, apps = client.CoreV1Api(fabric_api), client.AppsV1Api(fabric_api)
    core.create_namespace({"metadata": {"name": "calico-system"}})
    ds = {
        "metadata": {"name": "calico-node"},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "calico-node"}},
            "template": {"metadata": {"labels": {"k8s-app": "calico-node"}},
                         "spec": {"containers": [{"name": "calico-node", "image": "quay.io/calico/node:v3.29.1",
                                                  "command": ["sleep", "60"]}]}},
        },
    }  # fmt: skip
    apps.create_namespaced_daemon_set("calico-system", ds)
    try:
        caps = discover(fabric_api, server_version="v1.33.0", embedded=True)
        assert "calico" in caps.cni and caps.missing("cni:calico") is None
    finally:
        core.delete_namespace("calico-system")
