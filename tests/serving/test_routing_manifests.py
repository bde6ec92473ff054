"""The mesh, gateway, inference-extension and monitoring manifests of the serving suite validate against their CRD
schemas, and the schemas really reject what the API server would (a check that cannot fail proves nothing)."""

from __future__ import annotations

import copy

import pytest

from harness.catalog.render import render
from harness.catalog.spec import load_workload
from harness.catalog.validate import ManifestValidator

CONTEXT = {"namespace": "aibench-t", "run_id": "r1", "scripts_configmap": "cm", "workload": "w"}
ROUTING = ("inference-route-istio", "inference-route-gateway", "inference-pool", "inference-metrics")


@pytest.fixture(scope="module")
def validator() -> ManifestValidator:
    return ManifestValidator()


def documents(name: str, **params: str) -> dict[str, dict]:
    rendered = render(load_workload(name), params, context=CONTEXT)
    return {doc["kind"]: doc for doc in rendered.documents}


@pytest.mark.parametrize("name", ROUTING)
def test_routing_manifests_validate(validator, name):
    for doc in documents(name).values():
        assert validator.problems(doc, source=name) == []


def test_istio_routes_render_the_split_header_timeout_retry_and_fault():
    docs = documents("inference-route-istio", weight_v1="90", weight_v2="10", abort_percent="5")
    http = docs["VirtualService"]["spec"]["http"]
    assert [r["name"] for r in http] == ["by-header-v1", "by-header-v2", "weighted"]
    assert http[0]["match"][0]["headers"] == {"x-model-version": {"exact": "v1"}}
    weighted = http[2]
    assert [(d["destination"]["subset"], d["weight"]) for d in weighted["route"]] == [("v1", 90), ("v2", 10)]
    assert weighted["fault"]["abort"] == {"percentage": {"value": 5}, "httpStatus": 503}
    assert weighted["retries"]["attempts"] == 2 and weighted["timeout"] == "10s"
    assert docs["PeerAuthentication"]["spec"]["mtls"] == {"mode": "STRICT"}
    assert {s["name"]: s["labels"] for s in docs["DestinationRule"]["spec"]["subsets"]} == {
        "v1": {"version": "v1"},
        "v2": {"version": "v2"},
    }


def _broken(doc: dict, path: list, value: object) -> dict:
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


@pytest.mark.parametrize(
    ("name", "kind", "path", "value", "needle"),
    [
        # (Istio checks a timeout's duration syntax with a CEL rule, which the offline check does not evaluate)
        ("inference-route-istio", "VirtualService", ["spec", "http", 2, "timeout"], 10, "is not of type"),
        ("inference-route-istio", "VirtualService", ["spec", "http", 2, "retries", "atempts"], 2,
         "Additional properties"),
        ("inference-route-istio", "VirtualService", ["spec", "http", 2, "weights"], 3, "Additional properties"),
        ("inference-route-istio", "VirtualService", ["spec", "http", 0, "match", 0, "headers", "x-m"],
         {"exact": "a", "prefix": "b"}, "valid under"),
        ("inference-route-istio", "DestinationRule", ["spec", "trafficPolicy", "tls", "mode"], "MTLS", "is not one of"),
        ("inference-route-istio", "PeerAuthentication", ["spec", "mtls", "mode"], "ON", "is not one of"),
        ("inference-route-gateway", "HTTPRoute", ["spec", "rules", 2, "backendRefs", 0, "weight"], 2_000_000,
         "is greater than"),
        ("inference-route-gateway", "HTTPRoute", ["spec", "rules", 0, "matches", 0, "headers", 0, "type"], "Prefix",
         "is not one of"),
        ("inference-pool", "InferencePool", ["spec", "targetPortNumber"], 70000, "is greater than"),
        ("inference-pool", "InferenceModel", ["spec", "criticality"], "High", "is not one of"),
        ("inference-metrics", "ServiceMonitor", ["spec", "endpoints", 0, "interval"], "5 seconds", "does not match"),
        ("inference-metrics", "HorizontalPodAutoscaler", ["spec", "minReplicas"], "one", "is not of type"),
    ],
)  # fmt: skip
def test_schemas_reject_invalid_routing(validator, name, kind, path, value, needle):
    doc = _broken(documents(name)[kind], path, value)
    problems = validator.problems(doc, source=name)
    assert problems and any(needle in p.message for p in problems), [str(p) for p in problems]
