"""Client-observed control-plane latencies on the embedded target, and the image-pull separation."""

from __future__ import annotations

import pytest
from kubernetes import client

from harness.cluster.namespaces import run_labels
from harness.cluster.target import Connection
from harness.errors import WorkloadFailed
from harness.runners.latency import VERBS, api_calls, go_duration_seconds, image_pull_seconds, pod_startup


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1.234s", 1.234), ("823ms", 0.823), ("1m2.5s", 62.5), ("1h0m0s", 3600.0), ("250us", 0.00025), ("12µs", 0.000012)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert go_duration_seconds(text) == pytest.approx(seconds)


def test_image_pulls_are_read_from_kubelet_events(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    for name, message in (
        (
            "a",
            'Successfully pulled image "busybox:1.36.1" in 1.5s (1.5s including waiting). Image size: 2160406 bytes.',
        ),
        ("b", 'Container image "busybox:1.36.1" already present on machine'),
        ("c", 'Successfully pulled image "busybox:1.36.1" in 823.4ms'),
    ):
        core.create_namespaced_event(
            ns,
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"{name}.pull"},
                "reason": "Pulled",
                "message": message,
                "type": "Normal",
                "involvedObject": {"kind": "Pod", "name": name, "namespace": ns, "apiVersion": "v1"},
            },
        )
    assert image_pull_seconds(Connection(api), ns) == pytest.approx({"a": 1.5, "c": 0.8234})


def test_pod_startup_samples_every_pod(api: client.ApiClient, ns: str) -> None:
    samples = pod_startup(
        Connection(api), ns, pods=3, image="busybox:1.36.1", labels=run_labels("lat", "startup"), timeout_s=30
    )
    assert sorted(samples.seconds) == ["startup-0000", "startup-0001", "startup-0002"] and not samples.failed
    assert all(0 < s < 30 for s in samples.seconds.values())
    with pytest.raises(WorkloadFailed, match=r"outside 1\.\.1000"):
        pod_startup(Connection(api), ns, pods=5000, image="busybox:1.36.1", labels={}, timeout_s=1)


def test_api_calls_time_each_verb_on_its_own_object(api: client.ApiClient, ns: str) -> None:
    calls = api_calls(Connection(api), ns, labels=run_labels("lat", "api"))
    assert tuple(calls) == VERBS
    core = client.CoreV1Api(api)
    for verb in VERBS:
        args, kwargs = calls[verb].setup()
        calls[verb].call(*args, **kwargs)
    names = sorted(
        c.metadata.name for c in core.list_namespaced_config_map(ns, label_selector="aibench.io/run-id").items
    )
    # create made one, get and patch each set one up, delete set one up and removed it
    assert names == ["latency-00000", "latency-00001", "latency-00002"]
    assert core.read_namespaced_config_map("latency-00002", ns).data["patched"] == "1"
