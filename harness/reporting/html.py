"""``report.html``: the run record as one self-contained page (DESIGN.md section 7).

One file with inline CSS and inline SVG and no script at all (sections collapse with ``<details>``), so it opens
anywhere, fetches nothing and cannot log console errors. The page reads top to bottom as a person asks:

1. a verdict banner (PASS / FAIL / ERROR / INCOMPLETE) with counts overall and per area, the target, the profile and
   why it was chosen, harness version and commit, start and duration; then what the record lacks, if anything;
2. the scorecard, every failure with its likely cause, and the capacity panel (:mod:`.html_scorecard`);
3. per-area sections: every test with its doc sentence, status, failure kind and message, its plots
   (:mod:`harness.reporting.html_plots`), its checks (observed, bar, margin, a bar visual, source, status) and its
   measurements; per-node data in a per-area heat table (rows nodes, columns metrics, colour by status and margin);
4. skipped tests grouped by reason, errors and failures with the tails of their events and logs;
5. the capabilities panel and the run's options.

This module computes what the page shows (a view of the typed record, :mod:`harness.reporting.schema`); the markup
is Jinja2 templates in ``templates/`` rendered with the reports' one environment (:mod:`.templating`: autoescape
on, undefined names an error), so everything taken from the record is escaped by the template engine, not by each
call site. The only markup inserted as is are the charts of :mod:`harness.reporting.svg`, rendered the same way.

Size stays bounded for 1,000 nodes and 50,000 measurements: each test lists at most :data:`MAX_CHECK_ROWS` checks
and :data:`MAX_MEASUREMENT_ROWS` measurements (worst first) and summarises the rest per metric; per-node values
appear once, in the heat table. Anything emulated is labelled "emulated" wherever it appears. Checks are shown
from their fields, whatever their rule kind (a kind added to the thresholds needs nothing here).
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.reporting.atomic import write_atomic
from harness.reporting.html_plots import Plot, plots_for
from harness.reporting.html_scorecard import anchor, capacity_panel, failure_rows, score_rows
from harness.reporting.load import RunRecordData, bulk, load_record
from harness.reporting.outcome import Outcome, outcome_of_record
from harness.reporting.schema import AREAS, STATUSES, CheckEntry, MeasurementEntry, NodeEntry, RunInfo, TestResult
from harness.reporting.svg import compact_number
from harness.reporting.templating import render

__all__ = [
    "AREAS",
    "ArtifactsReader",
    "build_html",
    "read_artifact_tails",
    "render_html",
]

log = logging.getLogger(__name__)

REPORT = "report.html"
MAX_CHECK_ROWS = 25
MAX_MEASUREMENT_ROWS = 25
MAX_HEAT_COLUMNS = 60
HEAT_TOP_ROWS = 50
NODE_TABLE_INLINE = 50
MAX_TESTS_PER_SKIP_GROUP = 50
MAX_ERROR_TAILS = 100
MAX_LOGS_PER_TEST = 10
TAIL_LINES = 20
EXPECTED_INFO = (
    "run_id",
    "started_at",
    "finished_at",
    "exit_status",
    "harness_version",
    "git_commit",
    "target",
    "capabilities",
    "profile",
)
POOL_LABELS = (
    "nvidia.com/gpu.product",
    "cloud.google.com/gke-tpu-accelerator",
    "node.kubernetes.io/instance-type",
    "cloud.google.com/gke-nodepool",
    "eks.amazonaws.com/nodegroup",
    "kubernetes.azure.com/agentpool",
    "aibench.io/pool",
)
MINUS, TIMES = "\u2212", "\u00d7"  # typographic minus and multiplication signs
_STATUS_RANK = {"failed": 0, "no-data": 0, "error": 0, "warned": 1, "passed": 2}

#: ``artifacts path -> [(file name, last lines)]``; an empty list when the directory does not exist.
ArtifactsReader = Callable[[str], list[tuple[str, list[str]]]]


# ----------------------------------------------------------------------------------------------------- loading


def read_artifact_tails(path: Path, *, lines: int = TAIL_LINES) -> list[tuple[str, list[str]]]:
    """The last ``lines`` lines of ``events.txt`` and of each ``logs/*.log`` under a test's artifacts dir."""
    if not path.is_dir():
        return []
    files = [path / "events.txt"] if (path / "events.txt").is_file() else []
    logs = path / "logs"
    if logs.is_dir():
        files += sorted(p for p in logs.glob("*.log") if p.is_file())[:MAX_LOGS_PER_TEST]
    out = []
    for file in files:
        try:
            with open(file, "rb") as handle:
                handle.seek(0, 2)
                size = handle.tell()
                handle.seek(max(0, size - 64 * 1024))
                text = handle.read().decode("utf-8", errors="replace")
        except OSError as exc:
            out.append((file.name, [f"(could not read: {exc})"]))
            continue
        out.append((str(file.relative_to(path)), text.splitlines()[-lines:]))
    return out


def render_html(run_dir: Path, *, record: RunRecordData | None = None) -> Path:
    """Write ``run_dir/report.html`` from the record alone and return its path (``record``: the record already
    loaded from ``run_dir``, so a caller rendering several files reads it once)."""
    if record is None:
        record = load_record(run_dir)  # lenient: a partly written record still renders, with its problems listed

    def reader(artifacts: str) -> list[tuple[str, list[str]]]:
        candidate = Path(artifacts)
        if not candidate.is_absolute():
            candidate = run_dir / candidate if (run_dir / candidate).exists() else candidate
        return read_artifact_tails(candidate)

    with bulk():  # a fleet record is 100,000 objects; the collector re-walking them costs more than the page
        page = build_html(
            record.info, record.results, artifacts_reader=reader, problems=record.problems, run_name=run_dir.name
        )
    out = write_atomic(run_dir / REPORT, page)
    log.info("wrote %s (%d bytes)", out, len(page))
    return out


# ------------------------------------------------------------------------------------------------- formatting


def _fv(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _label_text(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _without_node(labels: Mapping[str, str], cache: dict[tuple[tuple[str, str], ...], str]) -> str:
    """``labels`` but ``node`` as text; memoised, since a fleet's per-node items differ only in the node."""
    key = tuple(item for item in labels.items() if item[0] != "node")
    text = cache.get(key)
    if text is None:
        text = cache[key] = ", ".join(f"{k}={v}" for k, v in sorted(key))
    return text


def _time(epoch: float | None) -> str:
    if epoch is None:
        return "unknown"
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _area(result: TestResult) -> str:
    return result.area if result.area in AREAS else ""


def _area_title(area: str) -> str:
    return area.replace("_", " ") if area else "other"


def _item_text(item: object) -> str:
    if isinstance(item, Mapping):
        return ", ".join(f"{k}={v}" for k, v in item.items())
    return str(item)


def _margin(check: CheckEntry) -> tuple[float | None, float | None]:
    """(observed relative to the bar in %, headroom in % where positive is on the good side)."""
    observed, bar = check.observed, check.bar
    if observed is None or bar is None or bar == 0 or not check.comparison:  # a verdict's bar is no bar to compare
        return None, None
    relative = (observed - bar) / abs(bar) * 100.0
    if check.comparison in (">=", ">"):
        return relative, relative
    if check.comparison in ("<=", "<"):
        return relative, -relative
    return relative, None


def _check_rank(check: CheckEntry) -> tuple[int, float]:
    _, headroom = _margin(check)
    return _STATUS_RANK.get(check.status, 3), headroom if headroom is not None else math.inf


# ------------------------------------------------------------------------------------------------------ banner


@dataclass(slots=True)
class _Counts:
    by_status: Counter[str] = field(default_factory=Counter)
    emulated: int = 0

    def add(self, result: TestResult) -> None:
        self.by_status[result.status] += 1
        self.emulated += result.emulated

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    def row(self) -> list[int]:
        return [self.by_status[s] for s in STATUSES]


def _verdict(info: RunInfo, has_info: bool, counts: _Counts, problems: Sequence[str]) -> tuple[str, str]:
    """(verdict, why). A run that recorded how it ended gets the outcome every other view gives it
    (:mod:`harness.reporting.outcome`): INTERRUPTED, ABORTED and NO-TESTS are never shown as PASS or FAIL."""
    stated = outcome_of_record(info, counts.by_status)
    ran = counts.total
    selected = info.selected
    of = f" of {selected}" if selected is not None and selected >= ran else ""
    if stated is Outcome.INTERRUPTED:
        return "INTERRUPTED", f"{info.end_reason or 'interrupted'}; {ran}{of} tests ran, their results below"
    if stated is Outcome.ABORTED:
        return "ABORTED", f"{info.end_reason or 'the run was aborted'}; {ran}{of} tests ran"
    if stated is Outcome.NO_TESTS:
        return "NO-TESTS", "no test ran: every selected test was skipped (see the skip reasons)"
    truncated = any("results.jsonl" in p for p in problems)
    finished = "finished_at" in info.present
    if not has_info or not finished or counts.total == 0 or truncated:
        reasons = []
        if not has_info:
            reasons.append("no run information")
        elif not finished:
            reasons.append("the run did not finish")
        if counts.total == 0:
            reasons.append("no test results")
        if truncated:
            reasons.append("results were cut short")
        so_far = ""
        if counts.by_status["failed"] or counts.by_status["error"]:
            so_far = f"; so far {counts.by_status['failed']} failed and {counts.by_status['error']} errored"
        return "INCOMPLETE", ", ".join(reasons) + so_far
    if counts.by_status["failed"]:
        return "FAIL", "a measured value missed its bar or a behaviour did not hold"
    if counts.by_status["error"]:
        return "ERROR", "some tests could not measure (harness, workload or target errors)"
    return "PASS", "every test that ran passed"


def _banner(info: RunInfo, results: Sequence[TestResult], problems: Sequence[str], run_name: str) -> dict[str, Any]:
    has_info = bool(info.present)
    counts = _Counts()
    per_area: dict[str, _Counts] = defaultdict(_Counts)
    for r in results:
        counts.add(r)
        per_area[_area(r)].add(r)
    verdict, why = _verdict(info, has_info, counts, problems)
    caps, target = info.capabilities, info.target
    nodes = caps.nodes if caps is not None else []
    started, finished = info.started_at, info.finished_at
    when = _time(started) if started is not None else "unknown"
    if started is not None and finished is not None:
        when += f", took {_duration(finished - started)}"
    elif started is not None:
        when += ", did not finish"
    return {
        "verdict": verdict,
        "why": why,
        "counts": counts.by_status,
        "total": counts.total,
        "emulated_results": counts.emulated,
        "run_id": info.run_id or run_name or "unknown",
        "exit_status": info.exit_status if "exit_status" in info.present else None,
        "target": (
            {
                "kind": target.kind if target and target.kind else "?",
                "name": target.name if target and target.name else "?",
                "version": (target.server_version if target else "")
                or (caps.server_version if caps else "")
                or "unknown version",
                "nodes": len(nodes),
                "emulated_nodes": sum(1 for n in nodes if n.emulated),
                "accelerators": caps.accelerators if caps else "",
            }
            if target is not None or caps is not None
            else None
        ),
        "profile": info.profile,
        "when": when,
        "harness_version": info.environment.harness_version or "unknown",
        "commit": info.environment.git_commit[:12],
        "areas": [
            {
                "key": area or "other",
                "title": _area_title(area),
                "counts": per_area[area].row(),
                "total": per_area[area].total,
                "emulated": per_area[area].emulated,
            }
            for area in [*AREAS, ""]
            if area in per_area
        ],
    }


def _problems(info: RunInfo, problems: Sequence[str]) -> list[str]:
    items = list(problems)
    if info.present:
        missing = [k for k in EXPECTED_INFO if k not in info.present]
        if missing:
            items.append("run.json lacks " + ", ".join(missing) + " (the run was interrupted or is still running)")
    return items


# ----------------------------------------------------------------------------------------------- test cards


@dataclass(frozen=True, slots=True, kw_only=True)
class _CheckRow:
    status: str
    metric: str
    labels: str
    observed: str  # "" when there is no observation (shown as "no data")
    emulated: bool
    bar: str
    baseline: str  # "(baseline x minus y%)" for a bar derived from a baseline run, else ""
    margin: str
    hbar: tuple[int, int] | None  # (observed width %, bar position %)
    source: str
    notes: list[str]
    threshold_id: str


def _bar_text(check: CheckEntry) -> tuple[str, str]:
    """(bar, baseline note), from the check's fields: a numeric bar, a bar relative to a baseline run, or, for a
    rule without a number (presence, and kinds added later), the rule kind's name."""
    if check.verdict_bar:
        return check.verdict_bar, ""
    unit = check.unit
    if check.bar is None:
        if check.regression_pct is not None:
            return f"{check.comparison} baseline {MINUS} {_fv(check.regression_pct)}%", ""
        return (check.kind if check.kind and check.kind != "absolute" else "-"), ""
    text = f"{check.comparison} {_fv(check.bar)} {unit}"
    if check.baseline_value is not None:
        return text, f"(baseline {_fv(check.baseline_value)} {MINUS} {_fv(check.regression_pct)}%)"
    return text, ""


def _check_row(check: CheckEntry) -> _CheckRow:
    relative, _ = _margin(check)
    if check.observed is not None:
        observed = f"{_fv(check.observed)} {check.unit}"
    elif check.matched is not None and check.status != "no-data" and check.bar is None:
        observed = f"{check.matched} matched"
    else:
        observed = ""
    hbar = None
    if check.observed is not None and check.bar is not None and check.comparison:
        top = max(abs(check.observed), abs(check.bar)) * 1.15 or 1.0
        hbar = (round(min(100.0, abs(check.observed) / top * 100)), round(min(100.0, abs(check.bar) / top * 100)))
    notes = [check.detail] if check.detail else []
    if check.hint and check.status != "passed":
        notes.append(check.hint)
    notes += [f"{k}={_item_text(v)}" for k, v in sorted(check.extra.items()) if v not in (None, "", [], {})]
    bar, baseline = _bar_text(check)
    return _CheckRow(
        status=check.status,
        metric=check.metric,
        labels=_label_text(check.labels),
        observed=observed,
        emulated=check.emulated,
        bar=bar,
        baseline=baseline,
        margin="-" if relative is None else f"{relative:+.1f}% {'above' if relative >= 0 else 'below'}",
        hbar=hbar,
        source=check.source or "-",
        notes=notes,
        threshold_id=check.threshold_id,
    )


def _checks_table(checks: Sequence[CheckEntry]) -> dict[str, Any] | None:
    if not checks:
        return None
    ordered = sorted(checks, key=_check_rank)
    rest = ordered[MAX_CHECK_ROWS:]
    tail = None
    if rest:
        by_status = Counter(c.status for c in rest)
        metrics = Counter(c.metric for c in rest)
        tail = {
            "count": len(rest),
            "statuses": ", ".join(f"{n} {st}" for st, n in sorted(by_status.items())),
            "metrics": ", ".join(f"{m} {TIMES}{n}" for m, n in metrics.most_common(8)),
        }
    return {"rows": [_check_row(c) for c in ordered[:MAX_CHECK_ROWS]], "tail": tail}


def _measurements_table(measurements: Sequence[MeasurementEntry]) -> dict[str, Any] | None:
    if not measurements:
        return None
    per_node = [m for m in measurements if "node" in m.labels]
    other = [m for m in measurements if "node" not in m.labels]
    rows = [
        {
            "metric": m.metric,
            "labels": _label_text(m.labels),
            "value": f"{_fv(m.value)} {m.unit}",
            "emulated": m.emulated,
        }
        for m in other[:MAX_MEASUREMENT_ROWS]
    ]
    summary: list[dict[str, Any]] = []
    for label, group in (("more", other[MAX_MEASUREMENT_ROWS:]), ("per-node", per_node)):
        if not group:
            continue
        by_metric: dict[tuple[str, str], list[float]] = defaultdict(list)
        emulated: set[tuple[str, str]] = set()
        for m in group:
            key = (m.metric, m.unit)
            by_metric[key].append(m.value)
            if m.emulated:
                emulated.add(key)
        for (metric, unit), values in sorted(by_metric.items())[:20]:
            low, middle, high = _fv(min(values)), _fv(statistics.median(values)), _fv(max(values))
            summary.append(
                {
                    "metric": metric,
                    "what": f"{len(values)} {label} measurements"
                    + (" (in the heat table)" if label == "per-node" else ""),
                    "range": f"min {low} · median {middle} · max {high} {unit}",
                    "emulated": (metric, unit) in emulated,
                }
            )
        if len(by_metric) > 20:
            summary.append({"more": len(by_metric) - 20})
    return {"rows": rows, "summary": summary, "count": len(measurements)}


def _test_card(result: TestResult) -> dict[str, Any]:
    measurements, checks = result.measurements, result.checks
    plots: list[Plot] = plots_for(measurements, checks)
    status = result.status
    return {
        "status": status,
        "name": result.name or result.id or "unnamed test",
        "failure_kind": result.failure_kind,
        "emulated": result.emulated or any(m.emulated for m in measurements),
        "duration": _duration(result.duration_s),
        "open": status in ("failed", "error") or (status == "passed" and bool(measurements or checks)),
        "doc": result.doc,
        "id": result.id,
        "workload": result.workload,
        "params": ", ".join(f"{k}={v}" for k, v in sorted(result.params.items())),
        "markers": ", ".join(result.markers),
        "message": result.message,
        "plots": plots,
        "checks": _checks_table(checks),
        "measurements": _measurements_table(measurements),
        "anchor": anchor(result.id or result.name),
    }


# ------------------------------------------------------------------------------------------------ heat table


@dataclass(slots=True)
class _Cell:
    value: float | None
    status: str  # check status, or "" for a bare measurement
    headroom: float | None
    emulated: bool


def _cell_class(cell: _Cell) -> str:
    if cell.status in ("failed", "no-data"):
        return "c-f2" if cell.headroom is not None and cell.headroom < -20 else "c-f"
    if cell.status == "warned":
        return "c-w"
    if cell.status == "passed":
        return "c-p2" if cell.headroom is not None and cell.headroom < 5 else "c-p"
    return "c-m"


def _heat_table(results: Sequence[TestResult], emulated_nodes: set[str]) -> dict[str, Any] | None:
    cells: dict[tuple[str, str], _Cell] = {}
    columns: dict[str, tuple[str, str, str]] = {}  # key -> (metric, labels, unit)
    column_tests: dict[str, str] = {}
    texts: dict[tuple[tuple[str, str], ...], str] = {}

    def place(metric: str, labels: Mapping[str, str], unit: str, test: str) -> tuple[str, str] | None:
        """The (node, column) cell of a per-node series, its column registered; None when it has no node label."""
        node = labels.get("node")
        if node is None:
            return None
        rest = _without_node(labels, texts)
        key = f"{metric}|{rest}"
        columns.setdefault(key, (metric, rest, unit))
        column_tests.setdefault(key, test)
        return node, key

    for result in results:
        test = result.name or result.id
        for check in result.checks:
            if (at := place(check.metric, check.labels, check.unit, test)) is None:
                continue
            _, headroom = _margin(check)
            previous = cells.get(at)
            cell = _Cell(check.observed, check.status, headroom, check.emulated)
            if previous is None or _STATUS_RANK.get(cell.status, 3) < _STATUS_RANK.get(previous.status, 3):
                cells[at] = cell
        for m in result.measurements:
            if (at := place(m.metric, m.labels, m.unit, test)) is not None and at not in cells:
                cells[at] = _Cell(m.value, "", None, m.emulated)
    if not cells:
        return None
    keys = list(columns)
    dropped = max(0, len(keys) - MAX_HEAT_COLUMNS)
    keys = keys[:MAX_HEAT_COLUMNS]
    by_node: dict[str, dict[str, _Cell]] = defaultdict(dict)
    for (node, key), cell in cells.items():
        by_node[node][key] = cell

    def rank(node: str) -> tuple[int, float, str]:
        row = by_node[node].values()
        worst = min((_STATUS_RANK.get(c.status, 3) for c in row), default=3)
        headroom = min((c.headroom for c in row if c.headroom is not None), default=math.inf)
        return worst, headroom, node

    ranked = sorted(rank(n) for n in by_node)
    rows = []
    for _, _, node in ranked:
        row = by_node[node]
        node_emulated = node in emulated_nodes or all(c.emulated for c in row.values())
        shown: list[tuple[str, str, bool] | None] = []
        for k in keys:
            found = row.get(k)
            shown.append(
                None
                if found is None
                else (
                    _cell_class(found),
                    "-" if found.value is None else compact_number(found.value),
                    found.emulated and not node_emulated,
                )
            )
        rows.append((node, node_emulated, shown))
    return {
        "columns": [
            {"test": column_tests[k], "metric": columns[k][0], "labels": columns[k][1], "unit": columns[k][2]}
            for k in keys
        ],
        "rows": rows,
        "top": HEAT_TOP_ROWS,
        "failing": sum(1 for worst, _, _ in ranked if worst == 0),
        "dropped": dropped,
    }


# ------------------------------------------------------------------------------------- skips, errors, capabilities


def _skips(results: Sequence[TestResult]) -> list[dict[str, Any]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for r in results:
        if r.status == "skipped":
            groups[r.message or "(no reason given)"].append(r.name or r.id or "?")
    return [
        {
            "reason": reason,
            "tests": tests[:MAX_TESTS_PER_SKIP_GROUP],
            "more": max(0, len(tests) - MAX_TESTS_PER_SKIP_GROUP),
            "count": len(tests),
        }
        for reason, tests in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    ]


def _errors(results: Sequence[TestResult], reader: ArtifactsReader) -> list[dict[str, Any]]:
    bad = sorted((r for r in results if r.status in ("error", "failed")), key=lambda r: (r.status != "error", r.id))
    out = []
    for index, r in enumerate(bad):
        tails: list[tuple[str, list[str]]] | None = None
        if r.artifacts and index < MAX_ERROR_TAILS:
            try:
                tails = reader(r.artifacts)
            except OSError as exc:
                tails = [("artifacts", [f"(could not read: {exc})"])]
        out.append(
            {
                "status": r.status,
                "name": r.name or r.id or "?",
                "failure_kind": r.failure_kind,
                "emulated": r.emulated,
                "message": r.message,
                "artifacts": r.artifacts,
                "tails": [(file, len(lines), "\n".join(lines)) for file, lines in tails] if tails is not None else None,
            }
        )
    return out


def _capabilities(info: RunInfo) -> dict[str, Any] | None:
    caps = info.capabilities
    if caps is None:
        return None
    facts = [
        ("server version", caps.server_version or None),
        ("embedded target", None if caps.embedded is None else "yes" if caps.embedded else "no"),
        ("accelerators", caps.accelerators or None),
    ]
    nodes = caps.nodes
    pools: dict[tuple[Any, ...], list[NodeEntry]] = defaultdict(list)
    for node in nodes:
        key = (
            tuple((k, node.labels[k]) for k in POOL_LABELS if k in node.labels),
            node.emulated,
            node.gpus,
            node.tpus,
        )
        pools[key].append(node)
    pool_rows = [
        {
            "labels": ", ".join(f"{k}={v}" for k, v in labels) or "(no pool labels)",
            "emulated": emulated,
            "nodes": len(members),
            "ready": sum(1 for n in members if n.ready),
            "gpus": gpus,
            "tpus": tpus,
            "examples": ", ".join(n.name for n in members[:3]) + (" …" if len(members) > 3 else ""),
        }
        for (labels, emulated, gpus, tpus), members in sorted(pools.items(), key=lambda kv: -len(kv[1]))
    ]
    node_rows = [
        {
            "name": n.name,
            "emulated": n.emulated,
            "ready": "yes" if n.ready else "no",
            "gpus": n.gpus,
            "tpus": n.tpus,
            "rdma": _item_text(n.rdma),
            "cpu": n.allocatable.get("cpu", ""),
            "memory": n.allocatable.get("memory", ""),
            "product": n.labels.get("nvidia.com/gpu.product")
            or n.labels.get("cloud.google.com/gke-tpu-accelerator")
            or "",
            "taints": ", ".join(f"{t.get('key', '')}={t.get('value', '')}:{t.get('effect', '')}" for t in n.taints),
        }
        for n in nodes
    ]
    return {
        "facts": [(k, v) for k, v in facts if v is not None],
        "pools": pool_rows,
        "nodes": node_rows,
        "emulated_nodes": sum(1 for n in nodes if n.emulated),
        "inline": len(nodes) <= NODE_TABLE_INLINE,
        "lists": [
            (title, [_item_text(i) for i in items])
            for title, items in (("Add-ons", caps.addons), ("CNI", caps.cni), ("Prometheus", caps.prometheus))
        ],
        "storage_classes": [
            {
                "name": str(c.get("name", "?")),
                "default": bool(c.get("default")),
                "provisioner": str(c.get("provisioner", "")),
                "binding_mode": str(c.get("binding_mode", "")),
            }
            for c in caps.storage_classes
        ],
    }


def _run_details(info: RunInfo) -> dict[str, Any]:
    extra = [
        (key, value)
        for key, value in (
            ("python", info.environment.python),
            ("harness_version", info.environment.harness_version),
            ("git_commit", info.environment.git_commit),
            ("exit_status", info.exit_status),
        )
        if key in info.present
    ]
    return {
        "options": [(k, _item_text(v), info.option_sources.get(k, "")) for k, v in sorted(info.options.items())],
        "extra": extra,
    }


def _default_reader(artifacts: str) -> list[tuple[str, list[str]]]:
    return read_artifact_tails(Path(artifacts))


def _typed(
    info: RunInfo | Mapping[str, Any], results: Sequence[TestResult | Mapping[str, Any]]
) -> tuple[RunInfo, list[TestResult]]:
    """Typed run info and results; mappings (as the files hold them) go through the record's schema."""
    typed_info = info if isinstance(info, RunInfo) else RunInfo.from_json(info if isinstance(info, Mapping) else {})
    typed: list[TestResult] = []
    for index, r in enumerate(results):
        if isinstance(r, TestResult):
            typed.append(r)
        elif isinstance(r, Mapping):
            typed.append(TestResult.from_json(r, where=f"result {index + 1}"))
    return typed_info, typed


def build_html(
    info: RunInfo | Mapping[str, Any],
    results: Sequence[TestResult | Mapping[str, Any]],
    *,
    artifacts_reader: ArtifactsReader = _default_reader,
    problems: Sequence[str] = (),
    run_name: str = "",
) -> str:
    """The whole page from run information and results (typed, or as ``run.json`` / ``results.jsonl`` hold them).

    ``problems`` are sentences about what could not be read (from :func:`load_record`); ``run_name`` names the run
    when ``run.json`` lacks ``run_id``; ``artifacts_reader`` returns the log and event tails of a test's artifacts.
    """
    run_info, typed = _typed(info, results)
    caps = run_info.capabilities
    emulated_nodes = {n.name for n in caps.nodes if n.emulated} if caps is not None else set()
    by_area: dict[str, list[TestResult]] = defaultdict(list)
    for r in typed:
        by_area[_area(r)].append(r)
    areas = []
    for area in [a for a in [*AREAS, ""] if a in by_area]:
        tests = sorted(by_area[area], key=lambda r: (STATUSES.index(r.status), r.id))
        ran = [r for r in tests if r.status != "skipped"]
        areas.append(
            {
                "key": area or "other",
                "title": _area_title(area),
                "cards": [_test_card(r) for r in ran],
                "skipped": len(tests) - len(ran),
                "heat": _heat_table(ran, emulated_nodes),
            }
        )
    return str(
        render(
            "report.html.j2",
            run_id=run_info.run_id or run_name or "run",
            banner=_banner(run_info, typed, problems, run_name),
            problems=_problems(run_info, problems),
            scorecard=score_rows(typed),
            failures=failure_rows(typed),
            capacity=capacity_panel(typed),
            areas=areas,
            skips=_skips(typed),
            errors=_errors(typed, artifacts_reader),
            capabilities=_capabilities(run_info),
            run=_run_details(run_info),
        )
    )
