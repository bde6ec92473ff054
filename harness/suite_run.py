"""``k8s-ai-bench run``: the suites through pytest, then the reports, a summary and an exit code.

pytest runs in this process (the embedded target's threads and pod processes belong to it and end with it); a
small plugin object counts outcomes for the summary. The run record is rendered afterwards from its files alone,
the same way ``report render`` does, so the report of a live run and of a re-render never differ.

Exit codes: 0 nothing failed or errored, 1 a check or test failed (or errored), 2 usage/configuration error,
3 target unreachable, 130 interrupted.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.config import OPTIONS, new_run_id

log = logging.getLogger(__name__)

SUITES_DIR = Path(__file__).resolve().parents[1] / "suites"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


@dataclass(slots=True, eq=False)  # pluggy keeps plugin objects in sets
class _Outcomes:
    """pytest plugin object collecting per-test outcomes for the summary line."""

    counts: dict[str, int] = field(default_factory=lambda: {"passed": 0, "failed": 0, "error": 0, "skipped": 0})
    failures: list[str] = field(default_factory=list)
    collected: int = 0
    config: pytest.Config | None = None

    def pytest_configure(self, config: pytest.Config) -> None:
        self.config = config

    @property
    def target_failure(self) -> str:
        """Why the harness ended the session early (unreachable target, configuration error), if it did."""
        from harness.pytest_plugin import SESSION_KEY

        state = self.config.stash.get(SESSION_KEY, None) if self.config is not None else None
        return state.failure if state is not None else ""

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = len(session.items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            if report.passed:
                self.counts["passed"] += 1
            elif report.skipped:
                self.counts["skipped"] += 1
            elif report.when == "call":
                self.counts["failed"] += 1
                self.failures.append(report.nodeid)
            else:
                self.counts["error"] += 1
                self.failures.append(report.nodeid)
        elif report.when == "teardown" and report.failed:
            self.counts["error"] += 1
            self.failures.append(report.nodeid)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """What ``run``/``doctor`` pass to pytest: harness options (by :data:`harness.config.OPTIONS` name, raw text or
    True for switches; None = not given) plus pytest's own selection."""

    harness: Mapping[str, Any] = field(default_factory=dict)
    markexpr: str | None = None
    keyword: str | None = None
    suites: tuple[str, ...] = ()
    verbose: bool = False

    @property
    def run_id(self) -> str | None:
        return self.harness.get("run_id")

    @property
    def reports_dir(self) -> str | None:
        return self.harness.get("reports_dir")


def _rootdir(suites: tuple[str, ...]) -> Path:
    """Test ids are relative to this: the suites directory, or the common directory of the suites given."""
    if not suites:
        return SUITES_DIR
    paths = [Path(s).resolve() for s in suites]
    common = Path(os.path.commonpath([p if p.is_dir() else p.parent for p in paths]))
    return SUITES_DIR if common == SUITES_DIR or SUITES_DIR in common.parents else common


def pytest_args(options: RunOptions, run_id: str) -> list[str]:
    args = [
        *(options.suites or (str(SUITES_DIR),)),
        # the suites' own pytest.ini (no per-test timeout plugin: workloads carry their own timeouts), not the
        # harness's test configuration in pyproject.toml
        "-c",
        str(SUITES_DIR / "pytest.ini"),
        "--rootdir",
        str(_rootdir(options.suites)),
        "-o",
        "aibench_suite_run=true",
        "--run-id",
        run_id,
        "-rfEs",
    ]
    if options.verbose:
        args.append("-v")
    for option in OPTIONS:
        value = options.harness.get(option.name)
        if option.name == "run_id" or value in (None, False, ""):
            continue
        args += [option.flag] if option.is_flag else [option.flag, str(value)]
    for flag, value in (("-m", options.markexpr), ("-k", options.keyword)):
        if value:
            args += [flag, value]
    return args


