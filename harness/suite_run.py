"""``k8s-ai-bench run``: the suites through pytest, then the reports, a summary and an exit code.

Everything that can be refused is refused first (:func:`preflight`): one line, exit 2, no target started and no
directory made. pytest then runs in this process (the embedded target's threads and pod processes belong to it and
end with it); the harness plugin keeps the counts, how the run ended and why. The run record is rendered
afterwards from its files alone, the same way ``report render`` does, so the report of a live run and of a
re-render never differ.

Exit codes (README and docs/nightly-ci.md have the table): 0 PASS, 1 FAIL (a check failed or a test errored),
2 usage or configuration error, 3 target unreachable or lost mid-run, 4 the run record could not be written (disk
full), 5 NO-TESTS (none selected, or every selected test skipped), 130 INTERRUPTED (SIGINT or SIGTERM).
"""

from __future__ import annotations

import configparser
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import pytest

from harness.config import OPTIONS, HarnessConfig, new_run_id
from harness.errors import ConfigError

log = logging.getLogger(__name__)

SUITES_DIR = Path(__file__).resolve().parents[1] / "suites"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_WRITE, EXIT_NO_TESTS, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 5, 130


@dataclass(slots=True, eq=False)  # pluggy keeps plugin objects in sets
class _Outcomes:
    """pytest plugin object that keeps a handle on the harness session (counts, how the run ended) for the
    summary line, and how many tests were collected before ``-m``/``-k`` deselected some."""

    collected: int = 0
    config: pytest.Config | None = None

    def pytest_configure(self, config: pytest.Config) -> None:
        self.config = config

    @property
    def state(self) -> Any:
        """The plugin's :class:`~harness.pytest_plugin.HarnessSession`, or None when pytest never configured it."""
        from harness.pytest_plugin import SESSION_KEY

        return self.config.stash.get(SESSION_KEY, None) if self.config is not None else None

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.collected = len(items)


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
        "-o",
        "aibench_cli_summary=true",
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
        from harness.images.pullcheck import run_preflight  # the same pull preflight as run's, its lines as they are

        self.lines += run_preflight(state, session.items, requirements_of).lines


def doctor(options: RunOptions, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Connect, report capabilities (the pytest header), and list which tests would run or skip."""
    preflight(options)
    plugin, outcomes = _Doctor(), _Outcomes()
    code = pytest.main(
        [*pytest_args(options, options.run_id or new_run_id()), "--collect-only", "-qq"], plugins=[plugin, outcomes]
    )
    state = outcomes.state
    if state is not None and state.failure:
        err.write(f"k8s-ai-bench: error: {state.failure}\n")
        return int(state.exit_code)
    for line in plugin.lines:
        out.write(line + "\n")
    if code == pytest.ExitCode.USAGE_ERROR:
        return EXIT_USAGE
    return EXIT_OK if code in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED) else EXIT_UNREACHABLE


def preflight(options: RunOptions) -> HarnessConfig:
    """Every refusal a run can make before anything starts, each a :class:`ConfigError` line (exit 2): options and
    their combination, a run id that exists already, the reports directory, a kubeconfig and its context, the
    profile, the cluster spec, the suite paths, the ``-m``/``-k`` expressions. Nothing is created here."""
    from harness.cluster.target import check_context
    from harness.config import resolve

    values = {k: v for k, v in options.harness.items() if v not in (None, False, "")}
    cfg = resolve(values, os.environ, _suite_ini())
    if cfg.run_dir.exists() or cfg.run_dir.is_symlink():
        raise ConfigError(
            f"--run-id {cfg.run_id}: {cfg.run_dir} exists already; run ids are never reused (choose another id)"
        )
    check_context(cfg)
    if cfg.profile:
        from harness.thresholds.loader import load_profile

        load_profile(cfg.profile)
    if cfg.cluster_spec is not None:
        from harness.embedded.clusterspec import load_cluster_spec

        load_cluster_spec(cfg.cluster_spec)
    for suite in options.suites:
        if not Path(suite.partition("::")[0]).exists():  # a file, a directory or a test id (file::test)
            raise ConfigError(f"suite {suite}: no such file or directory")
    _check_expression("-m", options.markexpr, markers=True)
    _check_expression("-k", options.keyword, markers=False)
    return cfg


def _suite_ini() -> dict[str, str]:
    """The ``aibench_*`` keys of suites/pytest.ini (the plugin reads the same file inside pytest)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(SUITES_DIR / "pytest.ini", encoding="utf-8")
    except (OSError, configparser.Error, UnicodeDecodeError):
        return {}
    return {k: v for k, v in parser["pytest"].items() if k.startswith("aibench_")} if "pytest" in parser else {}


def _check_expression(flag: str, text: str | None, *, markers: bool) -> None:
    """A ``-m``/``-k`` expression that pytest cannot parse, or (``-m``) one naming a marker no test can carry, is
    refused: ``-m nosucharea`` would otherwise select nothing and read like a clean run."""
    if not text:
        return
    from _pytest.mark.expression import Expression

    try:
        Expression.compile(text)
    except SyntaxError as exc:  # pytest's expression parser reports with SyntaxError (ParseError before pytest 8.4)
        raise ConfigError(f"{flag} {text!r}: not a valid expression ({exc.msg})") from None
    if not markers:
        return
    from harness.pytest_plugin import MARKERS

    known = {name.partition("(")[0] for name in MARKERS} | _PYTEST_MARKERS
    names = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)) - {"and", "or", "not", "True", "False", "None"}
    unknown = sorted(names - known)
    if unknown:
        raise ConfigError(
            f"{flag} {text!r}: unknown marker {unknown[0]!r} (markers: {', '.join(sorted(known - _PYTEST_MARKERS))})"
        )


