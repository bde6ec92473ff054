"""``report.html``: the run record as one self-contained page (DESIGN.md section 7).

One file with inline CSS and inline SVG and no script at all (sections collapse with ``<details>``), so it opens
anywhere, fetches nothing and cannot log console errors. The page reads top to bottom as a person asks:

1. a verdict banner (PASS / FAIL / ERROR / INCOMPLETE) with counts overall and per area, the target, the profile and
   why it was chosen, harness version and commit, start and duration; then what the record lacks, if anything;
2. per-area sections: every test with its doc sentence, status, failure kind and message, its plots
   (:mod:`harness.reporting.html_plots`), its checks (observed, bar, margin, a bar visual, source, status) and its
   measurements; per-node data in a per-area heat table (rows nodes, columns metrics, colour by status and margin);
3. skipped tests grouped by reason, errors and failures with the tails of their events and logs;
4. the capabilities panel and the run's options.

Size stays bounded for 1,000 nodes and 50,000 measurements: each test lists at most :data:`MAX_CHECK_ROWS` checks
and :data:`MAX_MEASUREMENT_ROWS` measurements (worst first) and summarises the rest per metric; per-node values
appear once, in the heat table. Everything taken from the record is HTML-escaped. Anything emulated is labelled
"emulated" wherever it appears.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from harness.reporting.atomic import write_atomic
from harness.reporting.html_plots import plots_for, to_number
from harness.reporting.html_scorecard import anchor, capacity_section, failures_section, scorecard_section
from harness.reporting.load import RunRecordData, load_record
from harness.reporting.outcome import Outcome, outcome_of_record
from harness.reporting.svg import compact_number

__all__ = [
    "AREAS",
    "ArtifactsReader",
    "build_html",
    "read_artifact_tails",
    "render_html",
]

log = logging.getLogger(__name__)

REPORT = "report.html"
AREAS = ("compute", "network", "storage", "serving", "observability", "practices", "control_plane")
STATUSES = ("passed", "failed", "error", "skipped")
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

    page = build_html(
        record.info, record.results, artifacts_reader=reader, problems=record.problems, run_name=run_dir.name
    )
    out = write_atomic(run_dir / REPORT, page)
    log.info("wrote %s (%d bytes)", out, len(page))
    return out


# ------------------------------------------------------------------------------------------------- formatting


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _fv(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}"


def _labels(item: Mapping[str, Any]) -> dict[str, str]:
    labels = item.get("labels")
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}


def _label_text(labels: Mapping[str, str], *, skip: Iterable[str] = ()) -> str:
    skipped = set(skip)
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in skipped)


def _list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _dicts(value: object) -> list[Mapping[str, Any]]:
    return [v for v in _list(value) if isinstance(v, Mapping)]


def _time(epoch: object) -> str:
    number = to_number(epoch)
    if number is None:
        return "unknown"
    return datetime.fromtimestamp(number, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _emu(flag: object = True) -> str:
    return '<span class="emu">emulated</span>' if flag else ""


def _badge(status: str) -> str:
    return f'<span class="badge s-{_e(status)}">{_e(status.upper())}</span>'


def _status(result: Mapping[str, Any]) -> str:
    status = str(result.get("status") or "")
    return status if status in STATUSES else "error"


def _area(result: Mapping[str, Any]) -> str:
    area = str(result.get("area") or "")
    return area if area in AREAS else ""


def _area_title(area: str) -> str:
    return area.replace("_", " ") if area else "other"


def _margin(check: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """(observed relative to the bar in %, headroom in % where positive is on the good side)."""
    observed, bar = to_number(check.get("observed")), to_number(check.get("bar"))
    if observed is None or bar is None or bar == 0:
        return None, None
    relative = (observed - bar) / abs(bar) * 100.0
    comparison = str(check.get("comparison") or "")
    if comparison in (">=", ">"):
        return relative, relative
    if comparison in ("<=", "<"):
        return relative, -relative
    return relative, None


def _check_rank(check: Mapping[str, Any]) -> tuple[int, float]:
    _, headroom = _margin(check)
    return _STATUS_RANK.get(str(check.get("status")), 3), headroom if headroom is not None else math.inf


# ------------------------------------------------------------------------------------------------------ page


_CSS = """
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
color:#1d2430;background:#f6f7f9}main{max-width:1240px;margin:0 auto;padding:16px 20px 60px}
h1{font-size:30px;margin:0}h2{font-size:20px;margin:28px 0 8px;border-bottom:2px solid #d5d9e0;padding-bottom:4px}
h3{font-size:16px;margin:18px 0 6px}code,pre{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}
pre{background:#fff;border:1px solid #dde1e7;padding:6px 8px;overflow:auto;white-space:pre-wrap;margin:4px 0}
.banner{border-radius:8px;padding:14px 18px;color:#fff;margin-bottom:10px}.v-pass{background:#1e7b3a}
.v-fail{background:#b3261e}.v-error{background:#a4480d}.v-incomplete{background:#5b5f6b}
.v-interrupted{background:#7a5b00}.v-aborted{background:#6b2a6b}.v-no-tests{background:#5b5f6b}
.banner .counts{font-size:17px;margin:4px 0}.banner dl{display:grid;grid-template-columns:max-content 1fr;
gap:2px 14px;margin:8px 0 0}.banner dt{opacity:.8}.banner dd{margin:0}
.banner .muted{color:#fff;opacity:.85}.banner .emu{background:#fff}
table{border-collapse:collapse;background:#fff;margin:6px 0}th,td{border:1px solid #dde1e7;padding:3px 7px;
text-align:left;vertical-align:top}th{background:#eef1f5;font-weight:600}td.n{text-align:right;white-space:nowrap}td.nw{white-space:nowrap}
caption{text-align:left;font-weight:600;padding:4px 0}
.badge{display:inline-block;border-radius:4px;padding:0 6px;font-size:12px;font-weight:700;color:#fff;
background:#666}.s-passed{background:#1e7b3a}.s-failed{background:#b3261e}.s-error{background:#a4480d}
.s-skipped{background:#7a7f8c}.s-warned{background:#b08800}.s-no-data{background:#6d3fa0}
.emu{display:inline-block;border:1px dashed #8a4fbf;color:#6d2fa3;border-radius:4px;padding:0 5px;font-size:11px;
font-weight:600;background:#f7effd;margin-left:4px}.fk{color:#a4480d;font-weight:600;margin-left:6px}
.muted{color:#667}.problems{background:#fff4d6;border:1px solid #e6c15a;border-radius:6px;padding:8px 14px}
details.test{background:#fff;border:1px solid #d5d9e0;border-radius:6px;margin:8px 0;padding:4px 10px}
details.test>summary{cursor:pointer;padding:4px 0}details.test[open]>summary{border-bottom:1px solid #eef0f3}
.doc{margin:6px 0}.hb{display:inline-block;position:relative;width:120px;height:10px;background:#eceef2;
border-radius:2px}.hb i{position:absolute;left:0;top:0;bottom:0;border-radius:2px}.hb b{position:absolute;
top:-2px;bottom:-2px;width:2px;background:#111}.f-passed{background:#3a9b57}.f-failed,.f-no-data{background:#d0433a}
.f-warned{background:#d6a400}.plots{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start}svg.chart{background:#fff;
border:1px solid #dde1e7;max-width:100%;height:auto}svg .ax{stroke:#555}svg .gr{stroke:#e3e6ea}
svg text{font:11px system-ui,sans-serif;fill:#333}svg .ct{font-size:13px;font-weight:600}svg .al{font-size:11px}
table.heat td{min-width:44px;text-align:right;font:11px ui-monospace,Menlo,monospace}table.heat th{font-size:11px}
.c-p{background:#cfeed6}.c-p2{background:#eef5c4}.c-w{background:#fbe7a1}.c-f{background:#f6b8b2}
.c-f2{background:#e9776d}.c-m{background:#f3f4f6}.c-n{background:#e3d4f2}nav a{margin-right:10px}
.scroll{overflow-x:auto}ul.tests{margin:2px 0 8px;columns:2}
table.scorecard td.big{font-size:17px;font-weight:700}table.scorecard tr.sc-failed td.big{color:#b3261e}
table.scorecard tr.sc-passed td.big{color:#1e7b3a}table.failures td{max-width:520px}
"""


@dataclass(slots=True)
class _Counts:
    by_status: Counter[str] = field(default_factory=Counter)
    emulated: int = 0

    def add(self, result: Mapping[str, Any]) -> None:
        self.by_status[_status(result)] += 1
        self.emulated += bool(result.get("emulated"))

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


def _verdict(info: Mapping[str, Any], counts: _Counts, problems: Sequence[str]) -> tuple[str, str]:
    """(verdict, why). A run that recorded how it ended gets the outcome every other view gives it
    (:mod:`harness.reporting.outcome`): INTERRUPTED, ABORTED and NO-TESTS are never shown as PASS or FAIL."""
    stated = outcome_of_record(info, counts.by_status)
    ran = counts.total
    selected = info.get("selected")
    of = f" of {selected}" if isinstance(selected, int) and selected >= ran else ""
    if stated is Outcome.INTERRUPTED:
        return "INTERRUPTED", f"{info.get('end_reason') or 'interrupted'}; {ran}{of} tests ran, their results below"
    if stated is Outcome.ABORTED:
        return "ABORTED", f"{info.get('end_reason') or 'the run was aborted'}; {ran}{of} tests ran"
    if stated is Outcome.NO_TESTS:
        return "NO-TESTS", "no test ran: every selected test was skipped (see the skip reasons)"
    truncated = any("results.jsonl" in p for p in problems)
    if not info or "finished_at" not in info or counts.total == 0 or truncated:
        reasons = []
        if not info:
            reasons.append("no run information")
        elif "finished_at" not in info:
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


def _banner(
    info: Mapping[str, Any], results: Sequence[Mapping[str, Any]], problems: Sequence[str], run_name: str
) -> str:
    counts = _Counts()
    per_area: dict[str, _Counts] = defaultdict(_Counts)
    for r in results:
        counts.add(r)
        per_area[_area(r)].add(r)
    verdict, why = _verdict(info, counts, problems)
    target = info.get("target") if isinstance(info.get("target"), Mapping) else {}
    caps = info.get("capabilities") if isinstance(info.get("capabilities"), Mapping) else {}
    profile = info.get("profile") if isinstance(info.get("profile"), Mapping) else {}
    nodes = _dicts(caps.get("nodes"))
    emulated_nodes = sum(1 for n in nodes if n.get("emulated"))
    s = counts.by_status
    run_id = info.get("run_id") or run_name or "unknown"
    target_text = "unknown (not recorded)"
    if target or caps:
        kind = target.get("kind", "?")
        name = target.get("name", "?")
        version = target.get("server_version") or caps.get("server_version") or "unknown version"
        target_text = f"{_e(kind)} “{_e(name)}” · Kubernetes {_e(version)} · {len(nodes)} nodes"
        if emulated_nodes:
            target_text += f" ({emulated_nodes} {_emu()})"
        if caps.get("accelerators"):
            target_text += f" · {_e(caps['accelerators'])}"
    profile_text = "not recorded"
    if profile:
        profile_text = f"<b>{_e(profile.get('name', '?'))}</b>"
        if profile.get("reason"):
            profile_text += f" — {_e(profile['reason'])}"
    started, finished = to_number(info.get("started_at")), to_number(info.get("finished_at"))
    when = _time(started) if started is not None else "unknown"
    if started is not None and finished is not None:
        when += f", took {_duration(finished - started)}"
    elif started is not None:
        when += ", did not finish"
    version = f"{_e(info.get('harness_version', 'unknown'))}"
    if info.get("git_commit"):
        version += f" (commit <code>{_e(str(info['git_commit'])[:12])}</code>)"
    exit_status = f" · exit status {_e(info['exit_status'])}" if "exit_status" in info else ""
    emulated_note = f" · {counts.emulated} results include {_emu()} measurements" if counts.emulated else ""
    area_rows = []
    for area in [*AREAS, ""]:
        if area not in per_area:
            continue
        c = per_area[area]
        cells = "".join(f'<td class="n">{c.by_status[st]}</td>' for st in STATUSES)
        area_rows.append(
            f'<tr><th><a href="#area-{_e(area or "other")}">{_e(_area_title(area))}</a></th>{cells}'
            f'<td class="n">{c.total}</td><td class="n">{c.emulated or ""}</td></tr>'
        )
    area_table = ""
    if area_rows:
        head = "".join(f"<th>{st}</th>" for st in STATUSES)
        area_table = (
            f'<table class="areas"><tr><th>area</th>{head}<th>total</th><th>emulated</th></tr>'
            f"{''.join(area_rows)}</table>"
        )
    return (
        f'<section class="banner v-{verdict.lower()}" id="verdict"><h1>{verdict}</h1>'
        f'<div class="counts"><b>{s["passed"]}</b> passed · <b>{s["failed"]}</b> failed · <b>{s["error"]}</b> error'
        f' · <b>{s["skipped"]}</b> skipped <span class="muted">({counts.total} tests){emulated_note}</span></div>'
        f"<div>{_e(why)}</div><dl>"
        f"<dt>run</dt><dd><code>{_e(run_id)}</code>{exit_status}</dd>"
        f"<dt>target</dt><dd>{target_text}</dd>"
        f"<dt>profile</dt><dd>{profile_text}</dd>"
        f"<dt>harness</dt><dd>{version}</dd>"
        f"<dt>started</dt><dd>{when}</dd></dl></section>{area_table}"
    )


def _problems(info: Mapping[str, Any], problems: Sequence[str]) -> str:
    items = list(problems)
    if info:
        missing = [k for k in EXPECTED_INFO if k not in info]
        if missing:
            items.append("run.json lacks " + ", ".join(missing) + " (the run was interrupted or is still running)")
    if not items:
        return ""
    lis = "".join(f"<li>{_e(p)}</li>" for p in items)
    return (
        '<section class="problems" id="missing"><b>This record is incomplete.</b> Shown is what exists.'
        f"<ul>{lis}</ul></section>"
    )


# ----------------------------------------------------------------------------------------------- test cards


def _hbar(check: Mapping[str, Any]) -> str:
    observed, bar = to_number(check.get("observed")), to_number(check.get("bar"))
    if observed is None or bar is None:
        return ""
    top = max(abs(observed), abs(bar)) * 1.15 or 1.0
    width = min(100.0, abs(observed) / top * 100)
    left = min(100.0, abs(bar) / top * 100)
    status = _e(check.get("status", ""))
    return (
        f'<span class="hb"><i class="f-{status}" style="width:{width:.0f}%"></i><b style="left:{left:.0f}%"></b></span>'
    )


def _bar_text(check: Mapping[str, Any]) -> str:
    kind = check.get("kind")
    if kind == "presence":
        return "present"
    comparison = _e(check.get("comparison") or "")
    unit = _e(check.get("unit") or "")
    bar = to_number(check.get("bar"))
    if bar is None:
        pct = to_number(check.get("regression_pct"))
        return f"{comparison} baseline &#8722; {_fv(pct)}%" if pct is not None else "-"
    text = f"{comparison} {_fv(bar)} {unit}"
    baseline = to_number(check.get("baseline_value"))
    if kind == "regression" and baseline is not None:
        pct = _fv(to_number(check.get("regression_pct")))
        text += f' <span class="muted">(baseline {_fv(baseline)} &#8722; {pct}%)</span>'
    return text


def _check_row(check: Mapping[str, Any]) -> str:
    status = str(check.get("status") or "")
    relative, _ = _margin(check)
    margin = "-" if relative is None else f"{relative:+.1f}% {'above' if relative >= 0 else 'below'}"
    observed = to_number(check.get("observed"))
    if check.get("kind") == "presence":
        obs = f"{_e(check.get('matched', 0))} matched"
    elif observed is None:
        obs = '<span class="muted">no data</span>'
    else:
        obs = f"{_fv(observed)} {_e(check.get('unit') or '')}"
    obs += _emu(check.get("emulated"))
    notes = [str(check[k]) for k in ("detail", "hint") if check.get(k) and (k == "detail" or status != "passed")]
    source = _e(check.get("source") or "-")
    if notes:
        source += "<br><span class=muted>" + "<br>".join(_e(n) for n in notes) + "</span>"
    return (
        f"<tr><td>{_badge(status)}</td><td>{_e(check.get('metric', ''))}</td>"
        f"<td>{_e(_label_text(_labels(check)))}</td><td class=n>{obs}</td><td class=nw>{_bar_text(check)}</td>"
        f"<td class=n>{margin}</td><td>{_hbar(check)}</td><td>{source}</td>"
        f"<td><code>{_e(check.get('threshold_id', ''))}</code></td></tr>"
    )


def _checks_table(checks: Sequence[Mapping[str, Any]]) -> str:
    if not checks:
        return ""
    ordered = sorted(checks, key=_check_rank)
    rows = "".join(_check_row(c) for c in ordered[:MAX_CHECK_ROWS])
    rest = ordered[MAX_CHECK_ROWS:]
    tail = ""
    if rest:
        by_status = Counter(str(c.get("status")) for c in rest)
        parts = ", ".join(f"{n} {_e(st)}" for st, n in sorted(by_status.items()))
        metrics = Counter(str(c.get("metric")) for c in rest)
        names = ", ".join(f"{_e(m)} &#215;{n}" for m, n in metrics.most_common(8))
        tail = (
            f'<tr><td colspan="9" class="muted">… and {len(rest)} more checks ({parts}; {names}); the worst are '
            f"listed above, per-node values are in the area's heat table</td></tr>"
        )
    return (
        '<div class="scroll"><table class="data checks"><caption>Checks</caption><tr><th>status</th><th>metric</th>'
        "<th>labels</th><th>observed</th><th>bar</th><th>margin</th><th>observed vs bar</th><th>source</th>"
        f"<th>threshold</th></tr>{rows}{tail}</table></div>"
    )


def _measurements_table(measurements: Sequence[Mapping[str, Any]]) -> str:
    if not measurements:
        return ""
    per_node = [m for m in measurements if "node" in _labels(m)]
    other = [m for m in measurements if "node" not in _labels(m)]
    rows = []
    for m in other[:MAX_MEASUREMENT_ROWS]:
        value = to_number(m.get("value"))
        rows.append(
            f"<tr><td>{_e(m.get('metric', ''))}</td><td>{_e(_label_text(_labels(m)))}</td>"
            f"<td class=n>{_fv(value)} {_e(m.get('unit') or '')}{_emu(m.get('emulated'))}</td></tr>"
        )
    summary = []
    rest = other[MAX_MEASUREMENT_ROWS:]
    for label, group in (("more", rest), ("per-node", per_node)):
        if not group:
            continue
        by_metric: dict[tuple[str, str], list[float]] = defaultdict(list)
        emulated: set[tuple[str, str]] = set()
        for m in group:
            value = to_number(m.get("value"))
            key = (str(m.get("metric")), str(m.get("unit") or ""))
            if value is not None:
                by_metric[key].append(value)
            if m.get("emulated"):
                emulated.add(key)
        for (metric, unit), values in sorted(by_metric.items())[:20]:
            where = " (in the heat table)" if label == "per-node" else ""
            summary.append(
                f"<tr><td>{_e(metric)}</td><td class=muted>{len(values)} {label} measurements{where}</td>"
                f"<td class=n>min {_fv(min(values))} · median {_fv(statistics.median(values))} · max "
                f"{_fv(max(values))} {_e(unit)}{_emu((metric, unit) in emulated)}</td></tr>"
            )
        if len(by_metric) > 20:
            summary.append(f"<tr><td colspan=3 class=muted>… and {len(by_metric) - 20} more metrics</td></tr>")
    return (
        '<div class="scroll"><table class="data meas"><caption>Measurements</caption><tr><th>metric</th>'
        f"<th>labels</th><th>value</th></tr>{''.join(rows)}{''.join(summary)}</table></div>"
    )


def _test_card(result: Mapping[str, Any]) -> str:
    status = _status(result)
    measurements = _dicts(result.get("measurements"))
    checks = _dicts(result.get("checks"))
    name = str(result.get("name") or result.get("id") or "unnamed test")
    kind = str(result.get("failure_kind") or "")
    duration = to_number(result.get("duration_s"))
    emulated = bool(result.get("emulated")) or any(m.get("emulated") for m in measurements)
    opened = " open" if status in ("failed", "error") or (status == "passed" and (measurements or checks)) else ""
    head = (
        f"<summary>{_badge(status)} <b>{_e(name)}</b>{f'<span class=fk>{_e(kind)}</span>' if kind else ''}"
        f"{_emu(emulated)} <span class=muted>{_duration(duration)}</span></summary>"
    )
    parts = [head]
    if result.get("doc"):
        parts.append(f'<p class="doc">{_e(result["doc"])}</p>')
    meta = [f"<code>{_e(result.get('id', ''))}</code>"]
    if result.get("workload"):
        meta.append(f"workload <b>{_e(result['workload'])}</b>")
    params = result.get("params")
    if isinstance(params, Mapping) and params:
        meta.append("params " + _e(", ".join(f"{k}={v}" for k, v in sorted(params.items()))))
    markers = _list(result.get("markers"))
    if markers:
        meta.append("markers " + _e(", ".join(str(m) for m in markers)))
    parts.append(f'<p class="muted">{" · ".join(meta)}</p>')
    if result.get("message"):
        parts.append(f'<pre class="msg">{_e(result["message"])}</pre>')
    plots = plots_for(measurements, checks)
    if plots:
        parts.append(f'<div class="plots">{"".join(plots)}</div>')
    parts.append(_checks_table(checks))
    table = _measurements_table(measurements)
    if table and plots:  # the plots show these numbers; the table stays one click away
        table = f"<details><summary>Measurements ({len(measurements)})</summary>{table}</details>"
    parts.append(table)
    card_id = anchor(str(result.get("id") or name))
    return f'<details class="test" id="t-{_e(card_id)}"{opened}>{"".join(parts)}</details>'


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


def _heat_table(results: Sequence[Mapping[str, Any]], emulated_nodes: set[str]) -> str:
    cells: dict[tuple[str, str], _Cell] = {}
    columns: dict[str, tuple[str, str, str]] = {}  # key -> (metric, labels, unit)
    column_tests: dict[str, str] = {}
    for result in results:
        test = str(result.get("name") or result.get("id") or "")
        for check in _dicts(result.get("checks")):
            labels = _labels(check)
            node = labels.get("node")
            if node is None:
                continue
            rest = _label_text(labels, skip=("node",))
            key = f"{check.get('metric')}|{rest}"
            columns.setdefault(key, (str(check.get("metric")), rest, str(check.get("unit") or "")))
            column_tests.setdefault(key, test)
            _, headroom = _margin(check)
            previous = cells.get((node, key))
            cell = _Cell(
                to_number(check.get("observed")), str(check.get("status") or ""), headroom, bool(check.get("emulated"))
            )
            if previous is None or _STATUS_RANK.get(cell.status, 3) < _STATUS_RANK.get(previous.status, 3):
                cells[(node, key)] = cell
        for m in _dicts(result.get("measurements")):
            labels = _labels(m)
            node = labels.get("node")
            if node is None:
                continue
            rest = _label_text(labels, skip=("node",))
            key = f"{m.get('metric')}|{rest}"
            columns.setdefault(key, (str(m.get("metric")), rest, str(m.get("unit") or "")))
            column_tests.setdefault(key, test)
            if (node, key) not in cells:
                cells[(node, key)] = _Cell(to_number(m.get("value")), "", None, bool(m.get("emulated")))
    if not cells:
        return ""
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

    nodes = sorted(by_node, key=rank)
    head = "".join(
        f'<th title="{_e(column_tests[k])}">{_e(columns[k][0])}'
        f"{'<br>' + _e(columns[k][1]) if columns[k][1] else ''}<br><span class=muted>{_e(columns[k][2])}</span></th>"
        for k in keys
    )

    def rows(selected: Sequence[str]) -> str:
        out = []
        for node in selected:
            row = by_node[node]
            node_emulated = node in emulated_nodes or all(c.emulated for c in row.values())
            tds = []
            for k in keys:
                cell = row.get(k)
                if cell is None:
                    tds.append("<td></td>")
                    continue
                mark = "<sup>e</sup>" if cell.emulated and not node_emulated else ""
                text = "-" if cell.value is None else compact_number(cell.value)
                tds.append(f'<td class="{_cell_class(cell)}">{text}{mark}</td>')
            out.append(f"<tr><th>{_e(node)}{_emu(node_emulated)}</th>{''.join(tds)}</tr>")
        return "".join(out)

    failing = sum(1 for n in nodes if rank(n)[0] == 0)
    legend = (
        '<p class="muted">Rows are nodes, worst first; cells: <span class="c-f">failed</span> '
        '<span class="c-f2">failed by &gt;20%</span> <span class="c-w">warned</span> '
        '<span class="c-p2">passed with &lt;5% headroom</span> <span class="c-p">passed</span> '
        '<span class="c-m">measured, no bar</span>; <sup>e</sup> = emulated.'
        f"{f' {dropped} more columns not shown.' if dropped else ''}</p>"
    )
    table_head = f'<table class="heat"><tr><th>node</th>{head}</tr>'
    summary = f"{len(nodes)} nodes, {failing} with a failed check"
    if len(nodes) <= HEAT_TOP_ROWS:
        body = f'<div class="scroll">{table_head}{rows(nodes)}</table></div>'
    else:
        body = (
            f'<div class="scroll">{table_head}{rows(nodes[:HEAT_TOP_ROWS])}</table></div>'
            f'<details><summary>all {len(nodes)} nodes</summary><div class="scroll">{table_head}'
            f"{rows(nodes)}</table></div></details>"
        )
    return f"<h3>Per-node heat table <span class=muted>({summary})</span></h3>{legend}{body}"


# ------------------------------------------------------------------------------------- skips, errors, capabilities


def _skips(results: Sequence[Mapping[str, Any]]) -> str:
    groups: dict[str, list[str]] = defaultdict(list)
    for r in results:
        if _status(r) == "skipped":
            groups[str(r.get("message") or "(no reason given)")].append(str(r.get("name") or r.get("id") or "?"))
    if not groups:
        return ""
    parts = []
    for reason, tests in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])):
        shown = "".join(f"<li>{_e(t)}</li>" for t in tests[:MAX_TESTS_PER_SKIP_GROUP])
        more = (
            f"<li class=muted>… and {len(tests) - MAX_TESTS_PER_SKIP_GROUP} more</li>"
            if len(tests) > MAX_TESTS_PER_SKIP_GROUP
            else ""
        )
        parts.append(
            f'<div class="skip"><pre>{_e(reason)}</pre><span class="muted">{len(tests)} '
            f'test{"s" if len(tests) != 1 else ""}</span><ul class="tests">{shown}{more}</ul></div>'
        )
    total = sum(len(t) for t in groups.values())
    return (
        f'<h2 id="skips">Skipped tests, grouped by reason <span class=muted>({total} tests, {len(groups)} '
        f"reasons)</span></h2>{''.join(parts)}"
    )


def _errors(results: Sequence[Mapping[str, Any]], reader: ArtifactsReader) -> str:
    bad = [r for r in results if _status(r) in ("error", "failed")]
    if not bad:
        return ""
    bad.sort(key=lambda r: (_status(r) != "error", str(r.get("id", ""))))
    parts = []
    for index, r in enumerate(bad):
        name = str(r.get("name") or r.get("id") or "?")
        kind = str(r.get("failure_kind") or "")
        piece = [
            f"<h3>{_badge(_status(r))} {_e(name)}"
            f"{f'<span class=fk>{_e(kind)}</span>' if kind else ''}{_emu(r.get('emulated'))}</h3>"
        ]
        if r.get("message"):
            piece.append(f"<pre>{_e(r['message'])}</pre>")
        artifacts = str(r.get("artifacts") or "")
        if artifacts and index < MAX_ERROR_TAILS:
            try:
                tails = reader(artifacts)
            except OSError as exc:
                tails = [("artifacts", [f"(could not read: {exc})"])]
            for file, lines in tails:
                piece.append(
                    f"<details><summary>last {len(lines)} lines of <code>{_e(file)}</code></summary>"
                    f"<pre>{_e(chr(10).join(lines))}</pre></details>"
                )
            if not tails:
                piece.append(f'<p class="muted">artifacts <code>{_e(artifacts)}</code>: no events or logs found</p>')
        parts.append("".join(piece))
    return f'<h2 id="errors">Errors and failures <span class=muted>({len(bad)})</span></h2>{"".join(parts)}'


def _item_text(item: object) -> str:
    if isinstance(item, Mapping):
        return ", ".join(f"{k}={v}" for k, v in item.items())
    return str(item)


def _node_row(node: Mapping[str, Any]) -> str:
    labels = node.get("labels") if isinstance(node.get("labels"), Mapping) else {}
    alloc = node.get("allocatable") if isinstance(node.get("allocatable"), Mapping) else {}
    rdma = node.get("rdma") if isinstance(node.get("rdma"), Mapping) else {}
    taints = ", ".join(
        f"{t.get('key', '')}={t.get('value', '')}:{t.get('effect', '')}" for t in _dicts(node.get("taints"))
    )
    product = labels.get("nvidia.com/gpu.product") or labels.get("cloud.google.com/gke-tpu-accelerator") or ""
    return (
        f"<tr><td>{_e(node.get('name', '?'))}{_emu(node.get('emulated'))}</td>"
        f"<td>{'yes' if node.get('ready') else 'no'}</td><td class=n>{_e(node.get('gpus', 0))}</td>"
        f"<td class=n>{_e(node.get('tpus', 0))}</td><td>{_e(_item_text(rdma))}</td>"
        f"<td class=n>{_e(alloc.get('cpu', ''))}</td><td class=n>{_e(alloc.get('memory', ''))}</td>"
        f"<td>{_e(product)}</td><td>{_e(taints)}</td></tr>"
    )


_NODE_HEAD = (
    "<tr><th>node</th><th>ready</th><th>GPUs</th><th>TPUs</th><th>RDMA</th><th>CPU</th><th>memory</th>"
    "<th>accelerator product</th><th>taints</th></tr>"
)


def _capabilities(caps: Mapping[str, Any]) -> str:
    if not caps:
        return '<h2 id="capabilities">Capabilities</h2><p class="muted">Not recorded in run.json.</p>'
    parts = ['<h2 id="capabilities">Capabilities</h2><dl class="caps">']
    facts = [
        ("server version", caps.get("server_version")),
        ("embedded target", "yes" if caps.get("embedded") else "no" if "embedded" in caps else None),
        ("accelerators", caps.get("accelerators")),
    ]
    parts.append(
        "<table>"
        + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts if v is not None)
        + "</table></dl>"
    )
    nodes = _dicts(caps.get("nodes"))
    if nodes:
        pools: dict[tuple[Any, ...], list[Mapping[str, Any]]] = defaultdict(list)
        for node in nodes:
            labels = node.get("labels") if isinstance(node.get("labels"), Mapping) else {}
            key = (
                tuple((k, str(labels[k])) for k in POOL_LABELS if k in labels),
                bool(node.get("emulated")),
                node.get("gpus", 0),
                node.get("tpus", 0),
            )
            pools[key].append(node)
        pool_rows = []
        for (labels, emulated, gpus, tpus), members in sorted(pools.items(), key=lambda kv: -len(kv[1])):
            ready = sum(1 for n in members if n.get("ready"))
            examples = ", ".join(str(n.get("name", "?")) for n in members[:3]) + (" …" if len(members) > 3 else "")
            pool_rows.append(
                f"<tr><td>{_e(', '.join(f'{k}={v}' for k, v in labels) or '(no pool labels)')}{_emu(emulated)}</td>"
                f"<td class=n>{len(members)}</td><td class=n>{ready}</td><td class=n>{_e(gpus)}</td>"
                f"<td class=n>{_e(tpus)}</td><td>{_e(examples)}</td></tr>"
            )
        parts.append(
            f"<h3>Nodes ({len(nodes)}, {sum(1 for n in nodes if n.get('emulated'))} emulated)</h3>"
            '<table class="pools"><caption>Node pools (by accelerator product, instance type and pool labels)'
            "</caption><tr><th>pool</th><th>nodes</th><th>ready</th><th>GPUs/node</th><th>TPUs/node</th>"
            f"<th>nodes, e.g.</th></tr>{''.join(pool_rows)}</table>"
        )
        table = (
            f'<div class="scroll"><table class="nodes">{_NODE_HEAD}{"".join(_node_row(n) for n in nodes)}</table></div>'
        )
        if len(nodes) <= NODE_TABLE_INLINE:
            parts.append(table)
        else:
            parts.append(f"<details><summary>all {len(nodes)} nodes</summary>{table}</details>")
    for key, title in (("addons", "Add-ons"), ("cni", "CNI"), ("prometheus", "Prometheus")):
        items = _list(caps.get(key))
        text = ", ".join(_e(_item_text(i)) for i in items) if items else '<span class="muted">none found</span>'
        parts.append(f"<p><b>{title}:</b> {text}</p>")
    classes = _dicts(caps.get("storage_classes"))
    if classes:
        rows = "".join(
            f"<tr><td>{_e(c.get('name', '?'))}{' (default)' if c.get('default') else ''}</td>"
            f"<td>{_e(c.get('provisioner', ''))}</td><td>{_e(c.get('binding_mode', ''))}</td></tr>"
            for c in classes
        )
        parts.append(
            "<table><caption>Storage classes</caption><tr><th>name</th><th>provisioner</th><th>binding mode</th>"
            f"</tr>{rows}</table>"
        )
    else:
        parts.append('<p><b>Storage classes:</b> <span class="muted">none found</span></p>')
    return "".join(parts)


def _run_details(info: Mapping[str, Any]) -> str:
    options = info.get("options") if isinstance(info.get("options"), Mapping) else {}
    sources = info.get("option_sources") if isinstance(info.get("option_sources"), Mapping) else {}
    rows = "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(v)}</td><td class=muted>{_e(sources.get(k, ''))}</td></tr>"
        for k, v in sorted(options.items())
    )
    extra = "".join(
        f"<tr><th>{_e(k)}</th><td colspan=2>{_e(info[k])}</td></tr>"
        for k in ("python", "harness_version", "git_commit", "exit_status")
        if k in info
    )
    if not rows and not extra:
        return ""
    return (
        f'<h2 id="run">Run options</h2><table><tr><th>option</th><th>value</th><th>from</th></tr>{rows}{extra}</table>'
    )


def _default_reader(artifacts: str) -> list[tuple[str, list[str]]]:
    return read_artifact_tails(Path(artifacts))


def build_html(
    info: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    *,
    artifacts_reader: ArtifactsReader = _default_reader,
    problems: Sequence[str] = (),
    run_name: str = "",
) -> str:
    """The whole page from run information and results (as ``run.json`` / ``results.jsonl`` hold them).

    ``problems`` are sentences about what could not be read (from :func:`load_record`); ``run_name`` names the run
    when ``run.json`` lacks ``run_id``; ``artifacts_reader`` returns the log and event tails of a test's artifacts.
    """
    info = info if isinstance(info, Mapping) else {}
    results = [r for r in results if isinstance(r, Mapping)]
    caps = info.get("capabilities") if isinstance(info.get("capabilities"), Mapping) else {}
    emulated_nodes = {str(n.get("name")) for n in _dicts(caps.get("nodes")) if n.get("emulated")}
    by_area: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in results:
        by_area[_area(r)].append(r)
    areas = [a for a in [*AREAS, ""] if a in by_area]
    sections = []
    for area in areas:
        tests = sorted(by_area[area], key=lambda r: (STATUSES.index(_status(r)), str(r.get("id", ""))))
        ran = [r for r in tests if _status(r) != "skipped"]
        skipped = len(tests) - len(ran)
        cards = "".join(_test_card(r) for r in ran)
        skipped_note = (
            f'<p class="muted">{skipped} skipped (see <a href="#skips">skipped tests</a>)</p>' if skipped else ""
        )
        sections.append(
            f'<section id="area-{_e(area or "other")}"><h2>{_e(_area_title(area).capitalize())}</h2>'
            f"{cards}{skipped_note}{_heat_table(ran, emulated_nodes)}</section>"
        )
    run_id = info.get("run_id") or run_name or "run"
    nav = " ".join(f'<a href="#area-{_e(a or "other")}">{_e(_area_title(a))}</a>' for a in areas)
    nav += ' <a href="#skips">skips</a> <a href="#errors">errors</a> <a href="#capabilities">capabilities</a>'
    scorecard, failures, capacity = (
        scorecard_section(results),
        failures_section(results, _status),
        capacity_section(results),
    )
    lead = " ".join(
        f'<a href="#{target}">{title}</a>'
        for target, title, html in (
            ("scorecard", "scorecard", scorecard),
            ("failures", "failures", failures),
            ("capacity-panel", "capacity", capacity),
        )
        if html
    )
    body = [
        _banner(info, results, problems, run_name),
        _problems(info, problems),
        scorecard,
        failures,
        capacity,
        f"<nav>{lead + ' · ' if lead else ''}{nav}</nav>",
        *sections,
        _skips(results),
        _errors(results, artifacts_reader),
        _capabilities(caps),
        _run_details(info),
        '<p class="muted">Generated by k8s-ai-bench from the run record alone; no resources are fetched.</p>',
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        'img-src data:"><link rel="icon" href="data:,">'
        f"<title>k8s-ai-bench {_e(run_id)}</title><style>{_CSS}</style></head><body><main>"
        + "".join(body)
        + "</main></body></html>\n"
    )
