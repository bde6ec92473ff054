"""Accelerator-metrics logic on dcgm-exporter output in its real exposition format."""

from __future__ import annotations

from pathlib import Path

from harness.observability.gpu_metrics import (
    REQUIRED_METRICS,
    attribution_problems,
    coverage,
    coverage_problems,
    profiling_metrics,
    utilisation_problems,
    xid_problems,
)
from harness.parsers.exposition import parse_exposition

DATA = Path(__file__).resolve().parents[1] / "data"
ISSUE_363 = DATA / "dcgm-exporter_no-pod-labels_driver-version-label_rtxa5000_dcgm-exporter-issue363.prom"


def exporter_output(node: str, gpus: int, *, pod: str = "", xid: int = 0, prof: bool = False) -> str:
    """dcgm-exporter 3.3 format with the default counters; pod labels only on GPU 0 when ``pod`` is given."""
    lines = []
    metrics = {m: 0 for m in REQUIRED_METRICS}
    metrics["DCGM_FI_DEV_XID_ERRORS"] = xid
    if prof:
        metrics["DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"] = 0
    for metric, value in metrics.items():
        lines.append(f"# HELP {metric} help\n# TYPE {metric} gauge")
        for gpu in range(gpus):
            labels = (
                f'gpu="{gpu}",UUID="GPU-{node}-{gpu}",pci_bus_id="00000000:{gpu:02X}:00.0",device="nvidia{gpu}",'
                f'modelName="NVIDIA H100 80GB HBM3",Hostname="{node}"'
            )
            if pod and gpu == 0:
                labels += f',container="main",namespace="aibench-t",pod="{pod}"'
            lines.append(f"{metric}{{{labels}}} {value}")
    return "\n".join(lines) + "\n"


def test_full_coverage_passes() -> None:
    series = parse_exposition(exporter_output("gpu-0", 8) + exporter_output("gpu-1", 8))
    nodes = coverage(series, {"gpu-0": 8, "gpu-1": 8})
    assert [(n.node, n.gpus_reported, n.missing) for n in nodes] == [("gpu-0", 8, ()), ("gpu-1", 8, ())]
    assert coverage_problems(nodes) == []


def test_issue_363_output_misses_power_temperature_and_xid() -> None:
    series = parse_exposition(ISSUE_363.read_text())
    problems = coverage_problems(coverage(series, {"k8s-gpu1": 1}))
    assert problems == ["node k8s-gpu1: missing DCGM_FI_DEV_POWER_USAGE, DCGM_FI_DEV_GPU_TEMP, DCGM_FI_DEV_XID_ERRORS"]


def test_a_gpu_node_without_exporter_and_missing_gpus_are_named() -> None:
    series = parse_exposition(exporter_output("gpu-0", 4))
    problems = coverage_problems(coverage(series, {"gpu-0": 8, "gpu-1": 8}))
    assert problems == [
        "node gpu-0: DCGM_FI_DEV_GPU_UTIL reports 4 GPU(s), the node has 8 allocatable",
        "node gpu-1: no DCGM metrics at all (is dcgm-exporter scheduled on it?)",
    ]


def test_attribution_without_pod_labels_explains_the_fix() -> None:
    series = parse_exposition(ISSUE_363.read_text())
    (problem,) = attribution_problems(series, namespace="aibench-t", pod="load", container="main")
    assert "none of the 1 DCGM_FI_DEV_GPU_UTIL series carries pod/namespace/container labels" in problem
    assert "pod-resources" in problem


def test_attribution_of_the_test_pod() -> None:
    series = parse_exposition(exporter_output("gpu-0", 2, pod="load"))
    assert attribution_problems(series, namespace="aibench-t", pod="load", container="main") == []
    assert attribution_problems(series, namespace="aibench-t", pod="other", container="main") == [
        "no DCGM_FI_DEV_GPU_UTIL series carries pod=other namespace=aibench-t (1 series name other pods)"
    ]
    assert (
        "names container(s) main, expected burn"
        in attribution_problems(series, namespace="aibench-t", pod="load", container="burn")[0]
    )


def test_exported_labels_count_as_attribution() -> None:
    text = (
        exporter_output("gpu-0", 1, pod="load")
        .replace('namespace="', 'exported_namespace="')
        .replace('pod="', 'exported_pod="')
    )
    assert attribution_problems(parse_exposition(text), namespace="aibench-t", pod="load", container="main") == []


def test_profiling_and_xid() -> None:
    series = parse_exposition(exporter_output("gpu-0", 1, prof=True, xid=79))
    assert profiling_metrics(series) == ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",)
    assert xid_problems(series) == ["node gpu-0 GPU 0 (GPU-gpu-0-0): last XID error 79"]
    assert profiling_metrics(parse_exposition(ISSUE_363.read_text())) == ()


def test_utilisation_must_follow_the_load() -> None:
    assert utilisation_problems(idle_before=0, under_load=97, idle_after=1) == []
    assert utilisation_problems(idle_before=0, under_load=5, idle_after=0)[0].startswith(
        "DCGM_FI_DEV_GPU_UTIL rose from 0 % to only 5 %"
    )
    assert utilisation_problems(idle_before=0, under_load=90, idle_after=88) == [
        "DCGM_FI_DEV_GPU_UTIL stayed at 88 % after the load ended (was 90 % during it)"
    ]


ISSUE_490 = DATA / "dcgm-exporter_pod-labels-on-gpu0_h100_pci-bus-id_dcgm-exporter-issue490.prom"
ISSUE_188 = DATA / "dcgm-exporter_2020-names_empty-pod-labels_gpu-monitoring-tools_dcgm-exporter-issue188.prom"


def test_issue_490_pod_labels_only_on_the_busy_gpu() -> None:
    """NVIDIA/dcgm-exporter issue #490 (H100, 2025, `pci_bus_id` label): only GPU 0, which dcgmproftester2 holds,
    carries pod/namespace/container; the pod is attributed, another pod is not found."""
    series = parse_exposition(ISSUE_490.read_text())
    assert [s.labels["gpu"] for s in series] == ["0", "1", "2"]
    assert attribution_problems(series, namespace="default", pod="dcgmproftester2", container="dcgmproftester2") == []
    assert attribution_problems(series, namespace="aibench-t", pod="probe", container="main") == [
        "no DCGM_FI_DEV_GPU_UTIL series carries pod=probe namespace=aibench-t (1 series name other pods)"
    ]
    nodes = coverage(series, {"computeinstance-e00c1p6dpy98xytphp": 8})
    assert nodes[0].gpus_reported == 3


def test_issue_188_pre_2021_metric_names_are_not_mistaken_for_dcgm_fi() -> None:
    """NVIDIA/dcgm-exporter issue #188: the gpu-monitoring-tools era names (`dcgm_gpu_utilization`, empty pod
    labels): no DCGM_FI_* series, which the checks name instead of reading the old names as attributed metrics."""
    series = parse_exposition(ISSUE_188.read_text())
    assert {s.name for s in series} >= {"dcgm_gpu_utilization", "dcgm_power_usage"}
    assert attribution_problems(series, namespace="default", pod="p", container="c") == [
        "no DCGM_FI_DEV_GPU_UTIL series at all"
    ]
