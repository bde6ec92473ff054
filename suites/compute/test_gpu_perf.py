"""GPU performance per product: dense matmul TFLOP/s (bf16/fp16/tf32/fp32), HBM bandwidth, PCIe host<->device
bandwidth and a stability burn, each GPU of one node per product measured and judged against the profile's bars.

Measuring workloads never run on emulated nodes when the target has real ones; on a target with only emulated
GPU nodes their scripted numbers are labelled emulated.
"""

from __future__ import annotations

import pytest

from harness.errors import WorkloadFailed
from harness.fixture_types import Capabilities, NodeInfo, Profile, RunWorkload, TestRecord
from harness.measurement import marked_emulated
from harness.parsers.cuda import GEMM_DTYPES, cuda_failure, cuda_measurements
from harness.probes.accelerators import accelerator_of, labelled_driver, placement_for
from harness.thresholds.assertions import assert_passed
from harness.thresholds.evaluate import evaluate

pytestmark = [pytest.mark.compute, pytest.mark.perf, pytest.mark.gpu]

BENCHMARKS = {"cuda-gemm": "gemm", "cuda-membw": "membw", "cuda-pcie": "pcie", "cuda-burn": "burn"}


@pytest.mark.parametrize("workload", list(BENCHMARKS))
def test_gpu_benchmark(
    workload: str,
    measured_gpu: NodeInfo | None,
    run_workload: RunWorkload,
    capabilities: Capabilities,
    profile: Profile,
    record: TestRecord,
) -> None:
    """Each GPU of a whole (not time-sliced) node of this product clears the profile's bar for this benchmark
    (matmul TFLOP/s per dtype, HBM or PCIe bandwidth, burn stability and temperature)."""
    if measured_gpu is None:
        emulated = [n.name for n in capabilities.gpu_nodes if n.emulated]
        if emulated:
            pytest.skip(f"GPU nodes are emulated ({', '.join(emulated[:5])}); {workload} needs real GPUs")
        pytest.skip("every GPU node time-slices its GPUs: per-GPU throughput would be shared")
    node, label = measured_gpu, accelerator_of(measured_gpu)
    try:
        result = run_workload(workload, gpus=str(node.gpus), **placement_for(node, pin_node=True).params())
    except WorkloadFailed as exc:
        failure = cuda_failure(str(exc))
        if failure is None:
            raise
        labelled = labelled_driver(node)
        node_driver = f" (node label: driver {labelled})" if labelled else ""
        raise WorkloadFailed(f"{workload} on {node.name} ({label}): {failure.describe()}{node_driver}. {exc}") from None
    parsed = cuda_measurements(
        result.log_of("bench"),
        mode=BENCHMARKS[workload],
        expect_gpus=node.gpus,
        dtypes=GEMM_DTYPES,
        extra_labels={"node": node.name, "product_label": label},
    )
    measurements = marked_emulated(parsed, result.emulated)
    checks = evaluate(profile, workload, measurements)
    record.add(measurements=measurements, checks=checks)
    assert_passed(checks)
