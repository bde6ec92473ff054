"""``report compare``: the measurements of two run records side by side (DESIGN.md section 7).

A measurement's key is ``(workload, metric, labels)``; the test id is not part of it, so a renamed test still
compares. Several measurements with one key in one record (the same workload run by two tests) are averaged and
the row says how many there were.

Direction comes from the checks: a key covered by a ``>=``/``>`` check is higher-is-better, ``<=``/``<``
lower-is-better (the same sense regression rules use). A key no check covers, or covered by checks that disagree
or by ``==``, has an unknown direction: its delta is reported and never judged. A *regression* is a change in the
worse direction by more than ``fail_on_regression_pct`` percent; with that gate the CLI exits 1 when there is one,
and also when the gate had nothing to judge (:attr:`Comparison.gate_failures`).

Two records are comparable when they ran against the same kind of target with the same profile; otherwise
:func:`compare` raises :class:`ConfigError` saying what differs, unless ``allow_mismatch`` (then the mismatch is
listed in :attr:`Comparison.notes`). Metrics only in one record are listed, not errors.
"""

from __future__ import annotations

import collections
import heapq
import math
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from harness.errors import ConfigError
from harness.reporting.load import RunRecordData, bulk
from harness.reporting.tables import CheckMatcher
from harness.units import UnitMismatch, convert

__all__ = [
    "Comparison",
    "Key",
    "Row",
    "Verdict",
    "check_compatible",
    "compare",
    "format_comparison",
    "key_of",
    "rows_as_dicts",
]

#: ``(workload, metric, ((label, value), ...))`` with labels sorted by key.
Key = tuple[str, str, tuple[tuple[str, str], ...]]

_HIGHER = {">=": True, ">": True, "<=": False, "<": False}


class Verdict(StrEnum):
    REGRESSION = "regression"  # worse beyond the allowed percentage
    WORSE = "worse"
    BETTER = "better"
    SAME = "same"
    CHANGED = "changed"  # direction unknown: delta reported, not judged
    UNIT_MISMATCH = "unit-mismatch"


class Row(NamedTuple):
    """One key present in both runs. A named tuple rather than a frozen dataclass: a fleet comparison makes
    50,000 of them, and a frozen dataclass's ``__init__`` (one ``object.__setattr__`` per field) cost 0.2 s."""

    workload: str
    metric: str
    labels: tuple[tuple[str, str], ...]
    unit: str
    base: float
    new: float
    delta: float
    delta_pct: float | None  # None when base is 0 and new is not
    higher_is_better: bool | None
    verdict: Verdict
    n_base: int = 1
    n_new: int = 1
    emulated: bool = False

    @property
    def key(self) -> Key:
        return (self.workload, self.metric, self.labels)

    @property
    def worse_pct(self) -> float | None:
        """How much worse, in percent of the base (positive = worse); None without a known direction."""
        if self.higher_is_better is None or self.delta_pct is None:
            return None
        return -self.delta_pct if self.higher_is_better else self.delta_pct


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    base_run: str
    new_run: str
    rows: tuple[Row, ...]
    only_in_base: tuple[Key, ...]
    only_in_new: tuple[Key, ...]
    fail_on_regression_pct: float | None
    notes: tuple[str, ...] = field(default=())

    @property
    def regressions(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.verdict is Verdict.REGRESSION)

    @property
    def gate_failures(self) -> tuple[str, ...]:
        """Why the regression gate fails, one reason per line; empty without a gate. A gate that compared nothing
        must not pass: besides regressions it fails when no metric of the new run compares with the base (it
        measured nothing, or other things), when a metric's units do not convert, and when a metric of the base
        is missing from the new run (missing data is a failure, never a pass)."""
        if self.fail_on_regression_pct is None:
            return ()
        reasons = [f"{len(self.regressions)} metrics regressed by more than {self.fail_on_regression_pct:g}%"]
        reasons = reasons if self.regressions else []
        comparable = [r for r in self.rows if r.verdict is not Verdict.UNIT_MISMATCH]
        if not comparable:
            reasons.append(f"nothing to compare: no metric of {self.new_run} is comparable with {self.base_run}")
        mismatched = len(self.rows) - len(comparable)
        if mismatched:
            reasons.append(f"{mismatched} metrics in units that do not convert")
        if self.only_in_base:
            reasons.append(f"{len(self.only_in_base)} metrics of {self.base_run} missing from {self.new_run}")
        return tuple(reasons)

    @property
    def exit_code(self) -> int:
        """1 when the regression gate fails (:attr:`gate_failures`), else 0."""
        return 1 if self.gate_failures else 0

    def counts(self) -> dict[str, int]:
        tally = collections.Counter(row.verdict for row in self.rows)
        return {str(v): tally.get(v, 0) for v in Verdict}


