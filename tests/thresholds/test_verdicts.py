"""Verdict rules: judgements that are not one number, as Checks (built-in defaults, profile overrides, loading,
their place beside evaluate and assert_passed)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.measurement import Measurement
from harness.thresholds import assert_passed, evaluate, load_profile
from harness.thresholds.evaluate import evaluate_thresholds
from harness.thresholds.model import Checks, RuleKind, Severity, Status, Threshold
from harness.thresholds.verdicts import DEFAULT_RULES, judge, judge_threshold, rule_for


def m(metric: str, value: float, unit: str = "count", *, emulated: bool = False, **labels: str) -> Measurement:
    return Measurement(metric=metric, value=value, unit=unit, labels=labels, emulated=emulated)


def tier(name: str, seq: float, iops: float) -> list[Measurement]:
    return [
        m("tier_seqread_bw", seq, "MiB/s", storage_class=name),
        m("tier_randread_iops", iops, "IOPS", storage_class=name),
    ]


def test_every_verdict_kind_has_a_default_rule_with_a_source() -> None:
    kinds = {kind for _, kind in DEFAULT_RULES}
    assert kinds == {k for k in RuleKind if k.is_verdict}
    assert all(t.source.strip() and t.kind.is_verdict for t in DEFAULT_RULES.values())
    assert not RuleKind.ABSOLUTE.is_verdict and RuleKind.GANG_WHOLE.is_verdict


def test_no_corruption_names_each_wrong_size_and_the_footer() -> None:
    exact = [m("wrong", 0, size="1024", placement="out-of-place"), m("oob_values", 0)]
    (ok,) = judge(None, "nccl-allreduce", RuleKind.NO_CORRUPTION, exact)
    assert (
        ok.status is Status.PASSED and ok.detail == "every element exact at 1 message size(s), no out-of-bounds value"
    )
    bad = [m("wrong", 3, size="4096", placement="in-place"), m("oob_values", 2)]
    (failed,) = judge(None, "nccl-allreduce", RuleKind.NO_CORRUPTION, bad)
    assert failed.status is Status.FAILED and failed.observed == 5 and failed.counts_as_failure
    assert failed.detail == (
        "data corruption: 3 wrong element(s) at size 4096 B (in-place); "
        "nccl-tests reported 2 out-of-bounds value(s) (FAILED)"
    )
    assert failed.message.startswith("nccl-no-corruption: data corruption: 3 wrong")
    (nothing,) = judge(None, "collective-allreduce", RuleKind.NO_CORRUPTION, [m("busbw", 1, "GB/s")])
    assert nothing.status is Status.NO_DATA and nothing.counts_as_failure  # missing data is a failure


def test_faster_tier_needs_two_classes_and_the_factor_on_one_headline() -> None:
    (one,) = judge(None, "fio", RuleKind.FASTER_TIER, tier("local", 900, 20000))
    assert one.status is Status.FAILED and one.detail == "only one storage tier (local)"
    (close,) = judge(None, "fio", RuleKind.FASTER_TIER, [*tier("a", 500, 10000), *tier("b", 400, 9000)])
    assert (
        close.status is Status.FAILED and "only 1.25x the slowest (b)" in close.detail and "needs 1.5x" in close.detail
    )
    (tiers,) = judge(None, "fio", RuleKind.FASTER_TIER, [*tier("slow", 100, 9000), *tier("fast", 900, 10000)])
    assert tiers.status is Status.PASSED and tiers.observed == pytest.approx(9.0) and tiers.bar == 1.5
    assert tiers.detail.startswith("tiers: 1. fast (900 MiB/s, 10000 IOPS), 2. slow (100 MiB/s, 9000 IOPS)")
    assert judge(None, "fio", RuleKind.FASTER_TIER, [])[0].status is Status.NO_DATA


def test_rdma_transport_between_nodes_and_inside_one() -> None:
    def check(*transports: str, scope: str = "inter-node", rdma: str = "true") -> tuple[Status, str]:
        evidence = [m("transport", 1, transport=t, scope=scope, rdma=rdma) for t in transports]
        (c,) = judge(None, "nccl-allreduce", RuleKind.RDMA_TRANSPORT, evidence)
        return c.status, c.detail

    assert check("NET/Socket")[0] is Status.FAILED
    assert check("NET/Socket", rdma="false") == (Status.PASSED, "transports NET/Socket")
    assert check("NET/IB") == (
        Status.PASSED,
        "transports NET/IB: RDMA without GPUDirect (GDRDMA): check nvidia-peermem / dmabuf",
    )
    assert check("NET/IB/GDRDMA", "P2P/IPC") == (Status.PASSED, "transports NET/IB/GDRDMA, P2P/IPC")
    assert check("P2P/IPC", "NET/Socket", scope="intra-node")[1].endswith("inside the node went over NET/Socket")
    assert check()[0] is Status.NO_DATA


def test_a_profile_tunes_a_verdict_rule_and_evaluate_leaves_it_to_judge(tmp_path: Path) -> None:
    path = tmp_path / "tuned.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            description: tuned
            thresholds:
              fio:
                - id: fio-tiers-2x
                  metric: tier_seqread_bw
                  rule: faster-tier-faster
                  value: 2
                  severity: warn
                  source: our storage team wants 2x
                - id: fio-bw
                  metric: bw
                  comparison: ">="
                  value: 1
                  unit: MiB/s
                  source: test
            """
        )
    )
    profile = load_profile(str(path))
    assert rule_for(profile, "fio", RuleKind.FASTER_TIER).id == "fio-tiers-2x"
    assert rule_for(profile, "net-gang", RuleKind.GANG_WHOLE) is DEFAULT_RULES[("net-gang", RuleKind.GANG_WHOLE)]
    (warned,) = judge(profile, "fio", RuleKind.FASTER_TIER, [*tier("a", 300, 100), *tier("b", 200, 100)])
    assert warned.status is Status.WARNED and warned.bar == 2.0 and not warned.counts_as_failure
    checks = evaluate(profile, "fio", [m("bw", 5, "MiB/s")])
    assert [c.threshold_id for c in checks] == ["fio-bw"]  # the verdict rule waits for its complete evidence


