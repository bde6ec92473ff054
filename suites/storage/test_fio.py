"""fio on every StorageClass: the job matrix on a filesystem volume, on a raw block volume, and the tier ranking."""

from __future__ import annotations

from typing import Any

import pytest

from harness.catalog.render import effective_params
from harness.catalog.spec import load_workload
from harness.errors import WorkloadFailed
from harness.fixture_types import Capabilities, Profile, RunWorkload, TestRecord
from harness.measurement import marked_emulated
from harness.parsers.fio import fio_measurements, parse_fio
from harness.storage_tiers import check_fio_fits, class_info, fio_params, headline, rank_tiers
from harness.thresholds.assertions import assert_passed
from harness.thresholds.evaluate import evaluate
from harness.thresholds.model import RuleKind
from harness.thresholds.verdicts import judge


def workload_params(name: str, given: dict[str, str]) -> dict[str, str]:
    return effective_params(load_workload(name), given)


@pytest.mark.perf
@pytest.mark.storage
def test_fio_matrix(
    storage_class: str,
    run_workload: RunWorkload,
    record: TestRecord,
    profile: Profile,
    capabilities: Capabilities,
    fio_by_class: dict[str, dict[str, Any]],
) -> None:
    """fio's matrix on a fresh PVC of the class clears the profile's bandwidth, IOPS and latency bars."""
    info = class_info(capabilities, storage_class)
    params = fio_params(info)
    check_fio_fits(workload_params("fio", params))
    result = run_workload("fio", **params)
    parsed = parse_fio(result.log_of("fio"))
    labels = {"storage_class": storage_class, "volume_mode": "Filesystem", "node": result.node_of("fio")}
    measurements = marked_emulated(fio_measurements(parsed, extra_labels=labels), result.emulated)
    checks = evaluate(profile, "fio", measurements)
    record.add(measurements=measurements, checks=checks)
    fio_by_class[storage_class] = headline(measurements)
    assert_passed(checks)


@pytest.mark.perf
@pytest.mark.storage
def test_fio_block(
    storage_class: str, run_workload: RunWorkload, record: TestRecord, profile: Profile, capabilities: Capabilities
) -> None:
    """fio's matrix on a raw block volume (volumeMode: Block) of the class clears the same bars."""
    info = class_info(capabilities, storage_class)
    params = fio_params(info, block=True)
    check_fio_fits(workload_params("fio-block", params))
    try:
        result = run_workload("fio-block", **params)
    except WorkloadFailed as exc:
        reason = str(exc).partition("cannot be provisioned: ")[2]
        if reason and "Block" in reason:
            pytest.skip(f"class {storage_class} cannot provide Block volumes: {reason.split(' (', 1)[0]}")
        raise
    parsed = parse_fio(result.log_of("fio"))
    labels = {"storage_class": storage_class, "volume_mode": "Block", "node": result.node_of("fio")}
    measurements = marked_emulated(fio_measurements(parsed, extra_labels=labels), result.emulated)
    checks = evaluate(profile, "fio", measurements)
    record.add(measurements=measurements, checks=checks)
    assert_passed(checks)


@pytest.mark.practices
@pytest.mark.storage
@pytest.mark.conformance
def test_storage_tiering(
    capabilities: Capabilities, fio_by_class: dict[str, dict[str, Any]], profile: Profile, record: TestRecord
) -> None:
    """At least two storage tiers exist and the fast tier is really faster (the storage tiering practice)."""
    names = [sc.name for sc in capabilities.storage_classes]
    missing = [n for n in names if n not in fio_by_class]
    if missing:
        pytest.skip(f"tiering needs the fio matrix of every class; not measured in this run: {', '.join(missing)}")
    evidence = [m for tier in rank_tiers(fio_by_class) for m in tier.measurements]
    verdicts = judge(profile, "fio", RuleKind.FASTER_TIER, evidence)
    record.add(workload="fio", measurements=evidence, checks=verdicts)
    assert_passed(verdicts)
