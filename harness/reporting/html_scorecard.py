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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from harness.reporting.svg import bar_chart, compact_number

__all__ = ["HEADLINES", "Headline", "anchor", "capacity_section", "failures_section", "scorecard_section"]

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


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _labels(item: Mapping[str, Any]) -> Mapping[str, str]:
    labels = item.get("labels")
    return labels if isinstance(labels, Mapping) else {}


def _dicts(value: object) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _matches(labels: Mapping[str, str], where: Mapping[str, str]) -> bool:
    return all(k in labels and (v == "*" or labels[k] == v) for k, v in where.items())


@dataclass(slots=True)
class _Best:
    value: float
    unit: str
    labels: Mapping[str, str]
    emulated: bool
    test: str


def _selector_fits(selector: object, labels: Mapping[str, str]) -> bool:
    if not isinstance(selector, Mapping):
        return True
    for key, wanted in selector.items():
        if wanted == "*":
            if key not in labels:
                return False
        elif labels.get(key) not in (wanted if isinstance(wanted, list) else [wanted]):
            return False
    return True


def _check_for(checks: Sequence[Mapping[str, Any]], metric: str, labels: Mapping[str, str]) -> Mapping[str, Any] | None:
    """The check judging ``metric`` whose selector fits ``labels`` (failed before warned before passed)."""
    found = [c for c in checks if c.get("metric") == metric and _selector_fits(c.get("selector"), labels)]
    order = {"failed": 0, "no-data": 1, "warned": 2, "passed": 3}
    return min(found, key=lambda c: order.get(str(c.get("status")), 4), default=None)


def _value(value: float) -> str:
    """A headline number: 4 significant digits, thousands separated above 10,000 (12,345 IOPS, 235.3 GB/s)."""
    return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.4g}"


def _bar(check: Mapping[str, Any]) -> str:
    if check.get("kind") == "presence":
        return "present"
    bar = _number(check.get("bar"))
    if bar is None:
        return f"{_e(check.get('comparison') or '')} baseline"
    return f"{_e(check.get('comparison') or '')} {_value(bar)} {_e(check.get('unit') or '')}"


def anchor(test_id: str) -> str:
    """The HTML id suffix of a test's details card (``t-<anchor>``)."""
    return "".join(c if c.isalnum() else "-" for c in test_id)[:80]


def scorecard_rows(results: Sequence[Mapping[str, Any]]) -> list[tuple[Headline, str, _Best, Mapping[str, Any] | None]]:
    """(headline, group text, best measurement, judging check) for every headline with data, in order."""
    wanted = {h.metric for h in HEADLINES}
    groups: dict[tuple[int, tuple[str, ...]], _Best] = {}
    checks_of: dict[str, list[Mapping[str, Any]]] = {}
    for result in results:
        test = str(result.get("id") or result.get("name") or "")
        checks = _dicts(result.get("checks"))
        if checks:
            checks_of[test] = checks
        measurements = _dicts(result.get("measurements"))
        # the collective suites record the transports NCCL used as ``transport`` measurements of the same test
        used = "+".join(
            sorted(
                {str(_labels(m).get("transport")) for m in measurements if m.get("metric") == "transport"} - {"None"}
            )
        )
        for m in measurements:
            metric = m.get("metric")
            if metric not in wanted:
                continue
            value = _number(m.get("value"))
            if value is None:
                continue
            labels = _labels(m)
            if used and "transport" not in labels:
                labels = {**labels, "transport": used}
            for index, headline in enumerate(HEADLINES):
                if headline.metric != metric or not _matches(labels, headline.where):
                    continue
                key = (index, tuple(labels.get(k, "") for k in headline.group_by))
                best = groups.get(key)
                better = best is None or (value > best.value if headline.best == "max" else value < best.value)
                if better:
                    groups[key] = _Best(value, str(m.get("unit") or ""), labels, bool(m.get("emulated")), test)
    rows: list[tuple[Headline, str, _Best, Mapping[str, Any] | None]] = []
    shown: dict[int, int] = {}
    for (index, group), best in sorted(groups.items(), key=lambda kv: kv[0]):
        headline = HEADLINES[index]
        shown[index] = shown.get(index, 0) + 1
        if shown[index] > _MAX_ROWS:
            continue
        text = ", ".join(f"{k}={v}" for k, v in zip(headline.group_by, group, strict=True) if v)
        rows.append((headline, text, best, _check_for(checks_of.get(best.test, []), headline.metric, best.labels)))
    return rows


def scorecard_section(results: Sequence[Mapping[str, Any]]) -> str:
    """The scorecard table (empty string when no headline metric was measured)."""
    rows = scorecard_rows(results)
    if not rows:
        return ""
    body = []
    for headline, group, best, check in rows:
        status = str(check.get("status")) if check else ""
        badge = f'<span class="badge s-{_e(status)}">{_e(status)}</span>' if status else '<span class="muted">-</span>'
        bar = _bar(check) if check else '<span class="muted">no bar (measured, not judged)</span>'
        emulated = ' <span class="emu">emulated</span>' if best.emulated else ""
        body.append(
            f'<tr class="sc-{_e(status or "none")}"><td>{_e(headline.area.replace("_", " "))}</td>'
            f"<td><b>{_e(headline.title)}</b>{f' <span class=muted>{_e(group)}</span>' if group else ''}</td>"
            f'<td class="n big">{_value(best.value)} {_e(best.unit)}{emulated}</td><td class=nw>{bar}</td>'
            f'<td>{badge}</td><td><a href="#t-{_e(anchor(best.test))}">details</a></td></tr>'
        )
    return (
        '<section id="scorecard"><h2>Scorecard</h2><table class="scorecard"><tr><th>area</th><th>headline</th>'
        f"<th>value</th><th>bar</th><th>verdict</th><th></th></tr>{''.join(body)}</table></section>"
    )


