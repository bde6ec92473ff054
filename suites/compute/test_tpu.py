"""TPU slices: a JAX job per slice (GKE accelerator/topology selectors, google.com/tpu) sees the whole slice, and
its chips clear the profile's matmul, HBM and all-reduce bars; the deprecated cloud-tpus.google.com resource form is
reported where nodes still advertise it."""

from __future__ import annotations

import pytest

from harness.fixture_types import Capabilities, NodeInfo, Profile, RunResult, RunWorkload, TestRecord
from harness.measurement import Measurement, marked_emulated
from harness.parsers.jax_tpu import parse_tpu_result
from harness.probes.accelerators import TpuSlice, measurement_nodes, placement_for, tpu_slices
from harness.thresholds.assertions import assert_passed
from harness.thresholds.evaluate import evaluate

pytestmark = [pytest.mark.compute, pytest.mark.tpu]


def _measurable(tpu_slice: TpuSlice | None, capabilities: Capabilities) -> tuple[TpuSlice, NodeInfo]:
    """The slice and a node of it a measuring workload may use (skips otherwise, saying why)."""
    if tpu_slice is None:
        pytest.skip("no ready TPU node")
    nodes = measurement_nodes(capabilities, [n for n in capabilities.nodes if n.name in tpu_slice.nodes])
    if not nodes:
        pytest.skip(
            f"TPU nodes are emulated ({', '.join(tpu_slice.nodes[:5])}); the JAX benchmark needs real TPU chips"
        )
    return tpu_slice, nodes[0]


def _judge(result: RunResult, tpu_slice: TpuSlice, profile: Profile, record: TestRecord, *, pods: int) -> None:
    """Parse every JAX pod's block, check the slice shape first, then the profile's bars."""
    labels = {"accelerator": tpu_slice.accelerator, "topology": tpu_slice.topology or "single-host"}
    measurements: list[Measurement] = []
    shape_problems = []
    for key in sorted(result.logs):
        pod = key.split("/", 1)[0]
        parsed = parse_tpu_result(result.logs[key], extra_labels={**labels, "pod": pod})
        measurements += marked_emulated(list(parsed.measurements), result.emulated)
        measurements.append(
            Measurement(
                metric="jax_device_count",
                value=parsed.device_count,
                unit="count",
                labels={**labels, "expected": str(parsed.expected_chips), "pod": pod},
                emulated=result.emulated,
            )
        )
        if not parsed.slice_matches:
            shape_problems.append(f"{key}: {parsed.describe()}")
    checks = evaluate(profile, "tpu-jax", measurements)
    record.add(measurements=measurements, checks=checks)
    assert len(result.logs) == pods, f"expected {pods} JAX pods, got {sorted(result.logs)}"
    assert not shape_problems, "JAX does not see the slice it asked for: " + "; ".join(shape_problems)
    assert_passed(checks)


@pytest.mark.perf
def test_tpu_slice_runs_jax(
    tpu_slice: TpuSlice | None,
    capabilities: Capabilities,
    run_workload: RunWorkload,
    profile: Profile,
    record: TestRecord,
) -> None:
    """JAX on every host of the slice (an Indexed Job, one pod per host) sees exactly the slice's chips
    (jax.device_count()), runs a psum across them and a bf16 matmul per chip; TFLOP/s, HBM and all-reduce bandwidth
    clear the profile's bars."""
    tpu_slice, node = _measurable(tpu_slice, capabilities)
    result = run_workload(
        "tpu-jax",
        hosts=str(tpu_slice.hosts),
        chips_per_host=str(tpu_slice.chips_per_host),
        expected_chips=str(tpu_slice.chips),
        tpu_resource=tpu_slice.resource,
        **placement_for(node).params(),
    )
    _judge(result, tpu_slice, profile, record, pods=tpu_slice.hosts)


@pytest.mark.perf
@pytest.mark.requires("tpu", "jobset")
def test_tpu_multihost_slice_via_jobset(
    tpu_slice: TpuSlice | None,
    capabilities: Capabilities,
    run_jobset: RunWorkload,
    profile: Profile,
    record: TestRecord,
) -> None:
    """A multi-host slice run as a JobSet (one replicated Indexed Job, one pod per host): every host's JAX sees the
    whole slice, and the chips clear the same bars."""
    tpu_slice, node = _measurable(tpu_slice, capabilities)
    if not tpu_slice.multi_host:
        pytest.skip(
            f"slice {tpu_slice.accelerator} {tpu_slice.topology} has {tpu_slice.chips} chips on one host: "
            "single-host slices need no JobSet"
        )
    result = run_jobset(
        "tpu-jax-jobset",
        slices="1",
        hosts=str(tpu_slice.hosts),
        chips_per_host=str(tpu_slice.chips_per_host),
        expected_chips=str(tpu_slice.chips),
        tpu_resource=tpu_slice.resource,
        **placement_for(node).params(),
    )
    _judge(result, tpu_slice, profile, record, pods=tpu_slice.hosts)


@pytest.mark.practices
@pytest.mark.conformance
def test_tpu_resource_form_is_current(capabilities: Capabilities, record: TestRecord) -> None:
    """TPU nodes advertise chips as google.com/tpu (GKE TPU VMs), not the deprecated cloud-tpus.google.com/* form."""
    slices = tpu_slices(capabilities)
    record.add(params={f"{s.accelerator or 'tpu'} {s.topology}".strip(): s.resource for s in slices})
    deprecated = [s.deprecated for s in slices if s.deprecated]
    assert not deprecated, "deprecated TPU resource form in use: " + "; ".join(deprecated)


@pytest.mark.practices
@pytest.mark.conformance
def test_tpu_pod_reaches_its_slice(
    tpu_slice: TpuSlice | None, capabilities: Capabilities, run_workload: RunWorkload, record: TestRecord
) -> None:
    """A pod with the TPU pool's tolerations and accelerator/topology selectors, requesting a host's chips, is
    scheduled onto a node of that slice and gets that many chips."""
    if tpu_slice is None:
        pytest.skip("no ready TPU node")
    node = next(n for n in capabilities.nodes if n.name == tpu_slice.nodes[0])
    placement = placement_for(node)
    result = run_workload(
        "tpu-placement-probe",
        chips=str(tpu_slice.chips_per_host),
        tpu_resource=tpu_slice.resource,
        **placement.params(),
    )
    ran_on = result.node_of("probe")
    chips = result.log_of("probe").partition("aibench-probe: tpu")[2].split()
    pool = f"{tpu_slice.accelerator} {tpu_slice.topology}".strip()
    record.add(
        measurements=[
            Measurement(
                metric="tpu_chips_visible",
                value=len(chips),
                unit="count",
                labels={"pool": pool, "node": ran_on},
                emulated=result.emulated,
            )
        ]
    )
    assert ran_on in tpu_slice.nodes, f"pod for {pool} (selector {dict(placement.node_selector)}) ran on {ran_on}"
    assert len(chips) == tpu_slice.chips_per_host, (
        f"pod on {ran_on} asked for {tpu_slice.chips_per_host} chips and lists {len(chips)}: "
        + (" ".join(chips) or "none")
    )
