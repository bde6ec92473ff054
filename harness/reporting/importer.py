"""``k8s-ai-bench report import DIR --profile P``: judge results produced elsewhere.

Why: a team that ran nccl-tests, fio, perftest, vLLM's benchmark, inference-perf, GuideLLM or locust on its own
cluster has the numbers already; this turns a folder of those outputs into a normal run record (``run.json`` +
``results.jsonl``), judged against a profile's bars and rendered like any run (HTML, JUnit, CSV), so ``report
compare`` and ``report history`` work on it too.

Rules:

- Each file's format is **detected by content**, never by name (:data:`FORMATS`, first match wins). A file no
  reader recognises, one that is not UTF-8 text, or one its reader refuses becomes an ``error`` result naming
  the file and the reason: nothing is silently dropped.
- One result per file (``id`` = ``import::<relative path>``), labelled imported: the result's ``params`` and every
  measurement's ``source`` hold the tool, the file and its SHA-256. The source is kept out of the labels, so a
  later import of another file measuring the same thing lines up in compare and history.
- Judging: the profile's bars for the file's workload. A bar the file has no data for is listed in the result's
  message ("not in this file") and does not fail it: one file rarely measures everything a profile asks for.
  With no bar matching at all the result is skipped, "measured, not judged". Corruption in nccl-tests output
  (``#wrong`` > 0, a FAILED out-of-bounds footer) fails the result whatever the bandwidth.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import __version__
from harness.collectives import scope_of
from harness.errors import ConfigError, HarnessError
from harness.measurement import Measurement
from harness.parsers import fio, guidellm, inference_perf, iperf, locust, nccl, perftest, vllm_bench
from harness.reporting.record import RunRecord
from harness.reporting.schema import (
    CheckEntry,
    Environment,
    MeasurementEntry,
    ProfileInfo,
    RunInfo,
    TargetInfo,
    TestResult,
)
from harness.thresholds import evaluate
from harness.thresholds.model import Profile, RuleKind, Status
from harness.thresholds.verdicts import judge

__all__ = ["FORMATS", "Format", "ImportSummary", "import_results"]

_MAX_BYTES = 64 * 1024 * 1024  # a bigger file is no tool output we read; say so instead of loading it


def _json(text: str) -> Any:
    stripped = text.lstrip()
    if not stripped.startswith(("{", "[")):
        return None
    try:
        return json.loads(stripped)
    except json.JSONDecodeError:
        return None


_NCCL_PROGRAM = re.compile(r"\b([a-z][a-z_]*_perf)(?:_mpi)?\b")


def _nccl_text(text: str) -> list[Measurement]:
    """nccl-tests stdout; the collective comes from the log (``Collective test concluded``, 2023+) or, for older
    logs, from the command line pasted above the table (``all_gather_perf -g 8 ...``), as a reader would."""
    command = _NCCL_PROGRAM.search(text)
    out: list[Measurement] = []
    for result in nccl.parse_nccl_tests_all(text, program=command.group(1) if command else None):
        hosts = [r.host for r in result.ranks]
        extra = {"scope": scope_of(hosts)} if hosts else {}
        out += nccl.nccl_measurements(result, extra_labels=extra)
    # the transports NCCL_DEBUG=INFO lines name, as the collective suites record them
    out += [
        Measurement(metric="transport", value=1, unit="count", labels={"transport": t})
        for t in sorted(nccl.transports(text))
    ]
    return out


def _nccl_json(text: str) -> list[Measurement]:
    result = nccl.parse_nccl_tests_json(text)
    hosts = [r.host for r in result.ranks]
    return nccl.nccl_measurements(result, extra_labels={"scope": scope_of(hosts)} if hosts else {})


def _is_nccl_json(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("results"), list) and "config" in data and "args" in data


def _is_fio(text: str, data: Any) -> bool:
    if isinstance(data, dict):
        return isinstance(data.get("jobs"), list) and "fio version" in data
    return '"fio version"' in text and '"jobs"' in text  # warnings before the JSON


def _is_nccl_text(text: str) -> bool:
    return "busbw" in text and "algbw" in text and ("Out of bounds values" in text or "size" in text)


def _is_perftest(text: str) -> bool:
    return "#bytes" in text and (" BW Test" in text or " Latency Test" in text)


def _is_iperf(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("start"), dict) and "end" in data


@dataclass(frozen=True, slots=True)
class Format:
    """One readable format: how to recognise it, how to read it, and which workload's bars judge it."""

    tool: str
    workload: str
    area: str
    detect: Callable[[str, Any], bool]
    read: Callable[[str], list[Measurement]]