@dataclass(slots=True)
class _Collected:
    """Per key: sums for the mean, and what the rows need. Keys are strings and the values atomic or shared, so
    that 100,000 keys add almost nothing for the cyclic garbage collector to traverse (a tuple-and-list layout
    made its full collections cost more than the comparison itself)."""

    total: dict[str, float] = field(default_factory=dict)
    count: dict[str, int] = field(default_factory=dict)
    unit: dict[str, str] = field(default_factory=dict)
    senses: dict[str, frozenset[str]] = field(default_factory=dict)
    workload: dict[str, str] = field(default_factory=dict)
    measurement: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # the first one, for metric and labels
    emulated: set[str] = field(default_factory=set)
    units_differ: set[str] = field(default_factory=set)

    def public_key(self, key: str) -> Key:
        m = self.measurement[key]
        return (self.workload[key], m["metric"], tuple(sorted(m["labels"].items())))


def _key(workload: str, metric: str, labels: Mapping[str, str]) -> str:
    """One string per (workload, metric, labels); ASCII unit/group separators cannot occur in label text."""
    parts = [workload, metric]
    parts.extend(f"{k}\x1d{v}" for k, v in sorted(labels.items()))
    return "\x1f".join(parts)


def _collect(record: RunRecordData) -> _Collected:
    out = _Collected()
    total, count, unit, senses_of = out.total, out.count, out.unit, out.senses
    for result in record.results:
        measurements = result["measurements"]
        if not measurements:
            continue
        matcher = CheckMatcher(result["checks"]) if result["checks"] else None
        workload = result["workload"]
        for m in measurements:
            labels = m["labels"]
            key = _key(workload, m["metric"], labels)
            value = m["value"]
            known_unit = unit.get(key)
            if known_unit is None:
                unit[key] = m["unit"]
                total[key] = value
                count[key] = 1
                out.workload[key] = workload
                out.measurement[key] = m
            else:
                if m["unit"] != known_unit:
                    try:
                        value = convert(value, m["unit"], known_unit)
                    except UnitMismatch:
                        out.units_differ.add(key)
                        continue
                total[key] += value
                count[key] += 1
            if m["emulated"]:
                out.emulated.add(key)
            if matcher is not None:
                senses = matcher.comparisons(m["metric"], labels)
                if senses:
                    previous = senses_of.get(key)
                    senses_of[key] = senses if previous is None or previous is senses else previous | senses
    return out


def _direction(senses: AbstractSet[str]) -> bool | None:
    directions = {_HIGHER.get(s) for s in senses}
    if len(directions) == 1:
        return next(iter(directions))
    return None  # no check, ``==``, or checks that disagree


def check_compatible(base: RunRecordData, new: RunRecordData) -> list[str]:
    """Why two records should not be compared (empty when they may be); unknown fields are not a mismatch."""
    reasons = []
    for what, b, n in (
        ("target kind", base.target_kind, new.target_kind),
        ("profile", base.profile_name, new.profile_name),
    ):
        if b and n and b != n:
            reasons.append(f"{what} differs: {b!r} in {base.run_id}, {n!r} in {new.run_id}")
    return reasons


