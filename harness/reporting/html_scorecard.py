"""The top of the HTML report: the headline numbers against their bars, every failure with its reason and likely
cause, and the capacity/fragmentation panel, before the per-test details.

Why its own module: a reader opens the report for a handful of numbers (best all-reduce busbw per scope, fio
sequential read and random-read IOPS per storage class, TTFT/TPOT p50/p99 and requests/s, pod-startup p99, GPU
TFLOP/s and HBM GB/s) and for what failed and why; html.py renders the details. Everything here is computed from
the results alone (one pass over the measurements, so 50,000 of them stay inside the render budget).

A headline row shows the best value of its group (max for throughput, and for latency the value itself per
group), the bar of a check judging that metric and labels, and that check's status; without such a check it says
"no bar" -- measured, not judged. Emulated values are marked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from markupsafe import Markup

from harness.reporting.schema import CheckEntry, MeasurementEntry, TestResult
from harness.reporting.svg import bar_chart, compact_number

__all__ = [
    "HEADLINES",
    "CapacityPanel",
    "FailureRow",
    "Headline",
    "ScoreRow",
    "anchor",
    "capacity_panel",
    "failure_rows",
    "score_rows",
    "scorecard_rows",
]

_MAX_ROWS = 6  # per headline: a fleet of storage classes or APIs stays readable


@dataclass(frozen=True, slots=True)
class Headline:
    """One line of the scorecard: a metric, which measurements count, how groups are formed and the best chosen."""

    area: str
    title: str
    metric: str
    where: Mapping[str, str]  # labels the measurement must have (value "*" = any value present)
    group_by: tuple[str, ...]
    best: str  # "max" (throughput) or "min" (latency)


#: The scorecard, in display order.
HEADLINES: tuple[Headline, ...] = (
    Headline("network", "all-reduce busbw", "busbw", {"placement": "out-of-place"}, ("scope", "transport"), "max"),
    Headline("network", "RDMA write bandwidth", "ib_write_bw", {}, ("device",), "max"),
    Headline("network", "pod-to-pod TCP throughput", "throughput", {"tool": "iperf3"}, ("direction",), "max"),
    Headline(
        "storage", "fio sequential read", "bw", {"job": "seqread", "direction": "read"}, ("storage_class",), "max"
    ),
    Headline(
        "storage", "fio random-read IOPS", "iops", {"job": "randread", "direction": "read"}, ("storage_class",), "max"
    ),
    Headline("serving", "TTFT p50", "ttft", {"stat": "percentile", "percentile": "50"}, ("api", "tool"), "min"),
    Headline("serving", "TTFT p99", "ttft", {"stat": "percentile", "percentile": "99"}, ("api", "tool"), "min"),
    Headline("serving", "TPOT p50", "tpot", {"stat": "percentile", "percentile": "50"}, ("api", "tool"), "min"),
    Headline("serving", "TPOT p99", "tpot", {"stat": "percentile", "percentile": "99"}, ("api", "tool"), "min"),
    Headline("serving", "requests/s", "requests_per_s", {}, ("api", "tool"), "max"),
    Headline(
        "control_plane", "pod startup p99", "startup_latency", {"stat": "percentile", "percentile": "99"}, (), "min"
    ),
    Headline("compute", "GPU TFLOP/s", "tflops", {}, ("dtype",), "max"),
    Headline("compute", "HBM bandwidth", "membw", {}, (), "max"),
)


def _matches(labels: Mapping[str, str], where: Mapping[str, str]) -> bool:
    return all(k in labels and (v == "*" or labels[k] == v) for k, v in where.items())


def _selector_fits(selector: Mapping[str, object], labels: Mapping[str, str]) -> bool:
    for key, wanted in selector.items():
        if wanted == "*":
            if key not in labels:
                return False
        elif labels.get(key) not in (wanted if isinstance(wanted, list) else [wanted]):
            return False
    return True


def _check_for(checks: Sequence[CheckEntry], metric: str, labels: Mapping[str, str]) -> CheckEntry | None:
    """The check judging ``metric`` whose selector fits ``labels`` (failed before warned before passed)."""
    found = [c for c in checks if c.metric == metric and _selector_fits(c.selector, labels)]
    order = {"failed": 0, "no-data": 1, "warned": 2, "passed": 3}
    return min(found, key=lambda c: order.get(c.status, 4), default=None)


def _value(value: float) -> str:
    """A headline number: 4 significant digits, thousands separated above 10,000 (12,345 IOPS, 235.3 GB/s)."""
    return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.4g}"


def _bar(check: CheckEntry) -> str:
    """The bar from the check's fields: a number, a baseline run, or for a rule without a number its kind's name
    (presence, and kinds added to the thresholds later); a verdict rule by what it demands."""
    if check.verdict_bar:
        return check.verdict_bar
    if check.bar is not None:
        return f"{check.comparison} {_value(check.bar)} {check.unit}"
    if check.regression_pct is not None:
        return f"{check.comparison} baseline"
    return check.kind or "-"


def anchor(test_id: str) -> str:
    """The HTML id suffix of a test's details card (``t-<anchor>``)."""
    return "".join(c if c.isalnum() else "-" for c in test_id)[:80]