_PYTEST_MARKERS = frozenset({"skip", "skipif", "xfail", "parametrize", "usefixtures", "filterwarnings"})


def run_suites(
    options: RunOptions, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr, plugins: Sequence[object] = ()
) -> int:
    """``k8s-ai-bench run``: refusals first (exit 2, nothing created), then pytest, then the reports and the
    summary line. The summary's word and the exit code come from :mod:`harness.reporting.outcome`. ``plugins`` are
    extra pytest plugin objects (the fault-injection benchmark sets the embedded target's faults with one)."""
    cfg = preflight(options)
    run_id = cfg.run_id
    outcomes = _Outcomes()
    code = int(pytest.main(pytest_args(options, run_id), plugins=[outcomes, *plugins]))
    state = outcomes.state
    with _IgnoringSignals(err):
        if state is not None and state.final_code is None and state.interrupted_by:  # while the target started
            out.write(
                f"k8s-ai-bench INTERRUPTED: by {state.interrupted_by} before the first test; nothing was recorded\n"
            )
            return EXIT_INTERRUPTED
        if state is None or state.final_code is None:  # pytest's own usage or internal error, before session end
            recorded = state is not None and state.has_record
            err.write(
                f"k8s-ai-bench: error: pytest stopped with its {'usage' if code == 4 else 'internal'} error "
                f"(its messages are above); {'the partial record is kept' if recorded else 'nothing was recorded'}\n"
            )
            return EXIT_USAGE if code == pytest.ExitCode.USAGE_ERROR else EXIT_FAILED
        code = int(state.final_code)
        if state.failure and not state.has_record:  # refused at start: one line, nothing written
            err.write(f"k8s-ai-bench: error: {state.failure}\n")
            return code
        if not state.has_record:
            out.write(
                f"k8s-ai-bench NO-TESTS: no test selected ({outcomes.collected} collected, none left after -m/-k); "
                "nothing was recorded\n"
            )
            return code
        return _summarise(state, cfg.run_dir, code, out, err)


def _summarise(state: Any, run_dir: Path, code: int, out: TextIO, err: TextIO) -> int:
    """Render the record, then the summary line: the outcome word, the counts, what did not run, and why."""
    from harness.errors import RecordWriteError
    from harness.reporting.outcome import Ended, outcome
    from harness.reporting.render import render_all

    paths: list[Path] = []
    if state.ended_by is not Ended.RECORD_WRITE_FAILED:  # after a failed write there is no room for a report
        try:
            paths = render_all(run_dir)
        except RecordWriteError as exc:
            state.fail(f"report not rendered: {exc}", EXIT_WRITE, Ended.RECORD_WRITE_FAILED)
            code = EXIT_WRITE
    counts = state.counts
    word = outcome(state.ended_by, counts)[0]
    not_run = max(state.selected - len(state.ran), 0)
    why = ""
    if state.failure:
        why = f" -- {state.failure}"
    elif state.interrupted_by:
        why = f" -- interrupted by {state.interrupted_by}" + (f" during {state.current}" if state.current else "")
    elif word == "NO-TESTS":
        why = " -- no test ran (every selected test was skipped)"
    line = (
        f"k8s-ai-bench {word}: {counts['passed']} passed, {counts['failed']} failed, {counts['error']} errors, "
        f"{counts['skipped']} skipped" + (f", {not_run} not run" if not_run else "") + f" (run {state.config.run_id})"
    )
    out.write(line + why + "\n")
    for path in paths:
        out.write(f"  {path}\n")
    out.flush()
    if state.failure:  # the CI log's error stream says why the run was aborted, once
        err.write(f"k8s-ai-bench: error: {state.failure}\n")
    return code


class _IgnoringSignals:
    """While the reports render after an interrupted or finished run, another Ctrl-C is noted and ignored: the
    record on disk is complete by now and the summary line is one second away."""

    def __init__(self, err: TextIO) -> None:
        self.err = err
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> None:
        def note(signum: int, frame: FrameType | None) -> None:
            os.write(2, f"k8s-ai-bench: {signal.Signals(signum).name} ignored while the report is written\n".encode())

        if threading.current_thread() is threading.main_thread():
            self.previous = {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