def failures_section(results: Sequence[Mapping[str, Any]], status_of: Callable[[Mapping[str, Any]], str]) -> str:
    """Every failed or errored test, one line each: what failed, why (first line of the message) and the likely
    cause (the failed checks' hints), linked to its details."""
    bad = [r for r in results if status_of(r) in ("failed", "error")]
    if not bad:
        return ""
    bad.sort(key=lambda r: (status_of(r) != "failed", str(r.get("id", ""))))
    rows = []
    for r in bad:
        test = str(r.get("id") or r.get("name") or "?")
        message = str(r.get("message") or "").strip()
        lines = [line.strip() for line in message.splitlines() if line.strip()]
        reason = lines[1] if len(lines) > 1 and lines[0].endswith("failed:") else (lines[0] if lines else "-")
        hints = list(
            dict.fromkeys(
                str(c.get("hint"))
                for c in _dicts(r.get("checks"))
                if c.get("hint") and str(c.get("status")) in ("failed", "no-data")
            )
        )
        status = status_of(r)
        rows.append(
            f'<tr class="f-row"><td><span class="badge s-{_e(status)}">{_e(status)}</span></td>'
            f'<td><a href="#t-{_e(anchor(test))}">{_e(r.get("name") or test)}</a></td>'
            f"<td>{_e(r.get('failure_kind') or '')}</td><td>{_e(reason[:400])}</td>"
            f"<td>{_e('; '.join(hints)[:400]) or '<span class=muted>-</span>'}</td></tr>"
        )
    return (
        f'<section id="failures"><h2>Failures <span class=muted>({len(bad)})</span></h2><table class="failures">'
        f"<tr><th></th><th>test</th><th>kind</th><th>reason</th><th>likely cause</th></tr>{''.join(rows)}</table>"
        "</section>"
    )


def capacity_section(results: Sequence[Mapping[str, Any]]) -> str:
    """The capacity panel's measurements (``capacity``, ``stranded_devices``) as a table per pool and resource, a
    fragmentation table, and a bar chart of requested and used as % of allocatable."""
    amounts: dict[tuple[str, str], dict[str, tuple[float, str]]] = {}
    stranded: list[Mapping[str, Any]] = []
    for result in results:
        for m in _dicts(result.get("measurements")):
            labels = _labels(m)
            value = _number(m.get("value"))
            if value is None:
                continue
            if m.get("metric") == "capacity" and "pool" in labels and "resource" in labels:
                amounts.setdefault((labels["pool"], labels["resource"]), {})[labels.get("kind", "")] = (
                    value,
                    str(m.get("unit") or ""),
                )
            elif m.get("metric") == "stranded_devices":
                stranded.append(m)
    if not amounts and not stranded:
        return ""
    rows, categories, requested_pct, used_pct = [], [], [], []
    for (pool, resource), kinds in sorted(amounts.items()):
        allocatable = kinds.get("allocatable", (None, ""))[0]
        unit = next((u for _, u in kinds.values() if u), "")

        def cell(kind: str, kinds: Mapping[str, tuple[float, str]] = kinds) -> str:
            return compact_number(kinds[kind][0]) if kind in kinds else '<span class="muted">-</span>'

        def pct(
            kind: str, kinds: Mapping[str, tuple[float, str]] = kinds, total: float | None = allocatable
        ) -> float | None:
            return 100.0 * kinds[kind][0] / total if kind in kinds and total else None

        req, used = pct("requested"), pct("used")
        rows.append(
            f"<tr><td>{_e(pool)}</td><td>{_e(resource)}</td><td class=n>{cell('allocatable')}</td>"
            f"<td class=n>{cell('requested')}</td><td class=n>{cell('used')}</td><td>{_e(unit)}</td>"
            f"<td class=n>{'-' if req is None else f'{req:.0f}%'}</td>"
            f"<td class=n>{'-' if used is None else f'{used:.0f}%'}</td></tr>"
        )
        categories.append(f"{pool}/{resource}")
        requested_pct.append(req)
        used_pct.append(used)
    table = (
        '<table class="capacity"><tr><th>pool</th><th>resource</th><th>allocatable</th><th>requested</th>'
        f"<th>used</th><th>unit</th><th>requested %</th><th>used %</th></tr>{''.join(rows)}</table>"
        if rows
        else ""
    )
    frag_rows = "".join(
        f"<tr><td>{_e(_labels(m).get('resource', ''))}</td><td class=n>{_e(_labels(m).get('gang_size', ''))}</td>"
        f"<td class=n>{compact_number(_number(m.get('value')) or 0.0)}</td>"
        f"<td>{_e(_labels(m).get('fits', ''))}</td></tr>"
        for m in stranded
    )
    frag = (
        '<table class="fragmentation"><caption>Fragmentation: free devices no gang of that size can use</caption>'
        f"<tr><th>resource</th><th>gang size</th><th>stranded</th><th>gangs that fit</th></tr>{frag_rows}</table>"
        if frag_rows
        else ""
    )
    chart = (
        bar_chart(
            categories,
            [("requested %", requested_pct), ("used %", used_pct)],
            title="Requested and used, % of allocatable",
            y_label="%",
        )
        if categories
        else ""
    )
    return (
        f'<section id="capacity-panel"><h2>Capacity and fragmentation</h2><div class="plots">{chart}</div>'
        f"{table}{frag}</section>"
    )