@dataclass(slots=True)
class _Best:
    value: float
    unit: str
    labels: Mapping[str, str]
    emulated: bool
    test: str


def scorecard_rows(results: Sequence[TestResult]) -> list[tuple[Headline, str, _Best, CheckEntry | None]]:
    """(headline, group text, best measurement, judging check) for every headline with data, in order."""
    wanted = {h.metric for h in HEADLINES}
    groups: dict[tuple[int, tuple[str, ...]], _Best] = {}
    checks_of: dict[str, list[CheckEntry]] = {}
    for result in results:
        test = result.id or result.name
        if result.checks:
            checks_of[test] = result.checks
        measurements = result.measurements
        # the collective suites record the transports NCCL used as ``transport`` measurements of the same test
        used = "+".join(
            sorted({m.labels["transport"] for m in measurements if m.metric == "transport" and "transport" in m.labels})
        )
        for m in measurements:
            if m.metric not in wanted:
                continue
            labels: Mapping[str, str] = m.labels
            if used and "transport" not in labels:
                labels = {**labels, "transport": used}
            for index, headline in enumerate(HEADLINES):
                if headline.metric != m.metric or not _matches(labels, headline.where):
                    continue
                key = (index, tuple(labels.get(k, "") for k in headline.group_by))
                best = groups.get(key)
                better = best is None or (m.value > best.value if headline.best == "max" else m.value < best.value)
                if better:
                    groups[key] = _Best(m.value, m.unit, labels, m.emulated, test)
    rows: list[tuple[Headline, str, _Best, CheckEntry | None]] = []
    shown: dict[int, int] = {}
    for (index, group), best in sorted(groups.items(), key=lambda kv: kv[0]):
        headline = HEADLINES[index]
        shown[index] = shown.get(index, 0) + 1
        if shown[index] > _MAX_ROWS:
            continue
        text = ", ".join(f"{k}={v}" for k, v in zip(headline.group_by, group, strict=True) if v)
        rows.append((headline, text, best, _check_for(checks_of.get(best.test, []), headline.metric, best.labels)))
    return rows


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoreRow:
    """One scorecard line as the page shows it."""

    area: str
    title: str
    group: str
    value: str
    unit: str
    emulated: bool
    status: str  # the judging check's status, "" when no check judges it
    bar: str  # "" when no check judges it ("measured, not judged")
    anchor: str


