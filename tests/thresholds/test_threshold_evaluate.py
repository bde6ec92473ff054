"""Evaluation of every rule kind, aggregate, unit conversion and the no-data / emulated / baseline decisions."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.measurement import Measurement
from harness.thresholds import (
    Aggregate,
    Comparison,
    LabelSelector,
    Profile,
    RuleKind,
    Severity,
    Status,
    Threshold,
    evaluate,
    evaluate_thresholds,
)


def bar(metric="busbw", value=460.0, unit="GB/s", cmp=">=", labels=None, **kw) -> Threshold:
    return Threshold(
        id=kw.pop("id", "t1"),
        workload=kw.pop("workload", "nccl-allreduce"),
        metric=metric,
        source="test source",
        labels=LabelSelector.parse(labels),
        comparison=Comparison(cmp),
        value=value,
        unit=unit,
        **kw,
    )


def m(value, metric="busbw", unit="GB/s", emulated=False, **labels) -> Measurement:
    return Measurement(metric=metric, value=value, unit=unit, labels=labels, emulated=emulated)


def one(threshold, measurements, **kw):
    checks = evaluate_thresholds([threshold], measurements, **kw)
    assert len(checks) == 1, checks
    return checks[0]


class TestAbsolute:
    def test_violation_fails(self):
        check = one(bar(), [m(401.2)])
        assert check.status is Status.FAILED
        assert check.counts_as_failure
        assert check.observed == pytest.approx(401.2)

    def test_pass_passes(self):
        check = one(bar(), [m(470.0)])
        assert check.status is Status.PASSED
        assert not check.counts_as_failure

    def test_bar_itself_passes_ge_and_fails_gt(self):
        assert one(bar(cmp=">="), [m(460.0)]).status is Status.PASSED
        assert one(bar(cmp=">"), [m(460.0)]).status is Status.FAILED

    @pytest.mark.parametrize(
        ("cmp", "observed", "status"),
        [
            ("<=", 5.0, Status.PASSED),
            ("<=", 5.1, Status.FAILED),
            ("<", 4.9, Status.PASSED),
            ("<", 5.0, Status.FAILED),
            ("==", 5.0, Status.PASSED),
            ("==", 5.5, Status.FAILED),
        ],
    )
    def test_comparisons(self, cmp, observed, status):
        t = bar(metric="startup_latency", value=5.0, unit="s", cmp=cmp)
        assert one(t, [m(observed, metric="startup_latency", unit="s")]).status is status

    def test_warn_severity_warns_and_does_not_count_as_failure(self):
        check = one(bar(severity=Severity.WARN), [m(100.0)])
        assert check.status is Status.WARNED
        assert not check.counts_as_failure

    def test_warn_severity_still_passes_when_met(self):
        assert one(bar(severity=Severity.WARN), [m(500.0)]).status is Status.PASSED

    def test_no_data_fails(self):
        check = one(bar(labels={"op": "all_reduce"}), [m(500.0, op="all_gather"), m(1.0, metric="other")])
        assert check.status is Status.NO_DATA
        assert check.counts_as_failure
        assert check.observed is None

    def test_no_data_counts_as_failure_for_warn_severity_too(self):
        check = one(bar(severity=Severity.WARN), [])
        assert check.status is Status.NO_DATA
        assert check.counts_as_failure

    def test_unit_conversion_gib_bar_mb_measurement(self):
        # 1 GiB/s = 1073.741824 MB/s
        t = bar(metric="bw", value=1.0, unit="GiB/s", workload="fio")
        passed = one(t, [m(1100.0, metric="bw", unit="MB/s")])
        assert passed.status is Status.PASSED
        assert passed.unit == "GiB/s"
        assert passed.observed == pytest.approx(1100e6 / 1024**3)
        assert one(t, [m(1000.0, metric="bw", unit="MB/s")]).status is Status.FAILED

    def test_unit_conversion_us_measurement_ms_bar(self):
        t = bar(metric="clat", value=100.0, unit="ms", cmp="<=", workload="fio")
        check = one(t, [m(250_000.0, metric="clat", unit="us")])
        assert check.status is Status.FAILED
        assert check.observed == pytest.approx(250.0)

    def test_unit_mismatch_is_config_error_naming_threshold_and_units(self):
        t = bar(id="my-bar", value=5.0, unit="ms", cmp="<=")
        with pytest.raises(ConfigError) as info:
            evaluate_thresholds([t], [m(450.0, unit="GB/s")])
        text = str(info.value)
        assert "my-bar" in text and "ms" in text and "GB/s" in text

    def test_label_selector_forms(self):
        ms = [
            m(470.0, op="all_reduce", size="8589934592", node="a"),
            m(480.0, op="all_reduce", size="17179869184", node="b"),
            m(100.0, op="all_reduce", size="1024", node="c"),
            m(100.0, op="all_reduce", size="17179869184"),
        ]
        t = bar(labels={"op": "all_reduce", "size": {"in": ["8589934592", "17179869184"]}, "node": "*"})
        check = one(t, ms)
        assert check.matched == 2
        assert check.status is Status.PASSED  # min over the two large sizes with a node label

    def test_numeric_label_values_compare_as_text(self):
        t = bar(labels={"nodes": 2})
        assert one(t, [m(470.0, nodes="2")]).status is Status.PASSED


class TestAggregates:
    MS = (m(300.0, node="a"), m(500.0, node="b"), m(490.0, node="c"))

    def test_min_judges_the_worst(self):
        check = one(bar(aggregate=Aggregate.MIN), self.MS)
        assert check.status is Status.FAILED
        assert check.observed == 300.0
        assert check.labels == {"node": "a"}

    def test_max_judges_the_best(self):
        check = one(bar(aggregate=Aggregate.MAX), self.MS)
        assert check.status is Status.PASSED
        assert check.labels == {"node": "b"}

    def test_default_worst_is_min_for_higher_is_better(self):
        check = one(bar(), self.MS)
        assert check.observed == 300.0
        assert check.status is Status.FAILED

    def test_default_worst_is_max_for_lower_is_better(self):
        t = bar(metric="ttft", value=2000.0, unit="ms", cmp="<=")
        ms = [m(900.0, metric="ttft", unit="ms", endpoint="a"), m(2500.0, metric="ttft", unit="ms", endpoint="b")]
        check = one(t, ms)
        assert check.observed == 2500.0
        assert check.labels == {"endpoint": "b"}
        assert check.status is Status.FAILED

    def test_default_worst_on_equality_judges_each(self):
        t = bar(metric="count", value=8.0, unit="count", cmp="==")
        checks = evaluate_thresholds(
            [t], [m(8.0, metric="count", unit="count", node="a"), m(7.0, metric="count", unit="count", node="b")]
        )
        assert [c.status for c in checks] == [Status.PASSED, Status.FAILED]

    def test_mean_keeps_common_labels(self):
        ms = [m(450.0, node="a", op="all_reduce"), m(480.0, node="b", op="all_reduce")]
        check = one(bar(aggregate=Aggregate.MEAN), ms)
        assert check.observed == pytest.approx(465.0)
        assert check.labels == {"op": "all_reduce"}
        assert check.status is Status.PASSED

    def test_each_judges_every_node(self):
        checks = evaluate_thresholds([bar(aggregate=Aggregate.EACH)], self.MS)
        assert [(c.labels["node"], c.status) for c in checks] == [
            ("a", Status.FAILED),
            ("b", Status.PASSED),
            ("c", Status.PASSED),
        ]
        assert all(c.matched == 1 for c in checks)

    def test_each_with_nothing_matched_is_one_no_data(self):
        checks = evaluate_thresholds([bar(aggregate=Aggregate.EACH)], [])
        assert [c.status for c in checks] == [Status.NO_DATA]


class TestEmulated:
    def test_check_on_emulated_measurement_is_flagged(self):
        check = one(bar(), [m(470.0, emulated=True)])
        assert check.emulated
        assert "[emulated]" in check.message

    def test_min_flags_only_when_the_judged_measurement_is_emulated(self):
        check = one(bar(), [m(470.0, emulated=True, node="a"), m(300.0, node="b")])
        assert not check.emulated

    def test_mean_flags_when_any_is_emulated(self):
        check = one(bar(aggregate=Aggregate.MEAN), [m(470.0, emulated=True, node="a"), m(480.0, node="b")])
        assert check.emulated


class TestPresence:
    def presence(self, labels=None):
        return Threshold(
            id="p",
            workload="dcgm-metrics",
            metric="DCGM_FI_DEV_GPU_UTIL",
            source="s",
            labels=LabelSelector.parse(labels),
            kind=RuleKind.PRESENCE,
        )

    def test_present_any_value_passes(self):
        check = one(self.presence({"pod": "*"}), [m(0.0, metric="DCGM_FI_DEV_GPU_UTIL", unit="%", pod="x")])
        assert check.status is Status.PASSED
        assert check.matched == 1

    def test_absent_is_no_data(self):
        # the metric is there, but without the pod label: dcgm-exporter's most common misconfiguration
        check = one(self.presence({"pod": "*"}), [m(0.0, metric="DCGM_FI_DEV_GPU_UTIL", unit="%", gpu="0")])
        assert check.status is Status.NO_DATA
        assert check.message == "p: no data for DCGM_FI_DEV_GPU_UTIL{pod=*}"


class TestRegression:
    def regression(self, cmp=">=", pct=5.0, aggregate=Aggregate.MIN, unit=None):
        return Threshold(
            id="r",
            workload="nccl-allreduce",
            metric="busbw",
            source="baseline:run-42",
            labels=LabelSelector.parse({"op": "all_reduce"}),
            kind=RuleKind.REGRESSION,
            comparison=Comparison(cmp),
            regression_pct=pct,
            aggregate=aggregate,
            unit=unit,
        )

    def test_worse_by_more_than_pct_fails(self):
        check = one(self.regression(), [m(420.0, op="all_reduce")], baseline=[m(450.0, op="all_reduce")])
        assert check.status is Status.FAILED
        assert check.baseline_value == 450.0
        assert check.bar == pytest.approx(427.5)
        assert "baseline 450 GB/s - 5%" in check.message

    def test_worse_within_pct_passes(self):
        check = one(self.regression(), [m(430.0, op="all_reduce")], baseline=[m(450.0, op="all_reduce")])
        assert check.status is Status.PASSED

    def test_better_passes(self):
        check = one(self.regression(), [m(500.0, op="all_reduce")], baseline=[m(450.0, op="all_reduce")])
        assert check.status is Status.PASSED

    def test_lower_is_better_direction(self):
        t = self.regression(cmp="<=", pct=10.0)
        assert one(t, [m(112.0, op="all_reduce")], baseline=[m(100.0, op="all_reduce")]).status is Status.FAILED
        assert one(t, [m(108.0, op="all_reduce")], baseline=[m(100.0, op="all_reduce")]).status is Status.PASSED
        assert one(t, [m(50.0, op="all_reduce")], baseline=[m(100.0, op="all_reduce")]).status is Status.PASSED

    def test_units_converted_between_run_and_baseline(self):
        check = one(
            self.regression(unit="GB/s"),
            [m(440_000.0, unit="MB/s", op="all_reduce")],
            baseline=[m(450.0, op="all_reduce")],
        )
        assert check.status is Status.PASSED
        assert check.observed == pytest.approx(440.0)

    def test_missing_baseline_measurement_is_no_data(self):
        check = one(self.regression(), [m(450.0, op="all_reduce")], baseline=[m(450.0, op="all_gather")])
        assert check.status is Status.NO_DATA
        assert "baseline" in check.message

    def test_no_baseline_given_skips_regression_rules(self):
        assert evaluate_thresholds([self.regression()], [m(450.0, op="all_reduce")]) == []
        assert evaluate_thresholds([self.regression()], []) == []

    def test_missing_current_measurement_with_baseline_is_no_data(self):
        check = one(self.regression(), [], baseline=[m(450.0, op="all_reduce")])
        assert check.status is Status.NO_DATA

    def test_each_pairs_measurements_with_identical_labels(self):
        t = self.regression(aggregate=Aggregate.EACH)
        current = [
            m(450.0, op="all_reduce", node="a"),
            m(400.0, op="all_reduce", node="b"),
            m(450.0, op="all_reduce", node="new"),
        ]
        base = [m(450.0, op="all_reduce", node="a"), m(450.0, op="all_reduce", node="b")]
        checks = evaluate_thresholds([t], current, baseline=base)
        assert [(c.labels["node"], c.status) for c in checks] == [
            ("a", Status.PASSED),
            ("b", Status.FAILED),
            ("new", Status.NO_DATA),
        ]


class TestProfileEvaluate:
    def test_evaluate_selects_the_workload_and_its_baseline(self):
        nccl = bar(id="nccl", regression_pct=None)
        reg = Threshold(
            id="reg",
            workload="fio",
            metric="bw",
            source="baseline:run-1",
            kind=RuleKind.REGRESSION,
            comparison=Comparison.GE,
            regression_pct=10.0,
        )
        profile = Profile(name="p", description="d", thresholds={"nccl-allreduce": (nccl,), "fio": (reg,)})
        checks = evaluate(
            profile,
            "fio",
            [m(80.0, metric="bw", unit="MiB/s")],
            baseline={"fio": [m(100.0, metric="bw", unit="MiB/s")], "nccl-allreduce": []},
        )
        assert [(c.threshold_id, c.status) for c in checks] == [("reg", Status.FAILED)]
        assert profile.evaluate("cuda-gemm", []) == []

    def test_order_follows_the_profile(self):
        a, b = bar(id="a"), bar(id="b", metric="algbw")
        profile = Profile(name="p", description="d", thresholds={"nccl-allreduce": (a, b)})
        checks = profile.evaluate("nccl-allreduce", [m(1.0, metric="algbw"), m(500.0)])
        assert [c.threshold_id for c in checks] == ["a", "b"]

    def test_scope_leaves_out_bars_for_other_label_values(self):
        get = bar(id="get", metric="lat", unit="ms", cmp="<=", value=1000, labels={"verb": "get"}, workload="api")
        mutating = bar(
            id="mut",
            metric="lat",
            unit="ms",
            cmp="<=",
            value=1000,
            labels={"verb": ["create", "patch"]},
            workload="api",
        )
        anyverb = bar(id="any", metric="lat", unit="ms", cmp="<=", value=1000, workload="api")
        profile = Profile(name="p", description="d", thresholds={"api": (get, mutating, anyverb)})
        measured = [m(5.0, metric="lat", unit="ms", verb="get")]
        scoped = evaluate(profile, "api", measured, scope={"verb": "get"})
        assert [(c.threshold_id, c.status) for c in scoped] == [("get", Status.PASSED), ("any", Status.PASSED)]
        unscoped = evaluate(profile, "api", measured)
        assert [c.threshold_id for c in unscoped if c.status is Status.NO_DATA] == ["mut"]