def compare(
    base: RunRecordData,
    new: RunRecordData,
    *,
    fail_on_regression_pct: float | None = None,
    allow_mismatch: bool = False,
) -> Comparison:
    """Compare ``new`` against ``base`` (see the module docstring). Raises :class:`ConfigError` for
    incomparable records unless ``allow_mismatch``, and for a negative ``fail_on_regression_pct``."""
    if fail_on_regression_pct is not None and not 0 <= fail_on_regression_pct < math.inf:
        raise ConfigError(f"--fail-on-regression must be a percentage >= 0, got {fail_on_regression_pct}")
    mismatch = check_compatible(base, new)
    if mismatch and not allow_mismatch:
        raise ConfigError(
            f"runs {base.run_id} and {new.run_id} are not comparable: {'; '.join(mismatch)} "
            "(pass --allow-mismatch to compare anyway)"
        )
    notes = [f"compared despite: {m}" for m in mismatch]
    for record in (base, new):
        for what, value in (("target kind", record.target_kind), ("profile", record.profile_name)):
            if not value:
                notes.append(f"{record.run_id}: {what} unknown, not checked")
        notes.extend(f"{record.run_id}: {p}" for p in record.problems)

    with bulk():
        b, n = _collect(base), _collect(new)
        rows = [_row(key, b, n, fail_on_regression_pct) for key in b.unit if key in n.unit]
    only_in_base = tuple(sorted(b.public_key(k) for k in b.unit if k not in n.unit))
    only_in_new = tuple(sorted(n.public_key(k) for k in n.unit if k not in b.unit))
    for acc in (b, n):
        notes.extend(
            f"{_key_text(acc.public_key(key))}: measurements in units that do not convert to {acc.unit[key]}; "
            "those were left out"
            for key in sorted(acc.units_differ)
        )
    return Comparison(
        base_run=base.run_id,
        new_run=new.run_id,
        rows=tuple(rows),
        only_in_base=only_in_base,
        only_in_new=only_in_new,
        fail_on_regression_pct=fail_on_regression_pct,
        notes=tuple(notes),
    )


def _row(key: str, b: _Collected, n: _Collected, pct: float | None) -> Row:
    workload, metric, labels = b.public_key(key)
    base_value = b.total[key] / b.count[key]
    new_value = n.total[key] / n.count[key]
    higher = _direction(b.senses.get(key, frozenset()) | n.senses.get(key, frozenset()))
    emulated = key in b.emulated or key in n.emulated
    verdict: Verdict
    try:
        new_value = convert(new_value, n.unit[key], b.unit[key])
    except UnitMismatch:
        return Row(
            workload=workload,
            metric=metric,
            labels=labels,
            unit=f"{b.unit[key]} vs {n.unit[key]}",
            base=base_value,
            new=new_value,
            delta=math.nan,
            delta_pct=None,
            higher_is_better=higher,
            verdict=Verdict.UNIT_MISMATCH,
            n_base=b.count[key],
            n_new=n.count[key],
            emulated=emulated,
        )
    delta = new_value - base_value
    if base_value != 0:
        delta_pct: float | None = delta / abs(base_value) * 100.0
    else:
        delta_pct = 0.0 if delta == 0 else None
    if delta == 0:
        verdict = Verdict.SAME
    elif higher is None:
        verdict = Verdict.CHANGED
    else:
        worse = (delta < 0) if higher else (delta > 0)
        if not worse:
            verdict = Verdict.BETTER
        else:
            worse_pct = abs(delta_pct) if delta_pct is not None else math.inf
            verdict = Verdict.REGRESSION if pct is not None and worse_pct > pct else Verdict.WORSE
    return Row(
        workload=workload,
        metric=metric,
        labels=labels,
        unit=b.unit[key],
        base=base_value,
        new=new_value,
        delta=delta,
        delta_pct=delta_pct,
        higher_is_better=higher,
        verdict=verdict,
        n_base=b.count[key],
        n_new=n.count[key],
        emulated=emulated,
    )


def _key_text(key: Key) -> str:
    workload, metric, labels = key
    label_text = "{" + ", ".join(f"{k}={v}" for k, v in labels) + "}" if labels else ""
    return f"{workload + ' ' if workload else ''}{metric}{label_text}"


