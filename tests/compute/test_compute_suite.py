"""The compute suite against the embedded target: the real scheduler and kubelet, emulated GPU/TPU nodes whose pods
print, in the real formats, what the emulated device plugin gave them (harness/embedded/emulated_workloads.py;
tests/compute/emulated_scripts.py layers fault scenarios on top).

Each run is a separate pytest process (as ``k8s-ai-bench run`` would be) whose results are read back from its run
record, so what is asserted here is exactly what a report would show: status, message, and emulated labels.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "suites" / "compute"
SCRIPTS = Path(__file__).with_name("emulated_scripts.py")

# A host CPU node (real processes) beside emulated GPU pools (whole GPUs, MIG, time-slicing) and a 2-host TPU slice.
MIXED_SPEC = """\
apiVersion: aibench.io/v1
kind: ClusterSpec
host: {include: true}
nodePools:
  - name: h100
    count: 2
    capacity: {cpu: "96", memory: 1Ti, nvidia.com/gpu: "8", pods: "110"}
    labels: {nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}
    taints: [{key: nvidia.com/gpu, value: present, effect: NoSchedule}]
  - name: a100-mig
    count: 1
    capacity: {cpu: "96", memory: 1Ti, nvidia.com/mig-1g.10gb: "7", pods: "110"}
    labels: {nvidia.com/gpu.product: NVIDIA-A100-SXM4-80GB, nvidia.com/mig.strategy: mixed,
             nvidia.com/mig.config.state: success}
    taints: [{key: nvidia.com/gpu, value: present, effect: NoSchedule}]
  - name: l4-shared
    count: 1
    capacity: {cpu: "16", memory: 64Gi, nvidia.com/gpu: "4", pods: "110"}
    labels: {nvidia.com/gpu.product: NVIDIA-L4, nvidia.com/gpu.count: "1", nvidia.com/gpu.replicas: "4",
             nvidia.com/gpu.sharing-strategy: time-slicing}
    taints: [{key: nvidia.com/gpu, value: present, effect: NoSchedule}]
  - name: tpu-v5e
    count: 2
    capacity: {cpu: "112", memory: 192Gi, google.com/tpu: "4", pods: "110"}
    labels: {cloud.google.com/gke-tpu-accelerator: tpu-v5-lite-podslice, cloud.google.com/gke-tpu-topology: 2x4}
    taints: [{key: google.com/tpu, value: present, effect: NoSchedule}]
"""

# Emulated nodes only: measuring workloads may run there (scripted, labelled emulated).
EMULATED_ONLY_SPEC = """\
apiVersion: aibench.io/v1
kind: ClusterSpec
host: {include: false}
nodePools:
  - name: cpu
    count: 1
    capacity: {cpu: "16", memory: 64Gi, pods: "110"}
  - name: h100
    count: 1
    capacity: {cpu: "96", memory: 1Ti, nvidia.com/gpu: "2", pods: "110"}
    labels: {nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3, nvidia.com/cuda.driver-version.full: 470.57.02,
             nvidia.com/cuda.runtime-version.full: "11.4"}
    taints: [{key: nvidia.com/gpu, value: present, effect: NoSchedule}]
  - name: tpu-v5e
    count: 1
    capacity: {cpu: "112", memory: 192Gi, google.com/tpu: "4", pods: "110"}
    labels: {cloud.google.com/gke-tpu-accelerator: tpu-v5-lite-podslice, cloud.google.com/gke-tpu-topology: 2x2}
    taints: [{key: google.com/tpu, value: present, effect: NoSchedule}]
