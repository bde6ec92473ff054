"""The shipped profiles: all load strictly, every threshold is sourced, and matching picks the right one."""

from __future__ import annotations

import pytest

from harness.measurement import Measurement
from harness.thresholds import (
    WORKLOADS,
    RuleKind,
    Status,
    assert_passed,
    available_profiles,
    load_profile,
    match_profile,
    validate_profile_file,
)
from harness.thresholds.loader import DEFAULT_PROFILES_DIR
from harness.units import UNITS

SHIPPED = [
    "a100-sxm-8x-ib200",
    "cpu-only",
    "h100-sxm-8x-ib400",
    "h200-sxm-8x-ib400",
    "nvidia-gpu-common",
    "tpu-v5e",
    "tpu-v5p",
]

H100_NODE = {
    "accelerator": "nvidia",
    "gpu_product": "NVIDIA-H100-80GB-HBM3",
    "gpu_count_per_node": 8,
    "rdma": True,
    "embedded": False,
}
EMBEDDED = {"accelerator": "none", "gpu_product": None, "gpu_count_per_node": 0, "rdma": False, "embedded": True}


def test_shipped_profiles_are_the_expected_set():
    assert available_profiles() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_loads_and_every_threshold_has_a_source(name):
    validate_profile_file(DEFAULT_PROFILES_DIR / f"{name}.yaml")
    profile = load_profile(name)
    thresholds = profile.all_thresholds()
    assert thresholds
    for t in thresholds:
        assert t.source.strip(), t.id
        assert t.workload in WORKLOADS
        if t.kind is RuleKind.ABSOLUTE:
            assert t.unit in UNITS
    ids = [t.id for t in thresholds]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("name", [n for n in SHIPPED if n != "cpu-only"])
def test_every_profile_inherits_the_cpu_only_bars(name):
    assert {t.id for t in load_profile("cpu-only").all_thresholds()} <= {
        t.id for t in load_profile(name).all_thresholds()
    }


def test_h100_snapshot_matches_h100():
    profile, reason = match_profile(H100_NODE)
    assert profile.name == "h100-sxm-8x-ib400"
    assert reason == "matched h100-sxm-8x-ib400: 8x NVIDIA-H100-80GB-HBM3 per node, RDMA present"


def test_embedded_target_matches_cpu_only():
    profile, reason = match_profile(EMBEDDED)
    assert profile.name == "cpu-only"
    assert reason == "matched cpu-only: no accelerators"


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        ({**H100_NODE, "gpu_product": "NVIDIA-H200"}, "h200-sxm-8x-ib400"),
        ({**H100_NODE, "gpu_product": "NVIDIA-H200-141GB-HBM3e"}, "h200-sxm-8x-ib400"),
        ({**H100_NODE, "gpu_product": "NVIDIA-A100-SXM4-80GB"}, "a100-sxm-8x-ib200"),
        ({"accelerator": "tpu", "tpu_type": "tpu-v5-lite-podslice"}, "tpu-v5e"),
        ({"accelerator": "tpu", "tpu_type": "tpu-v5p-slice"}, "tpu-v5p"),
        ({**H100_NODE, "gpu_product": "NVIDIA-H100-PCIe"}, "cpu-only"),  # no PCIe profile yet: fallback
        ({**H100_NODE, "rdma": False}, "cpu-only"),
    ],
)
def test_other_snapshots(facts, expected):
    assert match_profile(facts)[0].name == expected


def test_h200_overrides_h100_bars_by_id():
    h100, h200 = load_profile("h100-sxm-8x-ib400"), load_profile("h200-sxm-8x-ib400")
    by_id = {t.id: t for t in h200.all_thresholds()}
    assert by_id["nccl-intra-busbw"].value == 431.0
    assert by_id["hbm-membw"].value == 3840.0
    assert by_id["nccl-inter-busbw"] == {t.id: t for t in h100.all_thresholds()}["nccl-inter-busbw"]


def test_h100_nccl_bar_on_a_realistic_sweep():
    """A healthy 8x H100 sweep passes on its large-message rows, however low the small-message rows are."""
    sizes = [2**k for k in range(3, 35)]
    rows = [
        Measurement(
            metric="busbw",
            value=min(480.0, s / 2**24),
            unit="GB/s",
            labels={
                "op": "all_reduce",
                "size": str(s),
                "placement": "out-of-place",
                "scope": "intra-node",
                "nranks": "8",
            },
        )
        for s in sizes
    ]
    checks = load_profile("h100-sxm-8x-ib400").evaluate("nccl-allreduce", rows)
    statuses = {c.threshold_id: c.status for c in checks}
    assert statuses["nccl-intra-busbw"] is Status.PASSED
    assert statuses["nccl-inter-busbw"] is Status.NO_DATA  # a one-node run has no inter-node rows


def test_cpu_only_fio_with_parser_units():
    measurements = [
        Measurement(metric="bw", value=180.0, unit="MiB/s", labels={"job": "seqread", "direction": "read"}),
        Measurement(metric="iops", value=3500.0, unit="IOPS", labels={"job": "randread", "direction": "read"}),
        Measurement(
            metric="clat",
            value=42_000.0,
            unit="us",
            labels={"job": "randread", "direction": "read", "stat": "percentile", "percentile": "99"},
        ),
    ]
    checks = load_profile("cpu-only").evaluate("fio", measurements)
    assert [c.status for c in checks] == [Status.PASSED] * 3
    assert checks[2].observed == pytest.approx(42.0)
    assert_passed(checks)
