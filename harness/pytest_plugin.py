"""The pytest plugin: options, markers, the session's target and run record, and the fixtures suites use.

Registered through the ``pytest11`` entry point, so it is present in every pytest of the environment; it stays
inert (no target is started, nothing is written) until a test asks for a harness fixture, or the run is a suite
run (``-o aibench_suite_run=true``, which ``k8s-ai-bench run`` passes) and the header reports the target.

A suite test reads: arrange (workload + params), act (``run_workload``), parse, evaluate, record, assert.
"""

from __future__ import annotations

import importlib
import logging
import os
import platform
import signal
import subprocess
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from harness import __version__
from harness.config import OPTIONS, HarnessConfig, resolve
from harness.errors import ConfigError, HarnessError, ParseError, TargetUnavailable, WaitTimeout, WorkloadFailed
from harness.reporting.record import FailureKind, RunRecord, Status, TestRecord

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
AREAS = ("compute", "network", "storage", "serving", "observability", "practices", "control_plane")
_IMPLIED = {"gpu": "gpu", "tpu": "tpu", "rdma": "rdma", "istio": "istio"}

CONFIG_KEY = pytest.StashKey[HarnessConfig]()
SESSION_KEY = pytest.StashKey["HarnessSession"]()
RECORD_KEY = pytest.StashKey[TestRecord]()


@dataclass(slots=True)
class HarnessSession:
    """Lazily started session state: the target, its capabilities, the profile and the run record."""

    config: HarnessConfig
    _target: Any = None
    _capabilities: Any = None
    _profile: Any = None
    profile_reason: str = ""
    _record: RunRecord | None = None
    started_at: float = field(default_factory=time.time)
    failure: str = ""
    _alive: Path | None = None

    @property
    def record(self) -> RunRecord:
        if self._record is None:
            self._record = RunRecord(self.config.run_dir)
        return self._record

    @property
    def target(self) -> Any:
        if self.failure:
            pytest.exit(self.failure, returncode=3)
        if self._target is None:
            from harness.cluster.sweep import mark_alive
            from harness.cluster.target import connect

            self._alive = mark_alive(self.config.run_dir)
            try:
                self._target = connect(self.config)
            except TargetUnavailable as exc:
                self.failure = f"target unavailable: {exc}"
                pytest.exit(self.failure, returncode=3)
            except ConfigError as exc:
                self.failure = f"configuration error: {exc}"
                pytest.exit(self.failure, returncode=2)
        return self._target

    @property
    def capabilities(self) -> Any:
        if self._capabilities is None:
            from harness.cluster.capabilities import discover

            target = self.target
            self._capabilities = discover(
                target.api_client, server_version=target.server_version, embedded=target.embedded is not None
            )
        return self._capabilities

    @property
    def profile(self) -> Any:
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

    def run_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "run_id": self.config.run_id,
            "started_at": self.started_at,
            "harness_version": __version__,
            "git_commit": _git_commit(),
            "python": platform.python_version(),
            "options": self.config.public(),
            "option_sources": dict(self.config.sources or {}),
        }
        if self._target is not None:
            info["target"] = {
                "kind": str(self._target.kind),
                "name": self._target.name,
                "server_version": self._target.server_version,
            }
            if self._target.control_plane is not None:  # the real control plane's start, milestone by milestone
                info["target"]["start_s"] = dict(self._target.control_plane.timings.marks)
        if self._capabilities is not None:
            info["capabilities"] = self._capabilities.to_dict()
        if self._profile is not None:
            info["profile"] = {"name": self._profile.name, "reason": self.profile_reason}
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
    target, caps = session.target, session.capabilities
    emulated = sum(1 for n in caps.nodes if n.emulated)
    return [
        f"k8s-ai-bench {__version__}: run {session.config.run_id} -> {session.config.run_dir}",
        f"target: {target.kind} {target.name}, server {target.server_version}, {len(caps.nodes)} node(s)"
        + (f" ({emulated} emulated)" if emulated else ""),
        f"accelerators: {caps.accelerators}",
        f"profile: {session.profile.name} ({session.profile_reason})",
    ]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Suite runs connect, discover and choose the profile up front, so a bad profile or an unreachable target
    ends the run at once (exit 2 or 3) instead of erroring every test. Teardown must also run on SIGTERM (CI
    cancellations): it becomes KeyboardInterrupt like Ctrl-C."""
    if not session.config.getini("aibench_suite_run"):
        return

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    state = _session(session.config)
    ready = False
    try:
        _ = state.target, state.capabilities
        try:
            _ = state.profile
        except ConfigError as exc:
            state.failure = f"configuration error: {exc}"
            pytest.exit(state.failure, returncode=2)
        ready = True
    finally:
        if not ready:  # pytest skips sessionfinish when sessionstart exits: stop what was started here
            state.close()


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> Generator[None, None, None]:
    """Around every other sessionfinish: pytest's own tears down the fixtures still set up after a Ctrl-C (the
    test's namespace among them), which needs the target alive; the target stops after that, always."""
    state = _session(session.config)
    try:
        yield
    finally:
        _finish(state, exitstatus)


