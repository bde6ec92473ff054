"""assert_passed: one AssertionError listing each failed check with its source and hint; warnings never fail."""

from __future__ import annotations

import pytest

from harness.measurement import Measurement
from harness.thresholds import (
    Comparison,
    LabelSelector,
    Severity,
    Threshold,
    assert_passed,
    evaluate,
    evaluate_thresholds,
    failure_message,
    load_profile,
)


def busbw_bar(**kw) -> Threshold:
    defaults = dict(
        id="nccl-intra-busbw",
        workload="nccl-allreduce",
        metric="busbw",
        source="azurehpc nd96isr_h100_v5.conf 460",
        comparison=Comparison.GE,
        value=460.0,
        unit="GB/s",
        labels=LabelSelector.parse({"op": "all_reduce", "size": ["8589934592", "17179869184"]}),
    )
    defaults.update(kw)
    return Threshold(**defaults)


def busbw(value: float, **labels: str) -> Measurement:
    return Measurement(
        metric="busbw", value=value, unit="GB/s", labels={"op": "all_reduce", "size": "17179869184", **labels}
    )


def test_message_lists_each_failed_check_in_the_documented_format():
    thresholds = [
        busbw_bar(hint="check NCCL_P2P_DISABLE"),
        busbw_bar(
            id="gemm",
            metric="tflops",
            workload="cuda-gemm",
            labels=LabelSelector.parse({"dtype": "bf16"}),
            value=600.0,
            unit="TFLOP/s",
            source="60% of 989",
        ),
        busbw_bar(id="passing", value=100.0),
        busbw_bar(id="warning", value=1000.0, severity=Severity.WARN),
    ]
    checks = evaluate_thresholds(thresholds, [busbw(401.2)])
    with pytest.raises(AssertionError) as info:
        assert_passed(checks)
    assert str(info.value) == (
        "2 of 4 checks failed:\n"
        "  nccl-intra-busbw: busbw{op=all_reduce, size=17179869184} = 401.2 GB/s, bar >= 460 GB/s "
        "(source: azurehpc nd96isr_h100_v5.conf 460); hint: check NCCL_P2P_DISABLE\n"
        "  gemm: no data for tflops{dtype=bf16}"
    )


def test_no_hint_no_hint_suffix():
    checks = evaluate_thresholds([busbw_bar()], [busbw(1.0)])
    assert checks[0].message.endswith("(source: azurehpc nd96isr_h100_v5.conf 460)")


def test_no_data_message_shows_the_selector():
    checks = evaluate_thresholds([busbw_bar()], [])
    assert failure_message(checks) == (
        "1 of 1 check failed:\n  nccl-intra-busbw: no data for busbw{op=all_reduce, size in [17179869184, 8589934592]}"
    )


def test_warnings_and_passes_do_not_raise():
    checks = evaluate_thresholds([busbw_bar(severity=Severity.WARN), busbw_bar(id="ok", value=1.0)], [busbw(401.2)])
    assert_passed(checks)
    assert failure_message(checks) is None


def test_zero_checks_never_pass():
    """No check is not a pass: a test whose measurements no bar judged skips saying so, and one that measured
    nothing fails."""
    with pytest.raises(pytest.skip.Exception, match=r"^measured, not judged: no threshold applied"):
        assert_passed([])
    with pytest.raises(pytest.skip.Exception, match=r"measured, not judged: no threshold applies \(IB loopback\)"):
        assert_passed(evaluate_thresholds([], [busbw(401.2)]), note="IB loopback")
    with pytest.raises(AssertionError, match=r"^nothing was measured, so nothing could be judged: no threshold"):
        assert_passed(evaluate_thresholds([], []))


def test_a_profile_without_bars_for_the_workload_skips_naming_it():
    profile = load_profile("cpu-only")
    checks = evaluate(profile, "nccl-allreduce", [busbw(401.2)])
    assert checks == [] and checks.measured == 1
    with pytest.raises(pytest.skip.Exception, match=r"measured, not judged: profile cpu-only has no nccl-allreduce"):
        assert_passed(checks)
    with pytest.raises(AssertionError, match=r"nothing was measured.*profile cpu-only has no nccl-allreduce"):
        assert_passed(evaluate(profile, "nccl-allreduce", []))