def score_rows(results: Sequence[TestResult]) -> list[ScoreRow]:
    """The scorecard (empty when no headline metric was measured)."""
    return [
        ScoreRow(
            area=headline.area.replace("_", " "),
            title=headline.title,
            group=group,
            value=_value(best.value),
            unit=best.unit,
            emulated=best.emulated,
            status=check.status if check else "",
            bar=_bar(check) if check else "",
            anchor=anchor(best.test),
        )
        for headline, group, best, check in scorecard_rows(results)
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class FailureRow:
    """One failed or errored test: what failed, why (first line of its message), the likely cause."""

    status: str
    name: str
    anchor: str
    failure_kind: str
    reason: str
    cause: str


def failure_rows(results: Sequence[TestResult]) -> list[FailureRow]:
    """Every failed or errored test, failures first; the likely cause is the failed checks' hints."""
    bad = sorted((r for r in results if r.status in ("failed", "error")), key=lambda r: (r.status != "failed", r.id))
    rows = []
    for r in bad:
        test = r.id or r.name or "?"
        lines = [line.strip() for line in r.message.strip().splitlines() if line.strip()]
        reason = lines[1] if len(lines) > 1 and lines[0].endswith("failed:") else (lines[0] if lines else "-")
        hints = list(dict.fromkeys(c.hint for c in r.checks if c.hint and c.failing))
        rows.append(
            FailureRow(
                status=r.status,
                name=r.name or test,
                anchor=anchor(test),
                failure_kind=r.failure_kind,
                reason=reason[:400],
                cause="; ".join(hints)[:400],
            )
        )
    return rows


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacityRow:
    pool: str
    resource: str
    allocatable: str
    requested: str
    used: str
    unit: str
    requested_pct: str
    used_pct: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StrandedRow:
    resource: str
    gang_size: str
    stranded: str
    fits: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacityPanel:
    """The capacity measurements (``capacity``, ``stranded_devices``) per pool and resource, fragmentation, and a
    bar chart of requested and used as % of allocatable."""

    rows: list[CapacityRow]
    stranded: list[StrandedRow]
    chart: Markup


def capacity_panel(results: Sequence[TestResult]) -> CapacityPanel | None:
    """The panel, or None when no test measured capacity."""
    amounts: dict[tuple[str, str], dict[str, tuple[float, str]]] = {}
    stranded: list[MeasurementEntry] = []
    for result in results:
        for m in result.measurements:
            labels = m.labels
            if m.metric == "capacity" and "pool" in labels and "resource" in labels:
                amounts.setdefault((labels["pool"], labels["resource"]), {})[labels.get("kind", "")] = (m.value, m.unit)
            elif m.metric == "stranded_devices":
                stranded.append(m)
    if not amounts and not stranded:
        return None
    rows, categories = [], []
    requested_pct: list[float | None] = []
    used_pct: list[float | None] = []
    for (pool, resource), kinds in sorted(amounts.items()):
        allocatable = kinds["allocatable"][0] if "allocatable" in kinds else None

        def cell(kind: str, kinds: Mapping[str, tuple[float, str]] = kinds) -> str:
            return compact_number(kinds[kind][0]) if kind in kinds else "-"

        def pct(
            kind: str, kinds: Mapping[str, tuple[float, str]] = kinds, total: float | None = allocatable
        ) -> float | None:
            return 100.0 * kinds[kind][0] / total if kind in kinds and total else None

        req, used = pct("requested"), pct("used")
        rows.append(
            CapacityRow(
                pool=pool,
                resource=resource,
                allocatable=cell("allocatable"),
                requested=cell("requested"),
                used=cell("used"),
                unit=next((u for _, u in kinds.values() if u), ""),
                requested_pct="-" if req is None else f"{req:.0f}%",
                used_pct="-" if used is None else f"{used:.0f}%",
            )
        )
        categories.append(f"{pool}/{resource}")
        requested_pct.append(req)
        used_pct.append(used)
    chart = (
        bar_chart(
            categories,
            [("requested %", requested_pct), ("used %", used_pct)],
            title="Requested and used, % of allocatable",
            y_label="%",
        )
        if categories
        else Markup()
    )
    return CapacityPanel(
        rows=rows,
        stranded=[
            StrandedRow(
                resource=m.labels.get("resource", ""),
                gang_size=m.labels.get("gang_size", ""),
                stranded=compact_number(m.value),
                fits=m.labels.get("fits", ""),
            )
            for m in stranded
        ],
        chart=chart,
    )