#: Every format ``report import`` reads, most specific first (the first whose ``detect`` accepts a file reads it).
FORMATS: tuple[Format, ...] = (
    Format("nccl-tests -J", "nccl-allreduce", "network", lambda t, d: _is_nccl_json(d), _nccl_json),
    Format(
        "inference-perf",
        "inference-server",
        "serving",
        lambda t, d: inference_perf.is_inference_perf_report(d),
        inference_perf.inference_perf_measurements,
    ),
    Format(
        "guidellm",
        "inference-server",
        "serving",
        lambda t, d: guidellm.is_guidellm_report(d),
        guidellm.guidellm_measurements,
    ),
    Format(
        "vllm bench serve",
        "inference-server",
        "serving",
        lambda t, d: vllm_bench.is_vllm_serve_result(d),
        vllm_bench.vllm_serve_json_measurements,
    ),
    Format(
        "vllm bench throughput",
        "inference-server",
        "serving",
        lambda t, d: (
            vllm_bench.is_vllm_throughput_result(d) or (d is None and "Throughput:" in t and "requests/s" in t)
        ),
        vllm_bench.vllm_throughput_measurements,
    ),
    Format("fio", "fio", "storage", _is_fio, lambda t: fio.fio_measurements(fio.parse_fio(t))),
    Format(
        "iperf3",
        "net-iperf3",
        "network",
        lambda t, d: _is_iperf(d),
        lambda t: iperf.iperf_measurements(iperf.parse_iperf3(t)),
    ),
    Format(
        "vllm bench serve",
        "inference-server",
        "serving",
        lambda t, d: d is None and "Serving Benchmark Result" in t,
        vllm_bench.vllm_serve_text_measurements,
    ),
    Format(
        "locust",
        "inference-server",
        "serving",
        lambda t, d: locust.is_locust_stats_history(t),
        locust.locust_history_measurements,
    ),
    Format("nccl-tests", "nccl-allreduce", "network", lambda t, d: d is None and _is_nccl_text(t), _nccl_text),
    Format(
        "perftest",
        "perftest-ib",
        "network",
        lambda t, d: d is None and _is_perftest(t),
        lambda t: perftest.perftest_measurements(perftest.parse_perftest(t)),
    ),
)


@dataclass(slots=True)
class ImportSummary:
    """What an import did: where the record is, how many files were judged, and those that could not be read."""

    run_dir: Path
    files: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)
    failed: int = 0
    passed: int = 0
    not_judged: int = 0

    @property
    def exit_code(self) -> int:
        """0 when every file was read and nothing failed, else 1 (the CLI's exit code)."""
        return 1 if self.failed or self.unreadable else 0