"""


def _run(pytester: pytest.Pytester, spec: str | None, *args: str, scenario: str = "") -> dict[str, dict[str, Any]]:
    """Run the compute suite in a fresh process; results by test name (parametrised ids included)."""
    for module in sorted(SUITE.glob("test_*.py")):
        if module.name.startswith("test_ray"):
            continue
        pytester.makepyfile(**{module.stem: module.read_text()})
    pytester.makeconftest((SUITE / "conftest.py").read_text())
    pytester.makepyfile(emulated_scripts=SCRIPTS.read_text())  # a plugin module: -p emulated_scripts
    options = ["-p", "no:locust", "-p", "no:cacheprovider", "-p", "emulated_scripts", "-q", "-rA"]
    if spec is not None:
        path = pytester.path / "cluster.yaml"
        path.write_text(spec)
        options += ["--cluster-spec", str(path)]
    previous = os.environ.get("AIBENCH_TEST_SCENARIO")
    os.environ["AIBENCH_TEST_SCENARIO"] = scenario
    try:
        result = pytester.runpytest_subprocess(*options, *args, timeout=300)
    finally:
        if previous is None:
            os.environ.pop("AIBENCH_TEST_SCENARIO", None)
        else:
            os.environ["AIBENCH_TEST_SCENARIO"] = previous
    runs = [p for p in (pytester.path / "reports").iterdir() if p.is_dir() and p.name != "latest"]
    assert len(runs) == 1, result.stdout.str()
    lines = (runs[0] / "results.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return {r["name"]: r for r in records}


def _status(records: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: r["status"] for name, r in records.items()}


@pytest.mark.timeout(300)
def test_scheduling_conformance_on_emulated_gpu_and_tpu_nodes(pytester: pytest.Pytester) -> None:
    records = _run(pytester, MIXED_SPEC, "-m", "compute")
    status = _status(records)
    must_pass = [
        "test_gpu_request_sees_exactly_the_requested_gpus",
        "test_pod_without_gpu_request_sees_no_gpu",
        "test_pods_on_one_node_cannot_reach_each_others_gpus",
        "test_gpu_request_beyond_allocatable_stays_pending",
        "test_gpu_product_label_matches_what_the_pod_reports[NVIDIA-H100-80GB-HBM3]",
        "test_gpu_product_label_matches_what_the_pod_reports[NVIDIA-L4]",
        "test_gpu_sharing_is_reported_and_honoured[a100-mig-0]",
        "test_gpu_sharing_is_reported_and_honoured[l4-shared-0]",
        "test_gpu_nodes_carry_product_labels",
        "test_node_pool_inventory",
        "test_cpu_pod_lands_on_a_cpu_node",
        "test_accelerator_pools_are_reserved",
        "test_pod_with_tolerations_reaches_each_gpu_pool[a100-mig]",
        "test_pod_with_tolerations_reaches_each_gpu_pool[h100]",
        "test_pod_with_tolerations_reaches_each_gpu_pool[l4-shared]",
        "test_gpu_node_health",
        "test_tpu_resource_form_is_current",
        "test_tpu_pod_reaches_its_slice[tpu-v5-lite-podslice-2x4]",
    ]
    assert {n: status.get(n) for n in must_pass} == dict.fromkeys(must_pass, "passed"), {
        n: records[n]["message"] for n in must_pass if n in records and records[n]["status"] != "passed"
    }
    # what the emulated plugin handed out, recorded and labelled emulated
    seen = records["test_gpu_request_sees_exactly_the_requested_gpus"]["measurements"]
    assert [(m["metric"], m["value"], m["emulated"]) for m in seen] == [("devices_visible", 2, True)]
    assert seen[0]["labels"]["node"].startswith("h100-")
    isolation = records["test_pods_on_one_node_cannot_reach_each_others_gpus"]["measurements"]
    assert len(isolation) == 2 and all(m["value"] == 1 and m["emulated"] for m in isolation)
    assert records["test_pod_without_gpu_request_sees_no_gpu"]["requirements"] == ["secure_accelerator_access"]
    mig = records["test_gpu_sharing_is_reported_and_honoured[a100-mig-0]"]
    assert mig["requirements"] == ["gpu_sharing"] and mig["params"]["a100-mig-0"] == "mig-mixed: mig-1g.10gb=7"
    assert mig["params"]["resource"] == "nvidia.com/mig-1g.10gb"
    sliced = records["test_gpu_sharing_is_reported_and_honoured[l4-shared-0]"]
    assert sliced["params"]["l4-shared-0"] == "time-slicing: 1 GPU(s) x 4 replicas"
    assert [m["value"] for m in sliced["measurements"]] == [4, 1, 1]  # replicas, then each pod's one GPU
    # the CPU pod ran for real on the host node; pools are inventoried
    cpu = records["test_cpu_pod_lands_on_a_cpu_node"]["measurements"][0]
    assert cpu["labels"]["kind"] == "cpu" and cpu["emulated"] is False
    pools = json.loads(records["test_node_pool_inventory"]["params"]["pools"])
    assert [(p["name"], p["kind"], len(p["nodes"])) for p in pools][1:] == [
        ("a100-mig", "gpu", 1),
        ("h100", "gpu", 2),
        ("l4-shared", "gpu", 1),
        ("tpu-v5e", "tpu", 2),
    ]
    assert pools[0]["kind"] == "cpu" and pools[0]["emulated"] == 0
    # measuring workloads stay off emulated nodes while a real node exists: skipped with the reason
    for name in [n for n in records if n.startswith(("test_gpu_benchmark", "test_tpu_slice_runs_jax"))]:
        assert records[name]["status"] == "skipped" and "emulated" in records[name]["message"], records[name]
    jobset = records["test_tpu_multihost_slice_via_jobset[tpu-v5-lite-podslice-2x4]"]
    assert jobset["status"] == "skipped"
    assert jobset["message"].endswith("jobset is not installed (jobsets.jobset.x-k8s.io is not served)")
    dra = records["test_gpu_through_a_dra_resource_claim"]
    assert dra["status"] == "skipped"
    assert dra["message"].endswith("requires dra: dra is not installed (deviceclasses.resource.k8s.io is not served)")


@pytest.mark.timeout(300)
def test_broken_isolation_and_a_wrong_profile_fail_with_the_evidence(pytester: pytest.Pytester) -> None:
    legacy_tpu = (
        "  - name: tpu-v3-legacy\n    count: 1\n"
        '    capacity: {cpu: "8", memory: 32Gi, cloud-tpus.google.com/v3: "8", pods: "110"}\n'
    )
    records = _run(
        pytester,
        MIXED_SPEC + legacy_tpu,
        "-k",
        "without_gpu_request or each_others or product or resource_form",
        "--profile",
        "a100-sxm-8x-ib200",
        scenario="leak,overlap,wrong-product",
    )
    status = _status(records)
    assert status == {
        "test_pod_without_gpu_request_sees_no_gpu": "failed",
        "test_pods_on_one_node_cannot_reach_each_others_gpus": "failed",
        "test_gpu_product_label_matches_what_the_pod_reports[NVIDIA-H100-80GB-HBM3]": "failed",
        "test_gpu_product_label_matches_what_the_pod_reports[NVIDIA-L4]": "failed",
        "test_profile_gpu_product_matches_the_target": "failed",
        "test_gpu_nodes_carry_product_labels": "passed",
        "test_tpu_resource_form_is_current": "failed",
    }, {n: r["message"] for n, r in records.items()}
    legacy = records["test_tpu_resource_form_is_current"]["message"]
    assert legacy.startswith(
        "deprecated TPU resource form in use: node tpu-v3-legacy-0 advertises the legacy cloud-tpus.google.com/v3 "
        "resource (Cloud TPU Nodes, deprecated)"
    ), legacy
    leak = records["test_pod_without_gpu_request_sees_no_gpu"]["message"]
    assert "without a GPU request on h100-" in leak and "can reach 1 GPU(s)" in leak and "/dev/nvidia0" in leak
    overlap = records["test_pods_on_one_node_cannot_reach_each_others_gpus"]["message"]
    assert "can both reach GPU-11111111-2222-3333-4444-555555555555" in overlap
    product = records["test_gpu_product_label_matches_what_the_pod_reports[NVIDIA-H100-80GB-HBM3]"]["message"]
    assert "label 'NVIDIA-H100-80GB-HBM3', the pod reports NVIDIA A100-SXM4-80GB" in product
    profile = records["test_profile_gpu_product_matches_the_target"]["message"]
    assert profile.startswith("profile a100-sxm-8x-ib200 expects GPU products matching 'A100-SXM4-80GB'")
    assert "NVIDIA-H100-80GB-HBM3" in profile and "NVIDIA-L4" in profile


@pytest.mark.timeout(300)
def test_benchmarks_and_tpu_job_on_emulated_only_nodes_are_judged_and_labelled(pytester: pytest.Pytester) -> None:
    records = _run(pytester, EMULATED_ONLY_SPEC, "-k", "benchmark or tpu", "--profile", "h100-sxm-8x-ib400")
    for mode in ("cuda-gemm", "cuda-membw", "cuda-pcie", "cuda-burn"):
        record = records[f"test_gpu_benchmark[NVIDIA-H100-80GB-HBM3-{mode}]"]
        assert record["status"] == "passed", record["message"]
        assert record["emulated"] is True and record["checks"], record
        assert all(m["emulated"] for m in record["measurements"])
        assert {m["labels"]["gpu"] for m in record["measurements"]} == {"0", "1"}
    gemm = records["test_gpu_benchmark[NVIDIA-H100-80GB-HBM3-cuda-gemm]"]
    assert len(gemm["measurements"]) == 8  # 2 GPUs x 4 dtypes
    burn = records["test_gpu_benchmark[NVIDIA-H100-80GB-HBM3-cuda-burn]"]
    assert burn["status"] == "passed" and burn["emulated"] is True, burn
    assert {m["metric"] for m in burn["measurements"]} == {"tflops", "tflops_cv", "temperature_max", "power_max"}
    tpu = records["test_tpu_slice_runs_jax[tpu-v5-lite-podslice-2x2]"]
    assert tpu["status"] == "skipped" and "profile h100-sxm-8x-ib400 has no tpu-jax thresholds" in tpu["message"]
    counts = [m for m in tpu["measurements"] if m["metric"] == "jax_device_count"]
    assert [(m["value"], m["labels"]["expected"], m["emulated"]) for m in counts] == [(4, "4", True)]


@pytest.mark.timeout(300)
def test_tpu_job_judged_by_the_tpu_profile(pytester: pytest.Pytester) -> None:
    records = _run(
        pytester,
        MIXED_SPEC.replace("host: {include: true}", "host: {include: false}"),
        "-k",
        "tpu_slice",
        "--profile",
        "tpu-v5e",
    )
    tpu = records["test_tpu_slice_runs_jax[tpu-v5-lite-podslice-2x4]"]
    assert tpu["status"] == "passed", tpu["message"]
    assert tpu["emulated"] is True
    tflops = [m for m in tpu["measurements"] if m["metric"] == "tflops"]
    assert sorted(m["labels"]["chip"] for m in tflops) == [str(i) for i in range(8)]  # 2 hosts x 4 chips
    counts = [m["value"] for m in tpu["measurements"] if m["metric"] == "jax_device_count"]
    assert counts == [8, 8]


@pytest.mark.timeout(300)
def test_cuda_driver_error_and_stuck_sandbox_fail_with_driver_version_and_events(pytester: pytest.Pytester) -> None:
    records = _run(
        pytester,
        EMULATED_ONLY_SPEC,
        "-k",
        "cuda-gemm or cuda-membw",
        "--timeout-scale",
        "0.02",
        scenario="driver-too-old,stuck",
    )
    gemm = records["test_gpu_benchmark[NVIDIA-H100-80GB-HBM3-cuda-gemm]"]
    assert gemm["status"] == "error" and gemm["failure_kind"] == "workload", gemm
    assert gemm["message"].startswith(
        "cuda-gemm on h100-0 (NVIDIA-H100-80GB-HBM3): driver too old for the image: The NVIDIA driver on your system "
        "is too old (found version 11040); node driver 470.57.02 (supports up to CUDA 11.4) "
        "(node label: driver 470.57.02 (CUDA 11.4))"
    ), gemm["message"]
    membw = records["test_gpu_benchmark[NVIDIA-H100-80GB-HBM3-cuda-membw]"]
    assert membw["status"] == "error", membw
    assert "ContainerCreating" in membw["message"] or "Pending" in membw["message"], membw["message"]
    assert "FailedCreatePodSandBox" in membw["message"] and "nvml error: driver not loaded" in membw["message"]


@pytest.mark.timeout(300)
def test_without_accelerators_gpu_tests_skip_and_placement_runs_on_the_host(pytester: pytest.Pytester) -> None:
    records = _run(pytester, None, "-m", "compute")
    gpu = records["test_gpu_request_sees_exactly_the_requested_gpus"]
    assert gpu["status"] == "skipped"
    assert "requires gpu: no node has allocatable nvidia.com/gpu" in gpu["message"], gpu["message"]
    tpu = records["test_tpu_slice_runs_jax[none]"]
    assert tpu["status"] == "skipped" and "requires tpu: no node has allocatable google.com/tpu" in tpu["message"]
    assert records["test_node_pool_inventory"]["status"] == "passed"
    assert records["test_cpu_pod_lands_on_a_cpu_node"]["status"] == "passed"
    reserved = records["test_accelerator_pools_are_reserved"]
    assert reserved["status"] == "skipped" and reserved["message"].endswith("the target has no GPU or TPU node pool")
    pools = json.loads(records["test_node_pool_inventory"]["params"]["pools"])
    assert [p["kind"] for p in pools] == ["cpu"] and pools[0]["emulated"] == 0
