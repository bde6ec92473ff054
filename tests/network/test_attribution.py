"""Per-node attribution: plans for each mode, and which node a slow result is pinned on."""

from __future__ import annotations

import pytest

from harness.thresholds.attribution import Mode, Verdict, attribute, plan


def test_plans() -> None:
    assert plan(["a", "b", "c"], Mode.SINGLE) == [("a",), ("b",), ("c",)]
    assert plan(["a", "b", "c", "d"], Mode.PAIRS) == [("a", "b"), ("c", "d")]
    assert plan(["a", "b", "c"], Mode.PAIRS) == [("a", "b"), ("a", "c")]
    assert plan(["a", "b", "c"], Mode.REFERENCE, reference="b") == [("b", "a"), ("b", "c")]
    with pytest.raises(ValueError, match="at least 2 nodes"):
        plan(["a"], Mode.PAIRS)
    with pytest.raises(ValueError, match="reference node 'z'"):
        plan(["a", "b"], Mode.REFERENCE, reference="z")


def _verdicts(rows: list) -> dict[str, Verdict]:
    return {r.node: r.verdict for r in rows}


def test_single_mode_against_the_median() -> None:
    bar, rows = attribute({("a",): 470.0, ("b",): 468.0, ("c",): 301.0, ("d",): 472.0}, mode=Mode.SINGLE)
    assert bar == pytest.approx(469.0 * 0.9)
    assert _verdicts(rows) == {"a": Verdict.OK, "b": Verdict.OK, "c": Verdict.SLOW, "d": Verdict.OK}
    assert rows[0].node == "c" and rows[0].worst == 301.0  # slow nodes first


def test_reference_mode_blames_the_other_node_only() -> None:
    results = {("ref", "a"): 47.0, ("ref", "b"): 21.0, ("ref", "c"): 46.5}
    _, rows = attribute(results, mode=Mode.REFERENCE, bar=40.0)
    assert _verdicts(rows) == {"a": Verdict.OK, "b": Verdict.SLOW, "c": Verdict.OK}
    _, all_slow = attribute({k: 10.0 for k in results}, mode=Mode.REFERENCE, bar=40.0)
    assert _verdicts(all_slow)["ref"] == Verdict.SLOW  # every pair slow: the reference itself


def test_pairs_mode_is_honest_about_ambiguity() -> None:
    _, rows = attribute({("a", "b"): 20.0, ("c", "d"): 46.0}, mode=Mode.PAIRS, bar=40.0)
    assert _verdicts(rows) == {"a": Verdict.SUSPECT, "b": Verdict.SUSPECT, "c": Verdict.OK, "d": Verdict.OK}
    # an odd node out re-tests a: a slow twice -> slow; its partners stay suspects
    _, rows = attribute({("a", "b"): 20.0, ("c", "d"): 46.0, ("a", "e"): 19.0}, mode=Mode.PAIRS, bar=40.0)
    assert _verdicts(rows) == {
        "a": Verdict.SLOW, "b": Verdict.SUSPECT, "e": Verdict.SUSPECT, "c": Verdict.OK, "d": Verdict.OK
    }  # fmt: skip


def test_lower_is_better_for_latency() -> None:
    bar, rows = attribute({("a",): 2.0, ("b",): 2.1, ("c",): 9.0}, mode=Mode.SINGLE, higher_is_better=False)
    assert bar == pytest.approx(2.1 * 1.1)
    assert _verdicts(rows)["c"] == Verdict.SLOW and rows[0].worst == 9.0
