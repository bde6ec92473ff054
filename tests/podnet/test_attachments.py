"""Multus' annotation (both forms), NAD configs, network-status and the 198.18.0.0/15 rule, without root."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.podnet.attachments import (
    Attached,
    AttachmentError,
    NetworkRequest,
    nad_crd,
    network_status,
    parse_config,
    parse_networks,
)


def test_comma_form_with_namespaces_and_interfaces() -> None:
    got = parse_networks("net-a, other/net-b@fast0,net-c", "ns")
    assert got == [
        NetworkRequest(namespace="ns", name="net-a"),
        NetworkRequest(namespace="other", name="net-b", interface="fast0"),
        NetworkRequest(namespace="ns", name="net-c"),
    ]


def test_json_form() -> None:
    text = json.dumps(
        [{"name": "a", "namespace": "x", "interface": "eth1", "ips": ["198.18.1.2/24"], "mac": "0a:00:00:00:00:01"}]
    )
    assert parse_networks(text, "ns") == [
        NetworkRequest(namespace="x", name="a", interface="eth1", ips=("198.18.1.2/24",), mac="0a:00:00:00:00:01")
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[{", "not valid JSON"),
        ('{"name": "a"}', "must be a list"),
        ('[{"nom": "a"}]', "needs a string 'name'"),
        ("Bad_Name", "not a valid network name"),
        ("a@eth0", "not allowed"),
    ],
)
def test_malformed_annotations_are_refused(text: str, message: str) -> None:
    with pytest.raises(AttachmentError, match=message):
        parse_networks(text, "ns")


def nad(config: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": "n"}, "spec": {"config": json.dumps(config)}}


def test_bridge_with_host_local_ranges_and_conflist() -> None:
    cfg = parse_config(nad({"name": "n", "plugins": [{"type": "bridge", "bridge": "br1", "ipam": {"type": "host-local",
        "ranges": [[{"subnet": "198.18.9.0/24", "rangeStart": "198.18.9.10", "rangeEnd": "198.18.9.20"}]]}},
        {"type": "tuning"}]}))  # fmt: skip
    assert cfg.kind == "bridge" and cfg.bridge == "br1" and str(cfg.subnet) == "198.18.9.0/24"
    assert str(cfg.range_start) == "198.18.9.10" and str(cfg.range_end) == "198.18.9.20"


def test_static_ipam_and_macvlan() -> None:
    cfg = parse_config(nad({"type": "macvlan", "master": "aimabc123", "mode": "bridge",
                            "ipam": {"type": "static", "addresses": [{"address": "198.18.3.4/24"}]}}))  # fmt: skip
    assert cfg.kind == "macvlan" and cfg.master == "aimabc123" and [str(a) for a in cfg.addresses] == ["198.18.3.4/24"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"type": "bridge", "ipam": {"type": "host-local", "subnet": "10.254.254.0/24"}}, "outside 198.18.0.0/15"),
        ({"type": "macvlan", "ipam": {"type": "static", "addresses": [{"address": "192.168.1.5/24"}]}}, "outside"),
        ({"type": "sriov"}, "not supported"),
        ({"type": "bridge", "ipam": {"type": "dhcp"}}, "IPAM type 'dhcp' is not supported"),
        ({"type": "bridge", "ipam": {"type": "host-local"}}, "needs a subnet"),
    ],
)
def test_configs_that_are_refused(config: dict[str, Any], message: str) -> None:
    with pytest.raises(AttachmentError, match=message):
        parse_config(nad(config))
    with pytest.raises(AttachmentError, match="not JSON"):
        parse_config({"metadata": {}, "spec": {"config": "{"}})


def test_network_status_has_multus_shape() -> None:
    import ipaddress

    attached = Attached(
        request=NetworkRequest(namespace="ns", name="sec"),
        interface="net1",
        addresses=(ipaddress.IPv4Interface("198.18.5.2/24"),),
        mac="0a:58:c6:12:05:02",
        pool_key=None,
    )
    status = json.loads(network_status("198.18.128.2", "0a:58:c6:12:80:02", [attached]))
    assert status == [
        {"name": "aibench-podnet", "interface": "eth0", "ips": ["198.18.128.2"], "mac": "0a:58:c6:12:80:02",
         "default": True, "dns": {}},
        {"name": "ns/sec", "interface": "net1", "ips": ["198.18.5.2"], "mac": "0a:58:c6:12:05:02", "dns": {}},
    ]  # fmt: skip


def test_nad_crd_uses_the_stored_multus_schema() -> None:
    crd = nad_crd()
    assert crd["metadata"]["name"] == "network-attachment-definitions.k8s.cni.cncf.io"
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert schema["properties"]["spec"]["properties"]["config"]["type"] == "string"
