"""CNI and secondary networks: which CNI carries pod traffic (and whether Cilium's eBPF kube-proxy replacement
serves Services), Multus attachments a pod can use, and RDMA / SR-IOV VF resources a pod can be allocated."""

from __future__ import annotations

import ipaddress

import pytest

from harness.cluster.cni import data_path
from harness.collectives import with_labels
from harness.fixture_types import Capabilities, NodeInfo, RunWorkload, Target, TestRecord
from harness.measurement import Measurement
from harness.parsers.sentinel import parse_sentinel
from harness.probes.topology import hostname_of


@pytest.mark.network
@pytest.mark.conformance
def test_cni_is_identified(target: Target, capabilities: Capabilities, record: TestRecord) -> None:
    """The pod network's CNI is one the harness recognises (Cilium, Calico, Antrea, AWS VPC CNI, Azure CNI...), and
    the report says whether kube-proxy or Cilium's eBPF replacement serves Services."""
    if capabilities.embedded:
        network = capabilities.pod_network
        what = (
            f"its pod network is the node agent's own ({network.get('provider')}: nftables DNAT for Services)"
            if network.get("mode") == "netns"
            else f"pods share the host network ({network.get('reason') or 'no pod network'})"
        )
        pytest.skip(f"the embedded target runs no CNI DaemonSet to identify: {what}")
    path = data_path(target, tuple(capabilities.cni))
    record.add(
        measurements=[
            Measurement(
                metric="cni_detected",
                value=len(path.cni),
                unit="count",
                labels={"cni": ",".join(path.cni) or "none", "kube_proxy": path.kube_proxy,
                        "service_path": path.service_path,
                        "cilium_kube_proxy_replacement": path.cilium_kube_proxy_replacement or "n/a"},
            )
        ]
    )  # fmt: skip
    assert path.cni, (
        "no known CNI DaemonSet in kube-system (looked for cilium, calico-node, flannel, weave-net, aws-node, "
        "azure-cni, antrea-agent, multus); the report cannot say what carries pod traffic"
    )


@pytest.mark.network
@pytest.mark.conformance
@pytest.mark.requires("multus")
def test_multus_attachment_gives_the_pod_an_interface(
    run_workload: RunWorkload, capabilities: Capabilities, record: TestRecord
) -> None:
    """A pod that names a NetworkAttachmentDefinition gets the extra interface (net1) and Multus reports the
    attachment in its network-status."""
    params = {}
    if capabilities.pod_network.get("macvlan_parent"):
        # the project's node agent makes attachments itself: macvlan only on the parent link it created, addresses
        # only from its secondary range (RFC 2544's 198.18.0.0/15), never the cluster-specific eth0 default
        secondary = ipaddress.IPv4Network(capabilities.pod_network["secondary_range"])
        params = {
            "master": capabilities.pod_network["macvlan_parent"],
            "subnet": str(next(secondary.subnets(new_prefix=24))),
        }
    run = run_workload("net-multus", **params)
    result = parse_sentinel(run.log_of("probe"))
    record.add(measurements=with_labels(result.measurements, emulated=run.emulated))
    interfaces = result.info["interfaces"]
    assert "net1" in interfaces, f"the pod's interfaces are {', '.join(interfaces)}: no net1 from the attachment"
    names = [s.get("name", "") for s in result.info["network_status"] if isinstance(s, dict)]
    assert any(n.endswith("aibench-secondary") for n in names), f"Multus network-status names {names}"


@pytest.mark.network
@pytest.mark.conformance
@pytest.mark.rdma
def test_rdma_resource_is_allocatable(rdma_node: NodeInfo, run_workload: RunWorkload, record: TestRecord) -> None:
    """A pod requesting one unit of the node's RDMA / SR-IOV resource is scheduled and sees the device it got
    (a VF's PCI address in PCIDEVICE_*, or verbs devices under /dev/infiniband)."""
    resource = sorted(rdma_node.rdma_resources)[0]
    run_name = "probe-" + "".join(c if c.isalnum() else "-" for c in rdma_node.name.lower())[:40].rstrip("-")
    run = run_workload("net-device-probe", node=hostname_of(rdma_node), resource=resource, run_name=run_name)
    result = parse_sentinel(run.log_of("probe"))
    record.add(measurements=with_labels(result.measurements, emulated=run.emulated, node=rdma_node.name))
    got = {m.metric: m.value for m in result.measurements}
    assert got["pci_devices"] > 0 or got["uverbs_devices"] > 0, (
        f"{rdma_node.name}: a pod granted {resource} sees no PCIDEVICE_* variable and no /dev/infiniband/uverbs* "
        f"(env {result.info['pcidevice_env']}, /dev/infiniband {result.info['dev_infiniband']})"
    )