def _files(src: Path) -> list[Path]:
    if not src.is_dir():
        raise ConfigError(f"report import: {src} is not a directory")
    files = sorted(p for p in src.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise ConfigError(f"report import: {src} holds no files")
    return files


def _read(path: Path) -> tuple[str | None, str, str]:
    """(text or None, sha256, reason when None)."""
    size = path.stat().st_size
    if size > _MAX_BYTES:
        return None, "", f"{size} bytes, larger than the {_MAX_BYTES // (1024 * 1024)} MiB any tool output here"
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    try:
        return raw.decode("utf-8"), digest, ""
    except UnicodeDecodeError as exc:
        return None, digest, f"not UTF-8 text (byte {exc.start})"


def _detect(text: str) -> Format | None:
    data = _json(text)
    return next((f for f in FORMATS if f.detect(text, data)), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Verdict:
    status: str
    failure_kind: str
    message: str
    checks: list[CheckEntry]


def _judge(profile: Profile, fmt: Format, measurements: list[Measurement]) -> _Verdict:
    """status, failure_kind, message and the checks of one file's measurements."""
    checks = evaluate(profile, fmt.workload, measurements)
    judged = [c for c in checks if c.status is not Status.NO_DATA]
    missing = [c.threshold_id for c in checks if c.status is Status.NO_DATA]
    not_here = f"; not in this file: {', '.join(missing)}" if missing else ""
    # the no-corruption verdict judges what the file has; a file without #wrong and footer is not judged on it
    verdicts = (
        judge(profile, fmt.workload, RuleKind.NO_CORRUPTION, measurements) if fmt.workload == "nccl-allreduce" else []
    )
    verdicts = [v for v in verdicts if v.status is not Status.NO_DATA]
    problem = "; ".join(v.detail for v in verdicts if v.counts_as_failure)
    judged = [*verdicts, *judged] if judged or problem else judged
    failed = [c for c in judged if c.counts_as_failure]
    if problem:
        status, kind, message = "failed", "conformance", problem
    elif failed:
        lines = [f"{len(failed)} of {len(judged)} check{'s' if len(judged) != 1 else ''} failed:"]
        status, kind, message = "failed", "threshold", "\n".join(lines + [f"  {c.message}" for c in failed])
    elif judged:
        status, kind, message = "passed", "", ""
    else:
        why = checks.unjudged or f"no bar of profile {profile.name} matches these {fmt.workload} measurements"
        if missing:
            why = f"no {fmt.workload} bar of profile {profile.name} has data in this file"
        status, kind, message = "skipped", "", f"measured, not judged: {why}"
    if missing:
        message += f" ({', '.join(missing)})" if status == "skipped" else not_here
    return _Verdict(
        status=status,
        failure_kind=kind,
        message=message.lstrip("; "),
        checks=[CheckEntry.from_json(c.to_dict()) for c in judged],
    )


def import_results(
    src: Path, profile: Profile, out_dir: Path, *, run_id: str, clock: Callable[[], float] = time.time
) -> ImportSummary:
    """Read every file under ``src``, judge it against ``profile``, write the run record to ``out_dir``."""
    files = _files(src)
    started = clock()
    record = RunRecord(out_dir)
    summary = ImportSummary(run_dir=out_dir, files=len(files))
    for path in files:
        rel = path.relative_to(src).as_posix()
        text, digest, reason = _read(path)
        fmt = _detect(text) if text is not None else None
        if text is not None and fmt is None:
            reason = "format not recognised (" + ", ".join(sorted({f.tool for f in FORMATS})) + " are read)"
        measurements: list[Measurement] = []
        if fmt is not None and text is not None:
            try:
                measurements = fmt.read(text)
            except HarnessError as exc:
                reason = str(exc) if str(exc).startswith(fmt.tool.split()[0]) else f"{fmt.tool}: {exc}"
            if not measurements and not reason:
                reason = f"{fmt.tool}: the file holds no measurement"
        result = TestResult(id=f"import::{rel}", name=rel, markers=["imported"], area=fmt.area if fmt else "")
        result.workload = fmt.workload if fmt else ""
        if reason:
            summary.unreadable.append((rel, reason))
            result.status, result.failure_kind, result.message = "error", "parse", f"{rel}: {reason}"
            result.params = {"imported": "true", "file": rel, "sha256": digest}
            record.add_result(result)
            continue
        assert fmt is not None
        source = {"tool": fmt.tool, "file": rel, "sha256": digest}
        verdict = _judge(profile, fmt, measurements)
        summary.failed += verdict.status == "failed"
        summary.passed += verdict.status == "passed"
        summary.not_judged += verdict.status == "skipped"
        result.params = {"imported": "true", **source}
        result.measurements = [
            MeasurementEntry(
                metric=m.metric, value=m.value, unit=m.unit, labels=dict(m.labels), emulated=m.emulated, source=source
            )
            for m in measurements
        ]
        result.status, result.failure_kind, result.message = verdict.status, verdict.failure_kind, verdict.message
        result.checks = verdict.checks
        record.add_result(result)
    record.write_info(
        RunInfo(
            run_id=run_id,
            started_at=started,
            finished_at=clock(),
            exit_status=summary.exit_code,
            environment=Environment(harness_version=__version__),
            target=TargetInfo(kind="imported", name=src.name or str(src)),
            profile=ProfileInfo(name=profile.name, reason="named with --profile (report import)"),
            imported={
                "from": str(src),
                "files": len(files),
                "unreadable": [{"file": f, "reason": r} for f, r in summary.unreadable],
            },
        )
    )
    return summary


def imported_sources(measurements: Sequence[MeasurementEntry]) -> set[str]:
    """The files a result's measurements came from (for reports that name them)."""
    return {m.source["file"] for m in measurements if m.source is not None and "file" in m.source}