def _num(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.6g}"


def _display_order(row: Row) -> tuple[int, float]:
    return (_ORDER[row.verdict], -abs(row.delta_pct) if row.delta_pct is not None else -math.inf)


_ORDER = {
    Verdict.REGRESSION: 0,
    Verdict.UNIT_MISMATCH: 1,
    Verdict.WORSE: 2,
    Verdict.CHANGED: 3,
    Verdict.BETTER: 4,
    Verdict.SAME: 5,
}


def format_comparison(
    comparison: Comparison, *, max_rows: int | None = 100, include_same: bool = False, max_listed: int = 20
) -> str:
    """A text report: summary, notes, a table (regressions first, then by size of change), and the metrics
    present in only one run. ``max_rows`` bounds the table (None: all rows)."""
    c = comparison
    counts = c.counts()
    gate = (
        f"fail on regression > {c.fail_on_regression_pct:g}%"
        if c.fail_on_regression_pct is not None
        else "no regression gate"
    )
    lines = [
        f"compare {c.base_run} (base) -> {c.new_run} (new); {gate}",
        f"{len(c.rows)} metrics in both: {counts['regression']} regressions, {counts['worse']} worse, "
        f"{counts['better']} better, {counts['same']} unchanged, {counts['changed']} changed (direction unknown), "
        f"{counts['unit-mismatch']} unit mismatches; {len(c.only_in_base)} only in base, "
        f"{len(c.only_in_new)} only in new",
    ]
    lines.extend(f"note: {n}" for n in c.notes)
    lines.extend(f"GATE FAILED: {reason}" for reason in c.gate_failures)
    shown = [r for r in c.rows if include_same or r.verdict is not Verdict.SAME]
    limit = len(shown) if max_rows is None else max_rows
    # Stable: equal keys keep the base record's order. nsmallest: only the printed rows are fully ordered.
    top = heapq.nsmallest(limit, shown, key=_display_order)
    if top:
        table = [("verdict", "metric", "base", "new", "delta", "unit", "better")]
        for r in top:
            pct = "n/a" if r.delta_pct is None else f"{r.delta_pct:+.2f}%"
            better = {True: "higher", False: "lower", None: "?"}[r.higher_is_better]
            counts_text = f" (n={r.n_base}/{r.n_new})" if r.n_base > 1 or r.n_new > 1 else ""
            table.append(
                (
                    str(r.verdict),
                    _key_text(r.key) + counts_text + (" [emulated]" if r.emulated else ""),
                    _num(r.base),
                    _num(r.new),
                    pct,
                    r.unit,
                    better,
                )
            )
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        lines.append("")
        lines.extend("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table)
        if len(shown) > limit:
            lines.append(f"... {len(shown) - limit} more rows")
    for title, keys in (("only in base (missing from new)", c.only_in_base), ("only in new", c.only_in_new)):
        if keys:
            lines.append("")
            lines.append(f"{title}: {len(keys)}")
            lines.extend(f"  {_key_text(k)}" for k in keys[:max_listed])
            if len(keys) > max_listed:
                lines.append(f"  ... {len(keys) - max_listed} more")
    return "\n".join(lines) + "\n"


def rows_as_dicts(rows: Iterable[Row]) -> list[dict[str, Any]]:
    """Rows as plain dicts (labels as a mapping), for JSON output."""
    return [
        {
            "workload": r.workload,
            "metric": r.metric,
            "labels": dict(r.labels),
            "unit": r.unit,
            "base": r.base,
            "new": r.new,
            "delta": r.delta,
            "delta_pct": r.delta_pct,
            "higher_is_better": r.higher_is_better,
            "verdict": str(r.verdict),
            "n_base": r.n_base,
            "n_new": r.n_new,
            "emulated": r.emulated,
        }
        for r in rows
    ]


def key_of(workload: str, metric: str, labels: Mapping[str, str]) -> Key:
    return (workload, metric, tuple(sorted(labels.items())))
