"""Ranges, names, IPAM, Service DNAT rendering and bandwidth parsing: the pure parts of the pod network."""

from __future__ import annotations

import ipaddress
import random

import pytest

from harness.embedded.network import Backend
from harness.podnet import bandwidth, ranges
from harness.podnet.ipam import IpamError, RangePool, require_bench
from harness.podnet.pods import mac_for
from harness.podnet.services import check_backend, dnat_rules, localnet_rules, render_service_table


def test_ranges_stay_clear_of_the_real_control_plane_and_inside_the_benchmark_range() -> None:
    for mine in (ranges.POD_RANGE, ranges.SERVICE_RANGE, ranges.SECONDARY_RANGE):
        assert mine.subnet_of(ranges.BENCH_RANGE)
        assert not any(mine.overlaps(real) for real in ranges.REAL_CONTROL_PLANE_RANGES)


def test_pick_subnet_avoids_live_clusters() -> None:
    rng = random.Random(1)
    taken = [ipaddress.IPv4Network(f"198.18.{128 + 16 * i}.0/20") for i in range(7)]
    assert ranges.pick_subnet(ranges.POD_RANGE, taken, rng) == ipaddress.IPv4Network("198.18.240.0/20")
    with pytest.raises(RuntimeError, match="in use"):
        ranges.pick_subnet(ranges.POD_RANGE, [ranges.POD_RANGE], rng)


def test_names_fit_the_kernel_limit() -> None:
    cid = "abcdef"
    names = [ranges.bridge_name(cid), ranges.veth_name(cid, 0xFFFFF), ranges.attachment_bridge_name(cid, 255),
             ranges.attachment_veth_name(cid, 0xFFFFF), ranges.macvlan_parent_name(cid) + "p"]  # fmt: skip
    assert all(len(n) <= 15 for n in names) and len(set(names)) == len(names)


def test_pool_reuses_released_addresses_last() -> None:
    pool = RangePool(ipaddress.IPv4Network("198.18.9.0/29"), reserved=frozenset({ipaddress.IPv4Address("198.18.9.1")}))
    got = [pool.allocate() for _ in range(5)]
    assert [str(a) for a in got] == [f"198.18.9.{i}" for i in range(2, 7)]
    with pytest.raises(IpamError, match="exhausted"):
        pool.allocate()
    pool.release(got[0])
    assert pool.allocate() == got[0]
    pool.claim(ipaddress.IPv4Address("198.18.9.1"))
    with pytest.raises(IpamError, match="already in use"):
        pool.claim(ipaddress.IPv4Address("198.18.9.1"))


def test_only_the_benchmark_range() -> None:
    assert str(require_bench("198.19.1.0/24", "x")) == "198.19.1.0/24"
    for bad in ("10.0.0.0/8", "198.20.0.1", "::1", "nonsense"):
        with pytest.raises(IpamError):
            require_bench(bad, "x")
    with pytest.raises(ValueError, match="refusing"):
        check_backend("8.8.8.8")
    assert str(check_backend("127.0.0.1")) == "127.0.0.1"


def test_mac_follows_cni_convention() -> None:
    assert mac_for(ipaddress.IPv4Address("198.18.128.5")) == "0a:58:c6:12:80:05"


def test_dnat_rules_balance_and_map_loopback_through_the_gateway() -> None:
    services = {
        ("198.19.0.10", 80, "tcp"): (Backend("198.18.128.2", 8080), Backend("198.18.128.3", 8080)),
        ("198.19.0.11", 53, "udp"): (Backend("198.18.128.4", 5353),),
        ("198.19.0.12", 443, "tcp"): (Backend("127.0.0.1", 6443),),
        ("198.19.0.13", 80, "tcp"): (),
    }
    pod_rules = dnat_rules(services, gateway="198.18.128.1")
    assert pod_rules == [
        "ip daddr 198.19.0.10 tcp dport 80 dnat ip to numgen inc mod 2 map "
        "{ 0 : 198.18.128.2 . 8080, 1 : 198.18.128.3 . 8080 }",
        "ip daddr 198.19.0.11 udp dport 53 dnat ip to 198.18.128.4:5353",
        "ip daddr 198.19.0.12 tcp dport 443 dnat ip to 198.18.128.1:6443",
    ]
    assert dnat_rules(services, gateway=None)[2] == "ip daddr 198.19.0.12 tcp dport 443 dnat ip to 127.0.0.1:6443"
    assert localnet_rules(services, bridge="aibabc", gateway="198.18.128.1") == [
        'iifname "aibabc" ip daddr 198.18.128.1 tcp dport 6443 dnat ip to 127.0.0.1:6443'
    ]
    table = render_service_table("aibsvc", services, service_cidr="198.19.0.0/20", gateway="198.18.128.1")
    assert "ip daddr 198.19.0.0/20 meta l4proto tcp reject with tcp reset" in table  # no endpoints: refused


def test_bandwidth_annotations() -> None:
    assert bandwidth.limits({bandwidth.INGRESS: "10M", bandwidth.EGRESS: "1G"}) == (10_000_000, 1_000_000_000)
    assert bandwidth.limits({}) == (None, None)
    with pytest.raises(bandwidth.BandwidthError, match="ingress-bandwidth"):
        bandwidth.limits({bandwidth.INGRESS: "10"})
    with pytest.raises(bandwidth.BandwidthError, match="egress-bandwidth"):
        bandwidth.limits({bandwidth.EGRESS: "fast"})
    assert bandwidth.tbf_args(10_000_000)[:3] == ["tbf", "rate", "10000000bit"]