def _finish(state: Any, exitstatus: int) -> None:
    try:
        if state.started or state._record is not None:
            info = state.run_info()
            info["finished_at"] = time.time()
            info["exit_status"] = int(exitstatus)
            state.record.write_info(info)
            state.record.point_latest()
    finally:
        state.close()


# ----------------------------------------------------------------------------- requirements and markers
def requirements_of(item: pytest.Item) -> list[str]:
    """Capabilities a test needs: its ``requires(...)`` markers plus those implied by hardware markers."""
    requirements = [str(req) for mark in item.iter_markers("requires") for req in mark.args]
    requirements += [req for marker, req in _IMPLIED.items() if item.get_closest_marker(marker)]
    return list(dict.fromkeys(requirements))


def pytest_runtest_setup(item: pytest.Item) -> None:
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


def _area(item: pytest.Item) -> str:
    return next((a for a in AREAS if item.get_closest_marker(a)), "")


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
    if isinstance(exc, TargetUnavailable):
        return FailureKind.TARGET
    if isinstance(exc, HarnessError):
        return FailureKind.HARNESS
    if isinstance(exc, AssertionError):
        if record is not None and record.checks:
            statuses = {getattr(c, "status", "") for c in record.checks}
            return FailureKind.NO_DATA if statuses == {"no-data"} else FailureKind.THRESHOLD
        return FailureKind.CONFORMANCE
    return FailureKind.HARNESS


def _failure_message(exc: BaseException) -> str:
    """The report's one-line reason; a Forbidden ``ApiException`` that reached the test (an API call with no
    handling of its own) becomes the missing grant and the rule to add, instead of headers and a JSON body."""
    from harness.cluster.forbidden import explain_forbidden

    return explain_forbidden(exc) or str(exc).strip()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
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
    result = {
        "id": item.nodeid,
        "name": item.name,
        "doc": (getattr(item, "obj", None).__doc__ or "").strip() if getattr(item, "obj", None) else "",
        "area": _area(item),
        "markers": sorted({m.name for m in item.iter_markers()}),
        "requirements": list(
            dict.fromkeys(str(a) for m in item.iter_markers("conformance_requirement") for a in m.args)
        ),
        "status": str(status),
        "failure_kind": str(_failure_kind(call.excinfo, record)) if report.failed else "",
        "message": message,
        "duration_s": round(report.duration, 4),
        "workload": record.workload if record else "",
        "params": dict(record.params) if record else {},
        "measurements": [m.to_dict() for m in record.measurements] if record else [],
        "checks": [c.to_dict() for c in record.checks] if record else [],
        "emulated": bool(record and record.emulated),
        "artifacts": record.artifacts if record else "",
    }
    state.record.add_result(result)


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def harness_config(pytestconfig: pytest.Config) -> HarnessConfig:
    """The resolved options of this run."""
    return pytestconfig.stash[CONFIG_KEY]


@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config) -> Any:
    """The connected target (the embedded one is started on first use and stopped at session end)."""
    return _session(pytestconfig).target


@pytest.fixture(scope="session")
def capabilities(pytestconfig: pytest.Config) -> Any:
    """What the target offers, discovered once."""
    return _session(pytestconfig).capabilities


@pytest.fixture(scope="session")
def profile(pytestconfig: pytest.Config) -> Any:
    """The threshold profile: named with --profile, else matched from capabilities."""
    return _session(pytestconfig).profile


@pytest.fixture
def record(request: pytest.FixtureRequest) -> TestRecord:
    """Where a test puts its workload, params, measurements and checks; written when the test ends."""
    rec = TestRecord()
    request.node.stash[RECORD_KEY] = rec
    return rec


