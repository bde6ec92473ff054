"""The inference-server workload on the in-process embedded target: ready behind its Service and streaming, or,
when it never becomes ready, a failure that shows the readiness probe's events."""

from __future__ import annotations

import json
import urllib.request

import pytest
from kubernetes import client
from workload_runs import run_context

from harness.catalog.render import render
from harness.catalog.spec import load_workload
from harness.cluster.namespaces import run_labels
from harness.errors import WorkloadFailed
from harness.runners.job import scripts_configmap_name
from harness.runners.service import run_service


def _server(api: client.ApiClient, ns: str, timeout_s: float = 60, **params: str):
    spec = load_workload("inference-server")
    context = {"scripts_configmap": scripts_configmap_name(spec.name), "namespace": ns}
    rendered = render(spec, params, context=context)
    return run_service(spec, rendered, run_context(api, ns, run_labels("run-s", "inference"), timeout_s=timeout_s))


def test_server_streams_through_its_services(api: client.ApiClient, ns: str) -> None:
    with _server(api, ns, version="v2", ttft_ms="10", tpot_ms="1", output_tokens="3") as handle:
        assert set(handle.endpoints) == {"inference-server", "inference-server-v2"}
        body = json.dumps({"model": "aibench-tokenstream", "prompt": "hi", "stream": True}).encode()
        request = urllib.request.Request(handle.endpoints["inference-server"].url() + "/v1/completions", data=body)
        with urllib.request.urlopen(request, timeout=10) as answer:
            text = answer.read().decode()
            assert answer.headers["x-aibench-version"] == "v2"
    assert text.count('"text":" hello"') == 3 and text.endswith("data: [DONE]\n\n")


def test_never_ready_fails_with_the_readiness_events(api: client.ApiClient, ns: str) -> None:
    with pytest.raises(WorkloadFailed) as info, _server(api, ns, timeout_s=6, ready_after_s="3600"):
        pass
    message = str(info.value)
    assert "deployment inference-server-v1: 0/1 ready" in message, message
    assert "Readiness probe failed" in message and "503" in message, message


def test_in_cluster_load_job_measures_the_server(api: client.ApiClient, ns: str) -> None:
    """The in-cluster path (the inference-load Job, as on a real cluster) runs here too, since host pods are real
    processes: locust in the Job's pod, samples decoded from its log."""
    from harness.runners import registry
    from harness.runners.load import RequestProfile, load_shape, run_job

    def run_workload(name: str, **params: str):
        spec = load_workload(name)
        context = {"scripts_configmap": scripts_configmap_name(spec.name), "namespace": ns}
        rendered = render(spec, params, context=context)
        return registry.run_workload(
            spec, rendered, run_context(api, ns, run_labels("run-s", "load-job"), timeout_s=120)
        )

    shape = load_shape({"concurrency": 2, "duration_s": 3, "warmup_s": 0.5, "max_requests": 500})
    with _server(api, ns, ttft_ms="20", tpot_ms="5", output_tokens="6") as handle:
        run = run_job(run_workload, handle.endpoints["inference-server"].url(), shape, RequestProfile(max_tokens=6))
    summary = run.summary()
    assert run.where == "in-cluster job" and summary.failures == 0 and summary.requests > 20
    assert 0.019 <= summary.ttft[50] <= 0.03 and all(s.output_tokens == 6 for s in run.samples)
