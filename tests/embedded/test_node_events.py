"""The node agent records Events as the embedded store does (one name per (object, reason, message, component),
repeats bumped): RestNodeApi.event and events.record_event build them with the same helpers."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from harness.embedded.events import event_name
from harness.node.restapi import RestNodeApi

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "resourceVersion": "7"}}  # as a list item: no kind


def test_first_event_is_created_then_bumped(monkeypatch: pytest.MonkeyPatch) -> None:
    api = RestNodeApi(client.ApiClient(client.Configuration()), "node-a")
    calls: list[tuple[str, str, Any]] = []
    monkeypatch.setattr(api, "request", lambda method, path, **kw: calls.append((method, path, kw.get("body"))))
    api.event(POD, type_="Warning", reason="BackOff", message="x" * 2000)
    api.event(POD, type_="Warning", reason="BackOff", message="x" * 2000)
    name = event_name(POD, reason="BackOff", message="x" * 2000, component="kubelet")
    (post, created), (patch, bumped) = [(c[0], c[2]) for c in calls]
    assert post == "POST" and calls[0][1] == "/api/v1/namespaces/ns/events"
    assert created["metadata"] == {"name": name, "namespace": "ns"}
    assert created["involvedObject"] == {
        "kind": "Pod",
        "apiVersion": "v1",
        "name": "p",
        "namespace": "ns",
        "uid": "u-1",
        "resourceVersion": "7",
    }
    assert created["count"] == 1 and created["source"] == {"component": "kubelet", "host": "node-a"}
    assert len(created["message"]) == 1024
    assert patch == "PATCH" and calls[1][1] == f"/api/v1/namespaces/ns/events/{name}"
    assert bumped["count"] == 2


def test_event_names_differ_by_reason_and_fit_the_limit() -> None:
    long_pod = {"metadata": {"name": "n" * 300, "uid": "u"}}
    a = event_name(long_pod, reason="A", message="m", component="c")
    b = event_name(long_pod, reason="B", message="m", component="c")
    assert a != b and len(a) == 253 and a.startswith("n" * 236 + ".")
