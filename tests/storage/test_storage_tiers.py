"""Tier ranking, the tiering verdict (rule faster-tier-faster) and the fio size check, on numbers."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.measurement import Measurement
from harness.storage_tiers import Tier, check_fio_fits, fio_size_bytes, headline, rank_tiers
from harness.thresholds.model import Check, RuleKind, Status
from harness.thresholds.verdicts import judge


def _by_class(**numbers: tuple[float, float]) -> dict[str, dict]:
    return {name: {"seqread_bw": bw, "randread_iops": iops, "emulated": False} for name, (bw, iops) in numbers.items()}


def tier_verdict(tiers: list[Tier]) -> Check:
    """The built-in faster-tier-faster rule on the ranking's measurements (what test_storage_tiering judges)."""
    (check,) = judge(None, "fio", RuleKind.FASTER_TIER, [m for t in tiers for m in t.measurements])
    return check


def test_ranking_is_fastest_first_and_recorded_as_measurements() -> None:
    tiers = rank_tiers(_by_class(hdd=(150.0, 400.0), nvme=(3000.0, 500000.0), ssd=(500.0, 20000.0)))
    assert [t.storage_class for t in tiers] == ["nvme", "ssd", "hdd"]
    assert tiers[0].measurements[0].labels == {"storage_class": "nvme", "rank": "1"}
    verdict = tier_verdict(tiers)
    assert verdict.status is Status.PASSED and "1. nvme" in verdict.detail


def test_one_class_is_not_tiering() -> None:
    verdict = tier_verdict(rank_tiers(_by_class(standard=(500.0, 9000.0))))
    assert verdict.status is Status.FAILED and verdict.detail.startswith("only one storage tier (standard)")


def test_classes_of_equal_speed_do_not_form_tiers() -> None:
    verdict = tier_verdict(rank_tiers(_by_class(a=(500.0, 9000.0), b=(450.0, 8500.0))))
    assert verdict.status is Status.FAILED and "do not form tiers" in verdict.detail and "1.11x" in verdict.detail


def test_headline_picks_sequential_read_and_random_read() -> None:
    ms = [
        Measurement(metric="bw", value=800.0, unit="MiB/s", labels={"job": "seqread", "direction": "read"}),
        Measurement(metric="iops", value=1234.0, unit="IOPS", labels={"job": "randread", "direction": "read"}),
        Measurement(metric="bw", value=1.0, unit="MiB/s", labels={"job": "seqwrite", "direction": "write"}),
    ]
    assert headline(ms) == {"seqread_bw": 800.0, "randread_iops": 1234.0, "emulated": False}


def test_fio_working_set_must_fit_the_claim() -> None:
    assert fio_size_bytes("256m") == 256 * 1024**2 and fio_size_bytes("1g") == 1024**3
    check_fio_fits({"file_size": "256m", "pvc_size": "2Gi"})
    with pytest.raises(ConfigError, match=r"file_size=3g .* does not fit the claim pvc_size=2Gi"):
        check_fio_fits({"file_size": "3g", "pvc_size": "2Gi"})
    with pytest.raises(ConfigError, match="fio size 'lots'"):
        fio_size_bytes("lots")
