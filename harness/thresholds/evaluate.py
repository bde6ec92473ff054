"""Evaluate a profile's thresholds for one workload on its measurements (DESIGN.md section 6).

Speed matters because a fleet run can produce one measurement per node x GPU x size: measurements are indexed by
metric once, and within a metric by label value on first use, so a threshold only looks at the measurements its
selector can match. 100,000 measurements x 200 thresholds evaluate in well under a second
(``benchmarks/test_thresholds_bench.py``).

Decisions (also in the package docstring):

- A bar and a measurement whose units cannot be compared (ms vs GB/s) is a configuration error, raised as
  :class:`ConfigError` naming the threshold and both units, never a failed check: the profile is wrong, not the
  hardware.
- Nothing matched -> one ``no-data`` check, which counts as a failure for either severity.
- Regression rules are not evaluated at all when no baseline is given (the run was not asked to compare); when a
  baseline is given but lacks the measurement, the check is ``no-data`` with a detail saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.errors import ConfigError
from harness.measurement import Measurement
from harness.thresholds.model import (
    Aggregate,
    Check,
    Checks,
    Comparison,
    LabelSelector,
    Profile,
    RuleKind,
    Status,
    Threshold,
)
from harness.thresholds.verdicts import judge_threshold
from harness.units import UnitMismatch, convert

__all__ = ["MeasurementIndex", "evaluate", "evaluate_thresholds"]

log = logging.getLogger(__name__)


class _MetricBucket:
    """The measurements of one metric, with per-label postings (value -> positions) built on first use.

    Selection intersects the positions of each selector key (smallest first, the rest as sets in C), so a
    threshold costs about the size of its narrowest label slice, not the number of measurements of the metric.
    """

    __slots__ = ("_by_key", "_exact", "_sets", "items")

    def __init__(self) -> None:
        self.items: list[Measurement] = []
        self._by_key: dict[str, dict[str, list[int]]] = {}
        self._sets: dict[tuple[str, frozenset[str] | None], tuple[list[int], frozenset[int]]] = {}
        self._exact: dict[frozenset[tuple[str, str]], Measurement] | None = None

    def _postings(self, key: str) -> dict[str, list[int]]:
        postings = self._by_key.get(key)
        if postings is None:
            postings = {}
            for i, m in enumerate(self.items):
                value = m.labels.get(key)
                if value is not None:
                    postings.setdefault(value, []).append(i)
            self._by_key[key] = postings
        return postings

    def _positions(self, key: str, values: frozenset[str] | None) -> tuple[list[int], frozenset[int]]:
        """Sorted positions (and the same as a set) of the measurements whose ``key`` is in ``values``
        (``None``: has ``key`` at all)."""
        cached = self._sets.get((key, values))
        if cached is None:
            postings = self._postings(key)
            if values is not None and len(values) == 1:
                ids = postings.get(next(iter(values)), [])
            else:
                chosen = postings.values() if values is None else (postings.get(v, ()) for v in values)
                ids = sorted(i for group in chosen for i in group)
            cached = self._sets[(key, values)] = (ids, frozenset(ids))
        return cached

    def select(self, selector: LabelSelector) -> list[Measurement]:
        if not selector:
            return self.items
        constraints = [self._positions(k, v) for k, v in selector.equals.items()]
        constraints += [self._positions(k, None) for k in selector.present]
        constraints.sort(key=lambda c: len(c[0]))
        base = constraints[0][0]
        if not base:
            return []
        items = self.items
        if len(constraints) == 1:
            return [items[i] for i in base]
        keep = frozenset(base).intersection(*(c[1] for c in constraints[1:]))
        return [items[i] for i in base if i in keep]

    def exact(self, labels: Mapping[str, str]) -> Measurement | None:
        """The measurement with exactly these labels (the last one if a run reported it twice)."""
        if self._exact is None:
            self._exact = {frozenset(m.labels.items()): m for m in self.items}
        return self._exact.get(frozenset(labels.items()))


class MeasurementIndex:
    """Measurements indexed by metric; reusable across thresholds and workloads."""

    __slots__ = ("_buckets",)

    def __init__(self, measurements: Iterable[Measurement]) -> None:
        self._buckets: dict[str, _MetricBucket] = {}
        for m in measurements:
            bucket = self._buckets.get(m.metric)
            if bucket is None:
                bucket = self._buckets[m.metric] = _MetricBucket()
            bucket.items.append(m)

    def select(self, metric: str, selector: LabelSelector) -> list[Measurement]:
        bucket = self._buckets.get(metric)
        return bucket.select(selector) if bucket is not None else []

    def every(self) -> list[Measurement]:
        """Every indexed measurement, metric by metric (a verdict rule reads several metrics at once)."""
        return [m for bucket in self._buckets.values() for m in bucket.items]

    def exact(self, metric: str, labels: Mapping[str, str]) -> Measurement | None:
        bucket = self._buckets.get(metric)
        return bucket.exact(labels) if bucket is not None else None


class _Converter:
    """Unit conversion with the factor cached per unit pair; a mismatch becomes a ConfigError for the threshold."""

    __slots__ = ("_factors",)

    def __init__(self) -> None:
        self._factors: dict[tuple[str, str], float] = {}

    def __call__(self, threshold: Threshold, value: float, from_unit: str, to_unit: str) -> float:
        return value * self.factor(threshold, from_unit, to_unit)

    def factor(self, threshold: Threshold, from_unit: str, to_unit: str) -> float:
        if from_unit == to_unit:
            return 1.0
        factor = self._factors.get((from_unit, to_unit))
        if factor is None:
            try:
                factor = convert(1.0, from_unit, to_unit)
            except UnitMismatch as exc:
                raise ConfigError(
                    f"threshold {threshold.id} ({threshold.workload}): bar unit {to_unit} cannot be compared with "
                    f"measurement unit {from_unit} of {threshold.metric}: {exc}"
                ) from None
            self._factors[(from_unit, to_unit)] = factor
        return factor

    def values(self, threshold: Threshold, matched: Sequence[Measurement], to_unit: str) -> list[float]:
        """The matched values in ``to_unit`` (one factor lookup per run of equal units, not per value)."""
        out: list[float] = []
        last_unit, factor = to_unit, 1.0
        for m in matched:
            if m.unit != last_unit:
                last_unit, factor = m.unit, self.factor(threshold, m.unit, to_unit)
            out.append(m.value * factor)
        return out


def evaluate(
    profile: Profile,
    workload: str,
    measurements: Iterable[Measurement],
    *,
    baseline: Mapping[str, Iterable[Measurement]] | None = None,
    scope: Mapping[str, str] | None = None,
) -> Checks:
    """Checks for every threshold ``profile`` has for ``workload``, in the profile's order.

    ``scope`` narrows the thresholds to those a test's measurements can answer: a test that measures only
    ``verb=get`` passes ``{"verb": "get"}`` and bars selecting other verbs are left out instead of reading no-data.

    Verdict rules (:attr:`RuleKind.is_verdict`) a profile tunes are left out too: their evidence is complete only
    where a suite says so, and it judges them there with :func:`harness.thresholds.verdicts.judge`.

    ``baseline`` maps workload names to the baseline run's measurements (a run record's results grouped by
    workload); regression rules compare against ``baseline[workload]``. Raises :class:`ConfigError` when a bar's
    unit cannot be compared with a measurement's. A workload without thresholds gives an empty list: the caller
    decides whether "no bar for this hardware" is a skip.
    """
    measurements = measurements if isinstance(measurements, list) else list(measurements)
    thresholds = [
        t
        for t in profile.thresholds_for(workload)
        if not t.kind.is_verdict
        and all(key not in t.labels.equals or value in t.labels.equals[key] for key, value in (scope or {}).items())
    ]
    if not thresholds:
        log.info("profile %s has no thresholds for workload %s", profile.name, workload)
        narrowed = f" for {', '.join(f'{k}={v}' for k, v in sorted(scope.items()))}" if scope else ""
        return Checks(
            unjudged=f"profile {profile.name} has no {workload} thresholds{narrowed}", measured=len(measurements)
        )
    base = None if baseline is None else baseline.get(workload, ())
    checks = evaluate_thresholds(thresholds, measurements, baseline=base)
    if not checks:
        checks.unjudged = f"profile {profile.name}: the {workload} bars are regression rules and no baseline was given"
    return checks


def evaluate_thresholds(
    thresholds: Sequence[Threshold],
    measurements: Iterable[Measurement] | MeasurementIndex,
    *,
    baseline: Iterable[Measurement] | MeasurementIndex | None = None,
) -> Checks:
    """Checks for ``thresholds`` (any workloads) on ``measurements``; see :func:`evaluate`."""
    if not isinstance(measurements, MeasurementIndex):
        measurements = measurements if isinstance(measurements, list) else list(measurements)
    measured = None if isinstance(measurements, MeasurementIndex) else len(measurements)
    index = measurements if isinstance(measurements, MeasurementIndex) else MeasurementIndex(measurements)
    base_index = baseline if baseline is None or isinstance(baseline, MeasurementIndex) else MeasurementIndex(baseline)
    converter = _Converter()
    checks = Checks(
        unjudged="no threshold applies" if not thresholds else "only regression rules apply and no baseline was given",
        measured=measured,
    )
    for threshold in thresholds:
        if threshold.kind.is_verdict:  # judges its whole evidence, not the bar's selection of it
            checks.extend(judge_threshold(threshold, index.every()))
            continue
        matched = index.select(threshold.metric, threshold.labels)
        if threshold.kind is RuleKind.PRESENCE:
            checks.append(_presence(threshold, matched))
        elif not matched:
            if threshold.kind is RuleKind.REGRESSION and base_index is None:
                continue
            checks.append(_no_data(threshold))
        elif threshold.kind is RuleKind.ABSOLUTE:
            _absolute(threshold, matched, converter, checks)
        elif base_index is None:
            log.info("threshold %s: no baseline given, regression rule not evaluated", threshold.id)
        else:
            _regression(threshold, matched, base_index, converter, checks)
    return checks


def _no_data(
    threshold: Threshold, *, labels: Mapping[str, str] | None = None, detail: str = "", unit: str | None = None
) -> Check:
    return threshold.check(
        status=Status.NO_DATA,
        unit=unit or threshold.unit,
        comparison=threshold.comparison,
        bar=threshold.value,
        regression_pct=threshold.regression_pct,
        labels=labels or {},
        detail=detail,
    )


def _presence(threshold: Threshold, matched: Sequence[Measurement]) -> Check:
    if not matched:
        return _no_data(threshold)
    return threshold.check(
        status=Status.PASSED,
        matched=len(matched),
        emulated=any(m.emulated for m in matched),
    )


def _common_labels(matched: Sequence[Measurement]) -> dict[str, str]:
    common = dict(matched[0].labels)
    for m in matched[1:]:
        for key in [k for k, v in common.items() if m.labels.get(k) != v]:
            del common[key]
    return common


def _each(threshold: Threshold) -> bool:
    """``each``, and ``worst`` on an ``==`` bar (no value is "worse" than another there)."""
    return threshold.aggregate is Aggregate.EACH or (
        threshold.aggregate is Aggregate.WORST
        and threshold.comparison is not None
        and threshold.comparison.higher_is_better is None
    )


def _reduce(
    threshold: Threshold, values: list[float], matched: Sequence[Measurement]
) -> tuple[float, Mapping[str, str], bool]:
    """(value, labels, emulated) of a min/max/mean aggregate over converted ``values``."""
    aggregate = threshold.aggregate
    if aggregate is Aggregate.WORST:
        higher_is_better = threshold.comparison.higher_is_better if threshold.comparison is not None else None
        aggregate = Aggregate.MIN if higher_is_better is not False else Aggregate.MAX
    if aggregate is Aggregate.MEAN or len(values) == 1:
        value = sum(values) / len(values)
        return (
            value,
            (matched[0].labels if len(matched) == 1 else _common_labels(matched)),
            any(m.emulated for m in matched),
        )
    pick = min if aggregate is Aggregate.MIN else max
    i = pick(range(len(values)), key=values.__getitem__)
    return values[i], matched[i].labels, matched[i].emulated


def _absolute(threshold: Threshold, matched: Sequence[Measurement], converter: _Converter, checks: list[Check]) -> None:
    unit = threshold.unit or ""
    bar = threshold.value if threshold.value is not None else 0.0
    comparison = threshold.comparison
    assert comparison is not None  # guaranteed by Threshold.__post_init__
    values = converter.values(threshold, matched, unit)
    if _each(threshold):  # one check per measurement (e.g. per node)
        judged = [(observed, m.labels, 1, m.emulated) for m, observed in zip(matched, values, strict=True)]
    else:
        observed, labels, emulated = _reduce(threshold, values, matched)
        judged = [(observed, labels, len(matched), emulated)]
    for observed, labels, count, emulated in judged:
        checks.append(
            _compared(threshold, comparison, observed, bar, unit=unit, labels=labels, matched=count, emulated=emulated)
        )


def _compared(threshold: Threshold, comparison: Comparison, observed: float, bar: float, **outcome: Any) -> Check:
    """The check of ``observed`` against ``bar``: its status, and the numbers a report shows for it."""
    status = threshold.status_for(comparison.holds(observed, bar))
    return threshold.check(status=status, observed=observed, comparison=comparison, bar=bar, **outcome)


def _regression_bar(threshold: Threshold, baseline_value: float) -> float:
    pct = (threshold.regression_pct or 0.0) / 100.0
    assert threshold.comparison is not None
    if threshold.comparison.higher_is_better:
        return baseline_value - abs(baseline_value) * pct
    return baseline_value + abs(baseline_value) * pct


def _regression(
    threshold: Threshold,
    matched: Sequence[Measurement],
    base_index: MeasurementIndex,
    converter: _Converter,
    checks: list[Check],
) -> None:
    unit = threshold.unit or matched[0].unit
    comparison = threshold.comparison
    assert comparison is not None

    def check(observed: float, baseline_value: float, labels: Mapping[str, str], n: int, emulated: bool) -> Check:
        bar = _regression_bar(threshold, baseline_value)
        return _compared(
            threshold,
            comparison,
            observed,
            bar,
            unit=unit,
            baseline_value=baseline_value,
            regression_pct=threshold.regression_pct,
            labels=labels,
            matched=n,
            emulated=emulated,
        )

    if _each(threshold):
        for m in matched:
            base = base_index.exact(threshold.metric, m.labels)
            if base is None:
                checks.append(
                    _no_data(
                        threshold,
                        labels=m.labels,
                        unit=unit,
                        detail="the baseline run has no measurement with these labels",
                    )
                )
                continue
            checks.append(
                check(
                    converter(threshold, m.value, m.unit, unit),
                    converter(threshold, base.value, base.unit, unit),
                    m.labels,
                    1,
                    m.emulated,
                )
            )
        return
    base_matched = base_index.select(threshold.metric, threshold.labels)
    if not base_matched:
        checks.append(_no_data(threshold, unit=unit, detail="the baseline run has no matching measurement"))
        return
    observed, labels, emulated = _reduce(threshold, converter.values(threshold, matched, unit), matched)
    baseline_value, _, _ = _reduce(threshold, converter.values(threshold, base_matched, unit), base_matched)
    checks.append(check(observed, baseline_value, labels, len(matched), emulated))