def test_evaluate_thresholds_dispatches_a_verdict_rule_on_every_metric_it_reads() -> None:
    rule = DEFAULT_RULES[("nccl-allreduce", RuleKind.NO_CORRUPTION)]
    checks = evaluate_thresholds([rule], [m("wrong", 0, size="8"), m("oob_values", 4)])
    assert [c.status for c in checks] == [Status.FAILED] and "4 out-of-bounds" in checks[0].detail
    with pytest.raises(ValueError, match="not a verdict rule"):
        judge_threshold(
            Threshold(id="x", workload="fio", metric="bw", source="s", kind=RuleKind.PRESENCE), [m("bw", 1)]
        )


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (
            "rule: no-corruption\n      value: 1",
            "thresholds.nccl-allreduce[0].value: a no-corruption rule takes no value",
        ),
        ("rule: no-corruption\n      comparison: '>='", "comparison: a no-corruption rule takes no comparison"),
        ("rule: absolute", "rule: 'absolute' is written without rule:"),
        ("rule: corrupt", "rule: 'corrupt' is not one of"),
        ("rule: faster-tier-faster\n      value: 1", "value: the tier factor must be > 1, got 1"),
    ],
)
def test_a_bad_verdict_rule_is_one_line_naming_the_key(tmp_path: Path, entry: str, problem: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "description: bad\nthresholds:\n  nccl-allreduce:\n    - id: v\n      metric: wrong\n"
        f"      source: s\n      {entry}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_profile(str(path))
    assert problem in str(info.value) and "\n" not in str(info.value)


def test_assert_passed_fails_on_a_verdict_but_passing_verdicts_do_not_judge_the_numbers() -> None:
    bad = judge(None, "net-gang", RuleKind.GANG_WHOLE, [m("gang_size", 2), m("gang_pod", 1, pod="p", domain="a")])
    with pytest.raises(AssertionError, match=r"1 of 1 check failed:\n  gang-one-domain: 1 of 2 pods exist"):
        assert_passed(Checks(measured=1), verdicts=bad)
    good = judge(None, "nccl-allreduce", RuleKind.NO_CORRUPTION, [m("wrong", 0, size="8")])
    with pytest.raises(pytest.skip.Exception, match=r"measured, not judged: no bar.*every element exact"):
        assert_passed(Checks(unjudged="no bar", measured=3), verdicts=good)


def test_severity_and_emulation_carry_into_the_check() -> None:
    rule = DEFAULT_RULES[("net-reach", RuleKind.TRAFFIC_DENIED)]
    evidence = [
        m("reachable", 1, phase="baseline", expected="1", emulated=True),
        m("reachable", 1, phase="denied", expected="0"),
    ]
    (check,) = judge_threshold(rule, evidence)
    assert check.status is Status.FAILED and check.emulated and "[emulated]" in check.message
    assert check.severity is Severity.FAIL and check.to_dict()["kind"] == "traffic-denied"
    assert check.bar_text == "denied where a policy denies, admitted where it allows"


def test_no_slow_node_names_the_outlier_and_warns_on_a_suspect() -> None:
    from harness.thresholds.attribution import Mode, group_measurements

    single = group_measurements(
        {("a",): 470.0, ("b",): 468.0, ("c",): 301.0}, metric="busbw", unit="GB/s", mode=Mode.SINGLE
    )
    checks = {c.labels["node"]: c for c in judge(None, "nccl-allreduce", RuleKind.NO_SLOW_NODE, single)}
    assert checks["c"].status is Status.FAILED and checks["c"].observed == 301.0
    assert checks["c"].detail == "slow in all 1 test(s): c: worst 301.0 GB/s, bar 421.2 GB/s (median - 10%)"
    assert checks["a"].status is Status.PASSED and checks["b"].status is Status.PASSED
    pairs = group_measurements(
        {("a", "b"): 20.0, ("c", "d"): 46.0, ("a", "e"): 19.0, ("b", "f"): 45.0},
        metric="ib_write_bw",
        unit="Gbit/s",
        mode=Mode.PAIRS,
    )
    by_node = {c.labels["node"]: c.status for c in judge(None, "perftest-ib", RuleKind.NO_SLOW_NODE, pairs)}
    assert by_node["a"] is Status.FAILED and by_node["b"] is Status.WARNED and by_node["c"] is Status.PASSED
    assert judge(None, "perftest-ib", RuleKind.NO_SLOW_NODE, [])[0].status is Status.NO_DATA
