"""The NetworkPolicy compiler (pure): kube's semantics turned into nftables accept rules, and what it refuses."""

from __future__ import annotations

from typing import Any

from harness.podnet.policy import OPEN, PodRules, compile_policies, render_table


def pod(name: str, ns: str, ip: str | None, labels: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    ports = extra.pop("ports", [])
    return {
        "metadata": {"name": name, "namespace": ns, "uid": f"{ns}-{name}", "labels": labels or {}},
        "spec": {"containers": [{"name": "c", "ports": ports}], **extra},
        "status": {"podIP": ip, "phase": "Running"} if ip else {"phase": "Pending"},
    }


def policy(name: str, ns: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec}


NAMESPACES = [
    {"metadata": {"name": "a", "labels": {"team": "x"}}},
    {"metadata": {"name": "b", "labels": {"team": "y"}}},
]
PODS = [
    pod("web", "a", "198.18.128.2", {"app": "web"}, ports=[{"name": "http", "containerPort": 8080}]),
    pod("cli", "a", "198.18.128.3", {"role": "client"}),
    pod("cli-b", "b", "198.18.128.4", {"role": "client"}),
    pod("db", "b", "198.18.128.5", {"app": "db"}, ports=[{"name": "sql", "containerPort": 5432}]),
    pod("pending", "a", None, {"role": "client"}),
    pod("hostnet", "a", "198.18.128.9", {"role": "client"}, hostNetwork=True),
    pod("done", "a", "198.18.128.10", {"role": "client"}),
]
PODS[-1]["status"]["phase"] = "Succeeded"
ALL = [p["metadata"]["uid"] for p in PODS]


def rules(policies: list[dict[str, Any]], uid: str = "a-web") -> PodRules:
    return compile_policies(policies, PODS, NAMESPACES, local_uids=ALL).rules[uid]


def test_unselected_pods_stay_open() -> None:
    assert rules([]) == OPEN
    assert rules([policy("p", "b", {"podSelector": {}})]) == OPEN  # another namespace's policy


def test_default_deny_ingress_isolates_with_no_rule() -> None:
    got = rules([policy("deny", "a", {"podSelector": {}, "policyTypes": ["Ingress"]})])
    assert got.ingress == () and got.egress is None


def test_policy_types_default_to_ingress_plus_egress_when_given() -> None:
    got = rules([policy("p", "a", {"podSelector": {}, "egress": [{}]})])
    assert got.ingress == () and got.egress == ("accept",)


def test_pod_selector_peer_lists_only_running_pod_network_pods_of_the_namespace() -> None:
    spec = {
        "podSelector": {"matchLabels": {"app": "web"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}],
    }
    assert rules([policy("p", "a", spec)]).ingress == ("ip saddr 198.18.128.3 accept",)  # not pending/hostNetwork/done


def test_namespace_selector_and_the_combination() -> None:
    ns_only = {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "y"}}}]}]}
    assert rules([policy("p", "a", ns_only)]).ingress == ("ip saddr { 198.18.128.4, 198.18.128.5 } accept",)
    peer = {"namespaceSelector": {"matchLabels": {"team": "y"}}, "podSelector": {"matchLabels": {"role": "client"}}}
    both = {"podSelector": {}, "ingress": [{"from": [peer]}]}
    assert rules([policy("p", "a", both)]).ingress == ("ip saddr 198.18.128.4 accept",)
    expression = {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["b"]}
    by_name = {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {"matchExpressions": [expression]}}]}]}
    assert rules([policy("p", "a", by_name)]).ingress == ("ip saddr { 198.18.128.4, 198.18.128.5 } accept",)


def test_ip_block_with_except_and_ports() -> None:
    spec = {
        "podSelector": {},
        "ingress": [
            {
                "from": [{"ipBlock": {"cidr": "198.18.0.0/16", "except": ["198.18.128.0/24", "198.18.1.0/24"]}}],
                "ports": [{"port": 80}, {"protocol": "UDP", "port": 53}, {"port": 9000, "endPort": 9100}],
            }
        ],
    }
    assert rules([policy("p", "a", spec)]).ingress == (
        "ip saddr 198.18.0.0/16 ip saddr != { 198.18.1.0/24, 198.18.128.0/24 } tcp dport { 80, 9000-9100 } accept",
        "ip saddr 198.18.0.0/16 ip saddr != { 198.18.1.0/24, 198.18.128.0/24 } udp dport 53 accept",
    )


def test_protocol_without_port_and_no_peers_means_everyone() -> None:
    spec = {"podSelector": {}, "ingress": [{"ports": [{"protocol": "SCTP"}]}]}
    assert rules([policy("p", "a", spec)]).ingress == ("meta l4proto sctp accept",)


def test_named_ports_resolve_on_the_destination() -> None:
    ingress = {"podSelector": {}, "ingress": [{"ports": [{"port": "http"}]}]}
    assert rules([policy("p", "a", ingress)]).ingress == ("tcp dport 8080 accept",)
    assert rules([policy("p", "a", ingress)], uid="a-cli").ingress == ()  # cli has no port named http
    egress = {"podSelector": {"matchLabels": {"role": "client"}}, "policyTypes": ["Egress"],
              "egress": [{"to": [{"namespaceSelector": {}}], "ports": [{"port": "sql"}, {"port": 443}]}]}  # fmt: skip
    got = rules([policy("p", "a", egress)], uid="a-cli").egress
    assert got is not None
    assert "ip daddr 198.18.128.5 tcp dport 5432 accept" in got
    assert any(line.endswith("tcp dport 443 accept") and line.startswith("ip daddr {") for line in got)


def test_rules_of_several_policies_are_a_union() -> None:
    a = policy("a", "a", {"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]})
    b = policy("b", "a", {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"ports": [{"port": 443}]}]})
    assert rules([a, b]).ingress == ("tcp dport 443 accept", "tcp dport 80 accept")


def test_what_cannot_be_enforced_is_reported_not_allowed() -> None:
    spec = {
        "podSelector": {"matchExpressions": [{"key": "app", "operator": "Near", "values": ["x"]}]},
        "policyTypes": ["Ingress", "Sideways"],
        "ingress": [
            {
                "from": [{"ipBlock": {"cidr": "fd00::/8"}}],
                "ports": [{"protocol": "ICMP"}, {"port": "http", "endPort": 90}],
            }
        ],
    }
    compiled = compile_policies([policy("bad", "a", spec)], PODS, NAMESPACES, local_uids=ALL)
    problems = compiled.problems[("a", "bad")]
    text = " | ".join(problems)
    assert "Near" in text and "Sideways" in text and "IPv6" in text and "ICMP" in text and "endPort" in text
    assert compiled.rules["a-web"] == OPEN  # its selector cannot be evaluated: it selects nothing, and says so


def test_render_table_keeps_conntrack_loopback_and_the_node() -> None:
    text = render_table(PodRules(ingress=("tcp dport 80 accept",), egress=()), host_address="198.18.128.1")
    assert text.startswith("table inet aibpol\ndelete table inet aibpol\n")
    ingress = text.split("chain ingress")[1].split("chain egress")[0]
    assert (
        ingress.index("ct state established,related accept")
        < ingress.index("tcp dport 80 accept")
        < ingress.index("drop")
    )
    assert "ip saddr 198.18.128.1 accept" in ingress and 'iifname "lo" accept' in ingress
    egress = text.split("chain egress")[1]
    assert "198.18.128.1" not in egress and 'oifname "lo" accept' in egress and "drop" in egress
    open_text = render_table(OPEN, host_address="198.18.128.1")
    assert "drop" not in open_text and "accept;" in open_text
