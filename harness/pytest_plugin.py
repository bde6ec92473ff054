"""The pytest plugin: options, markers, the session's target and run record, and the fixtures suites use.

Registered through the ``pytest11`` entry point, so it is present in every pytest of the environment; it stays
inert (no target is started, nothing is written) until a test asks for a harness fixture, or the run is a suite
run (``-o aibench_suite_run=true``, which ``k8s-ai-bench run`` passes) and the header reports the target.

A suite test reads: arrange (workload + params), act (``run_workload``), parse, evaluate, record, assert.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import platform
import signal
import subprocess
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import pluggy
import pytest

from harness import __version__
from harness.config import OPTIONS, HarnessConfig, resolve
from harness.errors import (
    ConfigError,
    HarnessError,
    ParseError,
    RecordWriteError,
    TargetUnavailable,
    WaitTimeout,
    WorkloadFailed,
)
from harness.reporting.atomic import write_error
from harness.reporting.outcome import Ended, outcome
from harness.reporting.pytest_results import result_of
from harness.reporting.record import RunRecord, TestRecord
from harness.reporting.schema import (
    CapabilitiesInfo,
    Environment,
    FailureKind,
    ProfileInfo,
    RunInfo,
    Status,
    TargetInfo,
)

if TYPE_CHECKING:  # the kubernetes client and the runners load only once a test asks for a target
    from harness.catalog.render import Rendered
    from harness.catalog.spec import WorkloadSpec
    from harness.fixture_types import Capabilities, Profile, Runner, Target
    from harness.runners.skeleton import RunContext

log = logging.getLogger(__name__)

MARKERS = {
    "conformance": "a behaviour holds (pass/fail, no measurement bar)",
    "perf": "a measured number is judged against the profile's bar",
    "compute": "area: GPU/TPU scheduling and compute performance",
    "network": "area: collectives, RDMA, CNI, isolation",
    "storage": "area: volumes, model stores, storage tiers",
    "serving": "area: inference serving and routing",
    "observability": "area: metrics and monitoring",
    "practices": "area: platform best practices",
    "control_plane": "area: control-plane behaviour and SLOs",
    "gpu": "needs NVIDIA GPUs (implies requires('gpu'))",
    "tpu": "needs Cloud TPUs (implies requires('tpu'))",
    "rdma": "needs RDMA/SR-IOV resources (implies requires('rdma'))",
    "istio": "needs Istio (implies requires('istio'))",
    "ray": "needs Ray (KubeRay on real clusters)",
    "slow": "takes minutes; deselect with -m 'not slow'",
    "requires(*capabilities)": "skip unless the target has every capability named (see Capabilities.missing)",
    "conformance_requirement(*ids)": "the CNCF Kubernetes AI Conformance requirement ids this test establishes",
}
_IMPLIED = {"gpu": "gpu", "tpu": "tpu", "rdma": "rdma", "istio": "istio"}

#: Exit codes decided by the plugin (the rest come from :mod:`harness.reporting.outcome`).
EXIT_USAGE, EXIT_UNREACHABLE, EXIT_WRITE, EXIT_INTERNAL = 2, 3, 4, 1

CONFIG_KEY = pytest.StashKey[HarnessConfig]()
_SIGNALS_KEY = pytest.StashKey[dict[int, Any]]()
_RETRIES_AT_START = pytest.StashKey[int]()
SESSION_KEY = pytest.StashKey["HarnessSession"]()
RECORD_KEY = pytest.StashKey[TestRecord]()


@dataclass(slots=True)
class HarnessSession:
    """Lazily started session state: the target, its capabilities, the profile and the run record.

    ``failure`` (with ``exit_code``) is why the harness ended the run early: set before any test ran (target
    unreachable, bad profile), or mid-run when the target was lost or the record could not be written. The run
    directory is made only when the first test is about to run, so a run refused at start leaves nothing behind."""

    config: HarnessConfig
    _target: Target | None = None
    _capabilities: Capabilities | None = None
    _profile: Profile | None = None
    profile_reason: str = ""
    _record: RunRecord | None = None
    started_at: float = field(default_factory=time.time)
    failure: str = ""
    exit_code: int = 0  # with failure: 2 configuration, 3 target unreachable or lost, 4 record not writable
    ended_by: Ended = Ended.COMPLETED
    interrupted_by: str = ""  # the signal's name once one arrived
    target_lost: str = ""  # why the target stopped answering, once it did
    selected: int = 0  # tests selected to run
    current: str = ""  # the test running now (an interrupted run says which one it stopped in)
    final_code: int | None = None  # the run's exit code, once session end decided it
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("passed", "failed", "error", "skipped"), 0))
    ran: set[str] = field(default_factory=set)  # ids of the tests that ran (a teardown error is a second result)
    _alive: Path | None = None

    @property
    def record(self) -> RunRecord:
        """The run record, made on first use (its directory must not exist: run ids are never reused)."""
        if self._record is None:
            from harness.cluster.sweep import mark_alive

            self._record = RunRecord(self.config.run_dir)
            try:
                self._alive = mark_alive(self.config.run_dir)
            except OSError as exc:
                raise write_error(self.config.run_dir / ".alive", exc) from None
        return self._record

    @property
    def has_record(self) -> bool:
        return self._record is not None

    def fail(self, message: str, exit_code: int, ended_by: Ended | None = None) -> str:
        """Remember the first reason the run ends early (later ones are consequences of it)."""
        if not self.failure:
            self.failure, self.exit_code = message, exit_code
            if ended_by is not None:
                self.ended_by = ended_by
        return self.failure

    def connect(self) -> Target:
        """The target, connected on first use; a harness error becomes :attr:`failure` and is raised again."""
        if self._target is None:
            from harness.targets import connect

            try:
                self._target = connect(self.config)
            except TargetUnavailable as exc:
                self.fail(f"target unavailable: {exc}", EXIT_UNREACHABLE)
                raise
            except ConfigError as exc:
                self.fail(f"configuration error: {exc}", EXIT_USAGE)
                raise
        return self._target

    @property
    def target(self) -> Target:
        if self.failure:
            pytest.exit(self.failure, returncode=self.exit_code or EXIT_UNREACHABLE)
        if self._target is not None:
            return self._target
        try:
            target = self.connect()
        except (TargetUnavailable, ConfigError):
            pytest.exit(self.failure, returncode=self.exit_code)
        try:
            _ = self.record  # namespaces come next: the alive marker must exist before them
        except (ConfigError, RecordWriteError) as exc:
            self.fail(str(exc), EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_WRITE)
            pytest.exit(self.failure, returncode=self.exit_code)
        return target

    @property
    def capabilities(self) -> Capabilities:
        if self._capabilities is None:
            from harness.cluster.capabilities import discover
            from harness.targets import service_hints

            target = self.target
            self._capabilities = discover(
                target.api_client,
                server_version=target.server_version,
                embedded=target.embedded is not None,
                service_hints=service_hints(target),
            )
        return self._capabilities

    @property
    def profile(self) -> Profile:
        if self._profile is None:
            from harness.thresholds.loader import load_profile, match_profile

            if self.config.profile:
                self._profile = load_profile(self.config.profile)
                self.profile_reason = "chosen with --profile"
            else:
                self._profile, self.profile_reason = match_profile(self.capabilities.facts())
        return self._profile

    @property
    def started(self) -> bool:
        return self._target is not None

    def unreachable(self) -> str:
        """Why the target can no longer be asked (empty while it can): namespaces are then left for ``sweep``."""
        return self.target_lost

    def check_lost(self, exc: BaseException) -> str:
        """After a test failed with ``exc``: is the target gone (a connection failure and a failed probe)?"""
        from harness.cluster.target import is_connection_failure, lost

        if self.target_lost or self._target is None:
            return self.target_lost
        if not (isinstance(exc, TargetUnavailable) or is_connection_failure(exc)):
            return ""
        self.target_lost = lost(self._target)
        return self.target_lost

    def run_info(self) -> RunInfo:
        """``run.json`` as far as the session knows it (session end adds how the run ended)."""
        info = RunInfo(
            run_id=self.config.run_id,
            started_at=self.started_at,
            environment=Environment(
                harness_version=__version__, git_commit=_git_commit(), python=platform.python_version()
            ),
            options=self.config.public(),
            option_sources=dict(self.config.sources or {}),
        )
        if self._target is not None:
            plane = self._target.control_plane  # the real control plane's start, milestone by milestone
            info.target = TargetInfo(
                kind=str(self._target.kind),
                name=self._target.name,
                server_version=self._target.server_version,
                extra={"start_s": dict(plane.timings.marks)} if plane is not None else {},
            )
            info.api_retries = self._target.retries.snapshot() or None  # none counted: the key is left out
        if self._capabilities is not None:  # through its own serialisation, read as any stored snapshot is
            info.capabilities = CapabilitiesInfo.from_json(self._capabilities.to_dict())
        if self._profile is not None:
            info.profile = ProfileInfo(name=self._profile.name, reason=self.profile_reason)
        return info

    def close(self) -> None:
        """Stop the target (an embedded one takes every pod process with it) and drop the alive marker."""
        try:
            if self._target is not None:
                self._target.stop()
                self._target = None
        finally:
            if self._alive is not None:
                self._alive.unlink(missing_ok=True)
                self._alive = None


def _git_commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
            cwd=Path(__file__).resolve().parent,
        )
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


# ----------------------------------------------------------------------------- options and configuration
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("k8s-ai-bench", "k8s-ai-bench harness")
    for option in OPTIONS:
        if option.is_flag:
            group.addoption(
                option.flag,
                action="store_const",
                const="true",
                default=None,
                dest=f"aibench_{option.name}",
                help=option.help,
            )
        else:
            group.addoption(option.flag, default=None, dest=f"aibench_{option.name}", help=option.help)
        parser.addini(option.ini, help=option.help, default="")
    parser.addini(
        "aibench_suite_run",
        help="start the target at session start and report it in the header",
        type="bool",
        default=False,
    )
    parser.addini(
        "aibench_cli_summary",
        help="k8s-ai-bench run prints why a run ended early itself (the plugin then does not repeat it)",
        type="bool",
        default=False,
    )


def pytest_configure(config: pytest.Config) -> None:
    for name, help_text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {help_text}")
    cli = {o.name: config.getoption(f"aibench_{o.name}") for o in OPTIONS}
    ini = {o.ini: config.getini(o.ini) for o in OPTIONS}
    try:
        harness_config = resolve(cli, os.environ, ini)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[CONFIG_KEY] = harness_config
    config.stash[SESSION_KEY] = HarnessSession(config=harness_config)


def _session(config: pytest.Config) -> HarnessSession:
    return config.stash[SESSION_KEY]


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    if not config.getini("aibench_suite_run"):
        return None
    session = _session(config)
    if session.failure:
        return None  # the one line saying why comes at the end (suite_run prints it)
    target, caps = session.target, session.capabilities
    emulated = sum(1 for n in caps.nodes if n.emulated)
    return [
        f"k8s-ai-bench {__version__}: run {session.config.run_id} -> {session.config.run_dir}",
        f"target: {target.kind} {target.name}, server {target.server_version}, {len(caps.nodes)} node(s)"
        + (f" ({emulated} emulated)" if emulated else ""),
        f"accelerators: {caps.accelerators}",
        f"profile: {session.profile.name} ({session.profile_reason})",
    ]


def _install_signal_handlers(state: HarnessSession) -> dict[int, Any]:
    """SIGINT and SIGTERM (a CI cancel) both become one KeyboardInterrupt: pytest then tears down the fixtures
    still set up (the test's namespace among them) while the target is alive, and the target stops last. A second
    signal during that clean-up is noted and ignored, so a double Ctrl-C cannot cut the clean-up short."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if state.interrupted_by:
            os.write(2, f"k8s-ai-bench: {name} again; still cleaning up (namespaces, then the target)\n".encode())
            return
        state.interrupted_by = name
        state.ended_by = Ended.INTERRUPTED
        raise KeyboardInterrupt(name)

    return {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Suite runs connect, discover and choose the profile up front, so a bad profile or an unreachable target
    ends the run at once (exit 2 or 3, one line) instead of erroring every test; collection and the test loop are
    then skipped and no run directory is made."""
    if not session.config.getini("aibench_suite_run"):
        return
    state = _session(session.config)
    session.config.stash[_SIGNALS_KEY] = _install_signal_handlers(state)
    ready = False
    try:
        state.connect()
        _ = state.capabilities
        _ = state.profile
        ready = True
    except TargetUnavailable:
        pass  # state.failure says it
    except ConfigError as exc:
        state.fail(f"configuration error: {exc}", EXIT_USAGE)
    finally:
        if not ready:
            state.close()


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> bool | None:
    """Nothing to collect when the run was refused at start."""
    return True if _session(session.config).failure else None


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    """The run really starts here: with at least one selected test, the run directory is made (a reused run id
    is refused now, before any namespace exists); with none, nothing is written."""
    state = _session(session.config)
    if state.failure:
        return True
    state.selected = len(session.items)
    if not session.config.getini("aibench_suite_run") or not session.items or session.config.option.collectonly:
        return None
    if refusal := _image_preflight(session, state):
        state.fail(refusal, EXIT_USAGE)
        return True
    try:
        _ = state.record
    except ConfigError as exc:
        state.fail(str(exc), EXIT_USAGE)
        return True
    except RecordWriteError as exc:
        state.fail(str(exc), EXIT_WRITE, Ended.RECORD_WRITE_FAILED)
        return True
    return None


def _image_preflight(session: pytest.Session, state: HarnessSession) -> str:
    """Before the first workload (and before the run directory exists): can the target pull every image the
    selected tests need? Its lines go to the terminal; a failed pull refuses the run (exit 2, one line per image)."""
    from harness.images.pullcheck import run_preflight

    report = run_preflight(state, session.items, requirements_of)
    if report.failed:
        return report.failure()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        for line in report.lines:
            reporter.write_line(line)
    return ""


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> Generator[None, None, None]:
    """Around every other sessionfinish: pytest's own tears down the fixtures still set up after a Ctrl-C (the
    test's namespace among them), which needs the target alive; the target stops after that, always. The exit
    status becomes the run's outcome code (:mod:`harness.reporting.outcome`), the same one run.json records."""
    state = _session(session.config)
    try:
        yield
    finally:
        if session.config.getini("aibench_suite_run") and not session.config.option.collectonly:
            session.exitstatus = state.final_code = _exit_code(state, int(session.exitstatus))
        elif state.failure:
            session.exitstatus = state.exit_code
        try:
            _finish(state, int(session.exitstatus))
        finally:
            for sig, handler in session.config.stash.get(_SIGNALS_KEY, {}).items():
                signal.signal(sig, handler)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    """Plain ``pytest`` suite runs say why the harness ended the run early (``k8s-ai-bench run`` says it itself)."""
    state = _session(config)
    if state.failure and config.getini("aibench_suite_run") and not config.getini("aibench_cli_summary"):
        terminalreporter.write_line(f"k8s-ai-bench: {state.failure}")


def _exit_code(state: HarnessSession, pytest_status: int) -> int:
    """The run's exit code from how it ended and what its tests did (pytest's own code only for its own errors)."""
    if state.failure and state.ended_by is Ended.COMPLETED:  # refused before any test ran
        return state.exit_code
    if pytest_status == pytest.ExitCode.USAGE_ERROR:
        return EXIT_USAGE
    if pytest_status == pytest.ExitCode.INTERNAL_ERROR:  # never PASS: the run broke, whatever its counts say
        state.fail("pytest internal error (its traceback is above); the run stopped there", EXIT_INTERNAL)
        state.ended_by = Ended.INTERNAL_ERROR
    if pytest_status == pytest.ExitCode.INTERRUPTED and state.ended_by is Ended.COMPLETED:
        state.ended_by = Ended.INTERRUPTED  # an interrupt that did not come through our handler
    return outcome(state.ended_by, state.counts)[1]


def _finish(state: HarnessSession, exitstatus: int) -> None:
    try:
        if state.has_record:
            info = state.run_info()
            info.finished_at = time.time()
            info.exit_status = int(exitstatus)
            info.ended_by = str(state.ended_by)
            info.selected = state.selected
            info.outcome = str(outcome(state.ended_by, state.counts)[0])
            interrupted = f"interrupted by {state.interrupted_by}" if state.interrupted_by else ""
            info.end_reason = state.failure or interrupted
            try:
                state.record.write_info(info)
                state.record.point_latest()
            except RecordWriteError as exc:  # said once, by whoever reports the run's end
                state.fail(f"run record: {exc}", EXIT_WRITE, Ended.RECORD_WRITE_FAILED)
                log.debug("%s", exc)
    finally:
        state.close()


# ----------------------------------------------------------------------------- requirements and markers
def requirements_of(item: pytest.Item) -> list[str]:
    """Capabilities a test needs: its ``requires(...)`` markers plus those implied by hardware markers."""
    requirements = [str(req) for mark in item.iter_markers("requires") for req in mark.args]
    requirements += [req for marker, req in _IMPLIED.items() if item.get_closest_marker(marker)]
    return list(dict.fromkeys(requirements))


def pytest_runtest_setup(item: pytest.Item) -> None:
    state = _session(item.config)
    state.current = item.nodeid
    if state._target is not None:  # each result says how many API retries its test needed
        item.stash[_RETRIES_AT_START] = state._target.retries.total
    requirements = requirements_of(item)
    if not requirements:
        return
    caps = _session(item.config).capabilities
    for requirement in requirements:
        try:
            reason = caps.missing(requirement)
        except ValueError as exc:
            raise pytest.UsageError(f"{item.nodeid}: {exc}") from None
        if reason:
            pytest.skip(f"requires {requirement}: {reason}")


def _is_connection_failure(exc: BaseException) -> bool:
    from harness.cluster.target import is_connection_failure  # the kubernetes client: only once a target exists

    return is_connection_failure(exc)


def _failure_kind(excinfo: pytest.ExceptionInfo[BaseException] | None, record: TestRecord | None) -> str:
    if excinfo is None:
        return ""
    exc = excinfo.value
    if isinstance(exc, WaitTimeout):
        return FailureKind.TIMEOUT
    if isinstance(exc, WorkloadFailed):
        return FailureKind.WORKLOAD
    if isinstance(exc, ParseError):
        return FailureKind.PARSE
    if isinstance(exc, TargetUnavailable) or _is_connection_failure(exc):
        return FailureKind.TARGET
    if isinstance(exc, HarnessError):
        return FailureKind.HARNESS
    if isinstance(exc, AssertionError):
        if record is not None and record.checks:
            failing = [c for c in record.checks if getattr(c, "counts_as_failure", False)]
            if failing and all(getattr(getattr(c, "kind", None), "is_verdict", False) for c in failing):
                return FailureKind.CONFORMANCE  # a verdict rule (corruption, isolation, placement) is conformance
            statuses = {getattr(c, "status", "") for c in record.checks}
            return FailureKind.NO_DATA if statuses == {"no-data"} else FailureKind.THRESHOLD
        return FailureKind.CONFORMANCE
    return FailureKind.HARNESS


def _failure_message(exc: BaseException) -> str:
    """The report's one-line reason; a Forbidden ``ApiException`` that reached the test (an API call with no
    handling of its own) becomes the missing grant and the rule to add, instead of headers and a JSON body."""
    from harness.cluster.forbidden import explain_forbidden
    from harness.cluster.retry import explain_api_error
    from harness.cluster.target import describe_connection_failure

    if _is_connection_failure(exc):  # not a urllib3 repr with the pool, the URL and the nested cause
        return f"API server did not answer: {describe_connection_failure(exc)}"
    return explain_forbidden(exc) or explain_api_error(exc) or str(exc).strip()


def _on_failure(item: pytest.Item, state: HarnessSession, exc: BaseException) -> None:
    """A test failed with ``exc``: when the target is gone, end the run now (exit 3) instead of erroring the rest."""
    gone = state.check_lost(exc)
    if gone:
        state.fail(
            f"target lost during {item.nodeid}: API server no longer answers ({gone}); the run stopped there",
            EXIT_UNREACHABLE,
            Ended.TARGET_LOST,
        )
        item.session.shouldstop = state.failure


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    record = item.stash.get(RECORD_KEY, None)
    if record is not None:
        for measurement in record.measurements:
            report.user_properties.append(
                (f"{measurement.metric}{dict(measurement.labels)}", f"{measurement.value:g} {measurement.unit}")
            )
    state = _session(item.config)
    if record is None and not state.started:
        return  # not a harness test (the plugin stays inert)
    is_final = report.when == "call" or (report.when == "setup" and not report.passed)
    if report.when == "teardown" and report.failed:
        is_final = True
    if not is_final:
        return
    if report.failed and call.excinfo is not None:
        _on_failure(item, state, call.excinfo.value)
        if _is_connection_failure(call.excinfo.value):  # one line, not a urllib3 traceback
            report.longrepr = _failure_message(call.excinfo.value)
    if report.skipped:
        status = Status.SKIPPED
    elif report.passed:
        status = Status.PASSED
    elif report.when == "call" and call.excinfo is not None and isinstance(call.excinfo.value, AssertionError):
        status = Status.FAILED
    else:
        status = Status.ERROR
    message = ""
    if report.skipped and isinstance(report.longrepr, tuple):
        message = str(report.longrepr[2])
    elif report.failed and call.excinfo is not None:
        message = _failure_message(call.excinfo.value)
    retries = state._target.retries.total if state._target is not None else 0
    result = result_of(
        item,
        record,
        status=status,
        failure_kind=_failure_kind(call.excinfo, record) if report.failed else "",
        message=message,
        duration_s=report.duration,
        api_retries=retries - item.stash.get(_RETRIES_AT_START, retries),
    )
    state.counts[str(status)] = state.counts.get(str(status), 0) + 1
    state.ran.add(item.nodeid)
    try:
        state.record.add_result(result)
    except (RecordWriteError, ConfigError) as exc:
        code = EXIT_WRITE if isinstance(exc, RecordWriteError) else EXIT_USAGE
        state.fail(f"run record: {exc}; the run stopped there", code, Ended.RECORD_WRITE_FAILED)
        item.session.shouldstop = state.failure


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def harness_config(pytestconfig: pytest.Config) -> HarnessConfig:
    """The resolved options of this run."""
    return pytestconfig.stash[CONFIG_KEY]


@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config) -> Target:
    """The connected target (the embedded one is started on first use and stopped at session end)."""
    return _session(pytestconfig).target


@pytest.fixture(scope="session")
def capabilities(pytestconfig: pytest.Config) -> Capabilities:
    """What the target offers, discovered once."""
    return _session(pytestconfig).capabilities


@pytest.fixture(scope="session")
def profile(pytestconfig: pytest.Config) -> Profile:
    """The threshold profile: named with --profile, else matched from capabilities."""
    return _session(pytestconfig).profile


@pytest.fixture
def record(request: pytest.FixtureRequest) -> TestRecord:
    """Where a test puts its workload, params, measurements and checks; written when the test ends."""
    rec = TestRecord()
    request.node.stash[RECORD_KEY] = rec
    return rec


@pytest.fixture
def namespace(request: pytest.FixtureRequest, target: Target, harness_config: HarnessConfig) -> Iterator[str]:
    """A namespace of this test only, labelled with run and test, deleted afterwards (unless --keep-namespaces)."""
    from harness.cluster.namespaces import scoped_namespace

    with scoped_namespace(
        target.api_client,
        run_id=harness_config.run_id,
        test=request.node.nodeid,
        keep=harness_config.keep_namespaces,
        delete_timeout_s=harness_config.timeout(120),
        unreachable=_session(request.config).unreachable,
    ) as name:
        yield name


@dataclass(frozen=True, slots=True, kw_only=True)
class _TestScope:
    """The fixtures of one test that preparing a workload needs (the runner fixtures request them once)."""

    request: pytest.FixtureRequest
    target: Target
    capabilities: Capabilities
    namespace: str
    harness_config: HarnessConfig
    record: TestRecord


def _prepare(name: str, params: Mapping[str, object], scope: _TestScope) -> tuple[WorkloadSpec, Rendered, RunContext]:
    """Load and render a workload for this test, and say where it runs (the one :class:`RunContext` every runner
    takes); skip when the target lacks what the workload requires."""
    from harness.catalog.render import render
    from harness.catalog.spec import load_workload
    from harness.cluster.namespaces import label_value, run_labels
    from harness.runners.skeleton import RunContext, scripts_configmap_name

    request, capabilities, namespace = scope.request, scope.capabilities, scope.namespace
    harness_config, record = scope.harness_config, scope.record
    spec = load_workload(name)
    for requirement in spec.requires:
        if reason := capabilities.missing(requirement):
            pytest.skip(f"workload {name} requires {requirement}: {reason}")
    context = {
        "namespace": namespace,
        "run_id": harness_config.run_id,
        "scripts_configmap": scripts_configmap_name(spec.name),
        "workload": spec.name,
    }
    rendered = render(spec, params, context=context, image_registry=harness_config.image_registry)
    mixed = any(n.emulated for n in capabilities.nodes) and any(not n.emulated for n in capabilities.nodes)
    if mixed and not spec.placement_only:
        from harness.cluster.placement import keep_off_emulated_nodes

        real = dataclasses.replace(capabilities, nodes=tuple(n for n in capabilities.nodes if not n.emulated))
        for requirement in spec.requires:  # kept off emulated nodes, the workload must still fit a real one
            if reason := real.missing(requirement):
                pytest.skip(f"workload {name} requires {requirement} on a real node (emulated nodes only measure "
                            f"placement): {reason}")  # fmt: skip
        keep_off_emulated_nodes(list(rendered.documents))  # measurements need real nodes
    artifacts = harness_config.run_dir / "artifacts" / label_value(request.node.nodeid)
    record.add(workload=name, params=rendered.params)
    record.artifacts = str(artifacts)
    run = RunContext(
        cluster=scope.target,
        namespace=namespace,
        labels=run_labels(harness_config.run_id, request.node.nodeid, workload=spec.name),
        timeout_s=harness_config.timeout(spec.timeout_s),
        artifacts_dir=artifacts,
    )
    return spec, rendered, run


def _runner_fixture(name: str, runner_path: str, doc: str) -> object:
    """A fixture ``name(workload, **params)`` that prepares the workload and hands it to the runner at
    ``runner_path`` (``module:function``, imported on first use: the runners pull in what only some tests need).
    The fixture object is only for pytest to find; suites annotate the value with its Protocol
    (:class:`~harness.fixture_types.RunWorkload`, :class:`~harness.fixture_types.DeployService`)."""
    module_name, _, attr = runner_path.partition(":")

    def fixture(
        request: pytest.FixtureRequest,
        target: Target,
        capabilities: Capabilities,
        namespace: str,
        harness_config: HarnessConfig,
        record: TestRecord,
    ) -> Callable[..., object]:
        runner: Runner[object] = getattr(importlib.import_module(module_name), attr)
        scope = _TestScope(
            request=request,
            target=target,
            capabilities=capabilities,
            namespace=namespace,
            harness_config=harness_config,
            record=record,
        )

        def call(name: str, /, **params: object) -> object:
            return runner(*_prepare(name, params, scope))

        return call

    fixture.__doc__ = doc
    fixture.__name__ = name
    return pytest.fixture(name=name)(fixture)


def _run_to_completion_fixture(name: str, doc: str) -> object:
    """A run-to-completion fixture: they all go to the registry, where the workload's own kind picks the runner
    (the fixture's name only says, in the suite, what the test expects to run)."""
    return _runner_fixture(name, "harness.runners.registry:run_workload", doc)


run_workload = _run_to_completion_fixture(
    "run_workload",
    "``run_workload(name, **params)``: render, run to completion in this test's namespace, return the result.",
)
run_mpijob = _run_to_completion_fixture(
    "run_mpijob",
    "``run_mpijob(name, **params)``: an MPIJob workload (MPI Operator) run to success in this test's namespace.",
)
run_jobset = _run_to_completion_fixture(
    "run_jobset",
    "``run_jobset(name, **params)``: a JobSet workload (jobset.x-k8s.io) run to completion in the test namespace.",
)
run_rayjob = _run_to_completion_fixture(
    "run_rayjob",
    "``run_rayjob(name, **params)``: a KubeRay RayJob workload run to completion (driver logs on failure).",
)
deploy_service = _runner_fixture(
    "deploy_service",
    "harness.runners.registry:deploy_service",  # refuses a workload that is not kind: service
    "``with deploy_service(name, **params) as handle:`` -- a ready service workload in this test's namespace.",
)