@dataclass(slots=True, eq=False)  # pluggy keeps plugin objects in sets
class _Doctor:
    """For ``doctor``: after collection, say per test whether the target lets it run, and why not."""

    lines: list[str] = field(default_factory=list)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        from harness.pytest_plugin import SESSION_KEY, requirements_of

        state = session.config.stash[SESSION_KEY]
        caps, target = state.capabilities, state.target
        self.lines += [
            f"target: {target.kind} {target.name}, server {target.server_version}, {len(caps.nodes)} node(s)"
            + (f" ({sum(n.emulated for n in caps.nodes)} emulated)" if any(n.emulated for n in caps.nodes) else ""),
            f"accelerators: {caps.accelerators}",
            f"profile: {state.profile.name} ({state.profile_reason})",
            "storage classes: "
            + (
                ", ".join(f"{s.name} ({s.provisioner}{', default' if s.default else ''})" for s in caps.storage_classes)
                or "none"
            ),
            "platform services: "
            + (", ".join(f"{k} at {v.address}" for k, v in caps.system_services.items()) or "none"),
            "add-ons: " + (", ".join(sorted(caps.addons)) or "none") + "; CNI: " + (", ".join(caps.cni) or "unknown"),
            "",
        ]
        runnable = 0
        for item in session.items:
            missing = [f"{req}: {reason}" for req in requirements_of(item) if (reason := caps.missing(req))]
            runnable += not missing
            self.lines.append(
                f"{'skip' if missing else 'run '}  {item.nodeid}" + (f"  ({missing[0]})" if missing else "")
            )
        self.lines.append(f"{runnable} of {len(session.items)} tests will run on this target")


def doctor(options: RunOptions, *, out: object = sys.stdout) -> int:
    """Connect, report capabilities (the pytest header), and list which tests would run or skip."""
    plugin = _Doctor()
    code = pytest.main(
        [*pytest_args(options, options.run_id or new_run_id()), "--collect-only", "-qq"], plugins=[plugin]
    )
    for line in plugin.lines:
        out.write(line + "\n")  # type: ignore[attr-defined]
    if code == pytest.ExitCode.USAGE_ERROR:
        return EXIT_USAGE
    return EXIT_OK if code in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED) else EXIT_UNREACHABLE


def run_suites(options: RunOptions, *, out: object = sys.stdout) -> int:
    run_id = options.run_id or new_run_id()
    reports_dir = Path(options.reports_dir or "reports")
    run_dir = reports_dir / run_id
    outcomes = _Outcomes()
    code = pytest.main(pytest_args(options, run_id), plugins=[outcomes])
    write = out.write  # type: ignore[attr-defined]
    if code == pytest.ExitCode.USAGE_ERROR:
        return EXIT_USAGE
    if outcomes.target_failure:
        write(f"k8s-ai-bench: {outcomes.target_failure}\n")
        return EXIT_USAGE if outcomes.target_failure.startswith("configuration error") else EXIT_UNREACHABLE
    if code == pytest.ExitCode.INTERRUPTED:
        write("k8s-ai-bench: interrupted; the partial record is kept\n")
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        write("k8s-ai-bench: no tests selected (check -m/-k)\n")
        return EXIT_USAGE
    paths: list[Path] = []
    if run_dir.is_dir():
        from harness.reporting.render import render_all

        paths = render_all(run_dir)
    counts = outcomes.counts
    verdict = "PASS" if counts["failed"] == counts["error"] == 0 else "FAIL"
    write(
        f"k8s-ai-bench {verdict}: {counts['passed']} passed, {counts['failed']} failed, {counts['error']} errors, "
        f"{counts['skipped']} skipped (run {run_id})\n"
    )
    for path in paths:
        write(f"  {path}\n")
    if code == pytest.ExitCode.INTERRUPTED:
        return EXIT_INTERRUPTED
    if counts["failed"] or counts["error"]:
        return EXIT_FAILED
    return EXIT_OK if code in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) else EXIT_FAILED