@pytest.fixture
def namespace(request: pytest.FixtureRequest, target: Any, harness_config: HarnessConfig) -> Iterator[str]:
    """A namespace of this test only, labelled with run and test, deleted afterwards (unless --keep-namespaces)."""
    from harness.cluster.namespaces import scoped_namespace

    with scoped_namespace(
        target.api_client,
        run_id=harness_config.run_id,
        test=request.node.nodeid,
        keep=harness_config.keep_namespaces,
        delete_timeout_s=harness_config.timeout(120),
    ) as name:
        yield name


def _prepare(
    name: str,
    params: dict[str, Any],
    *,
    request: pytest.FixtureRequest,
    capabilities: Any,
    namespace: str,
    harness_config: HarnessConfig,
    record: TestRecord,
) -> tuple[Any, Any, dict[str, str], Path]:
    """Load and render a workload for this test; skip when the target lacks what the workload requires."""
    from harness.catalog.render import render
    from harness.catalog.spec import load_workload
    from harness.cluster.namespaces import label_value, run_labels
    from harness.runners.job import scripts_configmap_name

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

        keep_off_emulated_nodes(list(rendered.documents))  # measurements need real nodes
    artifacts = harness_config.run_dir / "artifacts" / label_value(request.node.nodeid)
    record.add(workload=name, params=rendered.params)
    record.artifacts = str(artifacts)
    return spec, rendered, run_labels(harness_config.run_id, request.node.nodeid, workload=spec.name), artifacts


def _workload_caller(
    runner: Callable[..., Any],
    request: pytest.FixtureRequest,
    target: Any,
    capabilities: Any,
    namespace: str,
    harness_config: HarnessConfig,
    record: TestRecord,
) -> Callable[..., Any]:
    """``call(name, **params)``: prepare the workload for this test, then hand it to ``runner`` (job or service)."""

    def call(name: str, **params: Any) -> Any:
        spec, rendered, labels, artifacts = _prepare(
            name,
            params,
            request=request,
            capabilities=capabilities,
            namespace=namespace,
            harness_config=harness_config,
            record=record,
        )
        return runner(
            target.api_client,
            spec,
            rendered,
            namespace=namespace,
            labels=labels,
            timeout_s=harness_config.timeout(spec.timeout_s),
            artifacts_dir=artifacts,
            applier=target.applier,
        )

    return call


def _runner_fixture(name: str, runner_path: str, doc: str) -> Any:
    """A fixture ``name(workload, **params)`` that prepares the workload and hands it to the runner at
    ``runner_path`` (``module:function``, imported on first use: the runners pull in what only some tests need)."""
    module_name, _, attr = runner_path.partition(":")

    def fixture(
        request: pytest.FixtureRequest,
        target: Any,
        capabilities: Any,
        namespace: str,
        harness_config: HarnessConfig,
        record: TestRecord,
    ) -> Callable[..., Any]:
        runner = getattr(importlib.import_module(module_name), attr)
        return _workload_caller(runner, request, target, capabilities, namespace, harness_config, record)

    fixture.__doc__ = doc
    fixture.__name__ = name
    return pytest.fixture(name=name)(fixture)


run_workload = _runner_fixture(
    "run_workload",
    "harness.runners.job:run_job",
    "``run_workload(name, **params)``: render, run to completion in this test's namespace, return the result.",
)
run_mpijob = _runner_fixture(
    "run_mpijob",
    "harness.runners.mpijob:run_mpijob",
    "``run_mpijob(name, **params)``: an MPIJob workload (MPI Operator) run to success in this test's namespace.",
)
run_jobset = _runner_fixture(
    "run_jobset",
    "harness.runners.jobset:run_jobset",
    "``run_jobset(name, **params)``: a JobSet workload (jobset.x-k8s.io) run to completion in the test namespace.",
)
run_rayjob = _runner_fixture(
    "run_rayjob",
    "harness.runners.ray:run_rayjob",
    "``run_rayjob(name, **params)``: a KubeRay RayJob workload run to completion (driver logs on failure).",
)
deploy_service = _runner_fixture(
    "deploy_service",
    "harness.runners.service:run_service",
    "``with deploy_service(name, **params) as handle:`` -- a ready service workload in this test's namespace.",
)
