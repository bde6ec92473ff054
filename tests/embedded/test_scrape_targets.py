"""Annotation-based scrape targets for the embedded Prometheus, and ConfigMap volumes following updates."""

from __future__ import annotations

from eventually import eventually
from kubernetes import client

from harness.embedded.controllers.scrape_targets import scrape_targets


def svc(name: str, **annotations: str) -> dict:
    return {"metadata": {"name": name, "namespace": "ns", "annotations": annotations}}


def endpoints(*ips: str, ports: tuple[int, ...] = (8080, 9090)) -> dict:
    return {
        "subsets": [
            {
                "addresses": [{"ip": ip, "targetRef": {"kind": "Pod", "name": f"p{i}"}} for i, ip in enumerate(ips)],
                "ports": [{"port": p} for p in ports],
            }
        ]
    }


def test_only_annotated_services_with_ready_addresses() -> None:
    services = [
        svc("web", **{"prometheus.io/scrape": "true"}),
        svc("custom", **{"prometheus.io/scrape": "true", "prometheus.io/port": "9090", "prometheus.io/path": "/m"}),
        svc("quiet"),
        svc("off", **{"prometheus.io/scrape": "false"}),
    ]
    eps = {("ns", n): endpoints("127.80.0.2", "127.80.0.1") for n in ("web", "custom", "quiet", "off")}
    targets = scrape_targets(services, eps)
    assert [
        (t["labels"]["job"], t["targets"][0], t["labels"]["__metrics_path__"], t["labels"]["pod"]) for t in targets
    ] == [
        ("custom", "127.80.0.1:9090", "/m", "p1"),
        ("custom", "127.80.0.2:9090", "/m", "p0"),
        ("web", "127.80.0.1:8080", "/metrics", "p1"),
        ("web", "127.80.0.2:8080", "/metrics", "p0"),
    ]
    assert scrape_targets([svc("web", **{"prometheus.io/scrape": "true"})], {}) == []


def test_configmap_volumes_follow_updates(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "conf"}, "data": {"value": "one"}})
    core.create_namespaced_pod(
        ns,
        {
            "metadata": {"name": "reader"},
            "spec": {
                "containers": [
                    {
                        "name": "main",
                        "image": "busybox:1.36",
                        "command": ["sh", "-c", "while true; do cat /conf/value; echo; sleep 0.1; done"],
                        "volumeMounts": [{"name": "conf", "mountPath": "/conf"}],
                    }
                ],
                "volumes": [{"name": "conf", "configMap": {"name": "conf"}}],
            },
        },
    )

    def log_has(text: str) -> bool:
        try:
            return text in core.read_namespaced_pod_log("reader", ns)
        except client.ApiException:  # not started yet
            return False

    eventually(lambda: log_has("one"), timeout_s=15, what="first content")
    core.patch_namespaced_config_map("conf", ns, {"data": {"value": "two"}})
    eventually(lambda: log_has("two"), timeout_s=15, what="updated content")
