"""The one way a workload runs: apply, wait, gather evidence, save artifacts, fail with reasons, return the result.

Every runner (Job, custom resource, RayJob, Service) used to repeat these steps; here they are written once, and a
runner supplies only what differs, as a :class:`Watch`: which applied objects it follows, what "done" and
"impossible" mean for them (its probed state describes itself in a timeout message), and which extra words explain
a failure (a launcher's or driver's last lines). Run-to-completion runners call :func:`run_to_completion`; the
Service runner, which hands a live workload to the test instead of finishing, uses the same pieces
(:func:`apply_workload`, :func:`await_watch`, :func:`collect`) around its ``yield``. Every runner takes the same
three arguments: the workload spec, its rendered documents and a :class:`RunContext` (where and under what terms it
runs), built once by the pytest plugin's runner fixtures or by a test.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import yaml
from kubernetes import client

from harness.catalog.render import Rendered
from harness.catalog.spec import WorkloadSpec
from harness.cluster.collect import Evidence, container_logs, gather, write_artifacts
from harness.cluster.manifests import AppliedRef
from harness.cluster.target import ClusterHandle
from harness.cluster.wait import FailedWait, wait_for
from harness.errors import WaitTimeout, WorkloadFailed

log = logging.getLogger(__name__)


class Described(Protocol):
    """A watch's state: it says in words where the workload stands, for a timeout message."""

    def describe(self) -> str: ...


S = TypeVar("S", bound=Described)
S_co = TypeVar("S_co", covariant=True)


def scripts_configmap_name(workload: str) -> str:
    """The ConfigMap that carries a workload's scripts (``${scripts_configmap}`` in its manifests)."""
    return f"{workload}-scripts"[:63]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunContext:
    """Where and under what terms one workload runs, the same for every runner: the cluster (its API client and the
    run's applier, whose discovery cache every workload reuses), the test's namespace, the run labels every object
    and pod carries, the time it may take, and where its artifacts go (None: nowhere)."""

    cluster: ClusterHandle
    namespace: str
    labels: Mapping[str, str]
    timeout_s: float
    artifacts_dir: Path | None = None

    @property
    def api_client(self) -> client.ApiClient:
        return self.cluster.api_client

    @property
    def selector(self) -> str:
        """The label selector of every object (and pod) of this run."""
        return ",".join(f"{k}={v}" for k, v in self.labels.items())


def apply_workload(spec: WorkloadSpec, rendered: Rendered, context: RunContext) -> list[AppliedRef]:
    """Apply the rendered manifests, preceded by the ConfigMap carrying the workload's scripts; the exact
    documents applied are saved as ``manifests.yaml`` among the test's artifacts."""
    documents: list[dict[str, Any]] = list(rendered.documents)
    if rendered.scripts:
        documents.insert(
            0,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": scripts_configmap_name(spec.name)},
                "data": dict(rendered.scripts),
            },
        )
    if context.artifacts_dir is not None:
        context.artifacts_dir.mkdir(parents=True, exist_ok=True)
        (context.artifacts_dir / "manifests.yaml").write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return context.cluster.applier.apply(documents, namespace=context.namespace, labels=context.labels)


@dataclass(slots=True, kw_only=True)
class RunResult:
    """What one run produced."""

    workload: str
    namespace: str
    params: Mapping[str, str]
    logs: dict[str, str]  # "pod/container" -> full log
    evidence: Evidence
    duration_s: float
    emulated: bool
    refs: list[AppliedRef] = field(default_factory=list)

    def node_of(self, container: str = "") -> str:
        """The node(s) the run's pods (those with ``container``) ran on, comma-joined."""
        pods = {key.split("/", 1)[0] for key in self.logs if not container or key.endswith("/" + container)}
        return ",".join(sorted({p.node for p in self.evidence.pods if p.name in pods and p.node}))

    def log_of(self, container: str = "") -> str:
        """All logs of ``container`` (every pod), or of every container, joined in pod order."""
        keys = sorted(k for k in self.logs if not container or k.endswith("/" + container))
        return "".join(self.logs[k] for k in keys)


@dataclass(frozen=True, slots=True, kw_only=True)
class Launch:
    """What a :class:`Watch` is built from: the run's identity, its context and what was applied."""

    spec: WorkloadSpec
    context: RunContext
    refs: list[AppliedRef]
    started: float  # time.monotonic() before apply

    @property
    def api_client(self) -> client.ApiClient:
        return self.context.api_client

    @property
    def namespace(self) -> str:
        return self.context.namespace

    @property
    def timeout_s(self) -> float:
        return self.context.timeout_s

    @property
    def selector(self) -> str:
        """The label selector of every object (and pod) of this run."""
        return self.context.selector

    def names(self, kind: str) -> list[str]:
        """The applied objects of ``kind``, in apply order."""
        return [r.name for r in self.refs if r.kind == kind]


def launch(spec: WorkloadSpec, rendered: Rendered, context: RunContext) -> Launch:
    """Apply the workload (:func:`apply_workload`) and return what was launched, timed from before the apply."""
    started = time.monotonic()
    refs = apply_workload(spec, rendered, context)
    return Launch(spec=spec, context=context, refs=refs, started=started)


class Watch(Protocol[S]):
    """How one runner follows what it applied (its state type ``S`` is whatever its probe reads, and describes
    itself for a timeout message)."""

    @property
    def awaited(self) -> str:
        """What is awaited, for the timeout message ("workload x to complete")."""
        ...

    @property
    def evidence_selector(self) -> str:
        """The label selector for gathering evidence ("" for the whole namespace)."""
        ...

    def probe(self) -> S: ...

    def done(self, state: S) -> bool: ...

    def impossible(self, state: S) -> str | None:
        """Why it can never get done (a failed condition, an unschedulable pod), or None to keep waiting."""
        ...

    def explain(self, evidence: Evidence, logs: Callable[[], dict[str, str]]) -> str:
        """Extra words for a failure message ("" for none); ``logs()`` reads every pod's full log."""
        ...


class Runner(Protocol[S_co]):
    """What a run-to-completion runner supplies to :func:`run_to_completion`."""

    @property
    def noun(self) -> str:
        """The noun for log lines ("workload", "MPIJob workload")."""
        ...

    def prepare(self, rendered: Rendered, labels: Mapping[str, str]) -> Rendered:
        """The documents to apply (with run labels pushed into pod templates an operator copies)."""
        ...

    def watch(self, launch: Launch) -> Watch[Any]:
        """The watch over what was applied; raise WorkloadFailed when the manifests lack what this runner runs."""
        ...


@dataclass(frozen=True, slots=True)
class WatchRunner:
    """A runner that applies the rendered documents as they are and follows them with its ``watch`` (Jobs and
    bare Pods, RayJobs); custom resources whose pod templates need the run labels are ConditionResources."""

    noun: str
    watch: Callable[[Launch], Watch[Any]]

    def prepare(self, rendered: Rendered, labels: Mapping[str, str]) -> Rendered:
        return rendered


@dataclass(frozen=True, slots=True)
class Awaited(Generic[S]):
    """How a wait ended: ``failure`` is the message when it could not get done (None when it did)."""

    failure: str | None
    last: S | None = None


def _describe(state: Described) -> str:
    return state.describe()


def await_watch(watch: Watch[S], timeout_s: float) -> Awaited[S]:
    """Wait until ``watch`` is done; a timeout or an impossibility is returned as the failure, not raised, so
    the caller gathers evidence before it raises."""
    try:
        last = wait_for(
            watch.probe,
            timeout_s=timeout_s,
            describe=watch.awaited,
            done=watch.done,
            fail_if=watch.impossible,
            state=_describe,
        )
    except (FailedWait, WaitTimeout) as exc:
        return Awaited(failure=str(exc))
    return Awaited(failure=None, last=last)


def collect(context: RunContext, selector: str) -> Evidence:
    """The run's evidence (pods, events, log tails), saved among the test's artifacts when it has a directory."""
    evidence = gather(context.api_client, context.namespace, label_selector=selector)
    if context.artifacts_dir is not None:
        write_artifacts(context.api_client, context.namespace, context.artifacts_dir, evidence)
    return evidence


def run_to_completion(runner: Runner[Any], spec: WorkloadSpec, rendered: Rendered, context: RunContext) -> RunResult:
    """Apply, wait until done, gather evidence and artifacts, read every pod's log; raise :class:`WorkloadFailed`
    with the wait's reason, the evidence and the runner's own explanation when it cannot get done."""
    launched = launch(spec, runner.prepare(rendered, context.labels), context)
    watch = runner.watch(launched)
    outcome = await_watch(watch, context.timeout_s)
    evidence = collect(context, watch.evidence_selector)
    core = client.CoreV1Api(context.api_client)
    namespace = context.namespace
    pod_names = [p.name for p in evidence.pods]
    logs_read: dict[str, str] | None = None

    def logs() -> dict[str, str]:
        nonlocal logs_read
        if logs_read is None:
            logs_read = container_logs(core, namespace, pod_names)
        return logs_read

    if outcome.failure is not None:
        extra = watch.explain(evidence, logs)
        raise WorkloadFailed(f"{outcome.failure}. {evidence.explain()}" + (f"; {extra}" if extra else ""))
    duration = time.monotonic() - launched.started
    log.info("%s %s completed in %.2fs", runner.noun, spec.name, duration)
    return RunResult(
        workload=spec.name,
        namespace=namespace,
        params=rendered.params,
        logs=logs(),
        evidence=evidence,
        duration_s=duration,
        emulated=any(p.emulated for p in evidence.pods),
        refs=launched.refs,
    )


__all__ = [
    "Awaited",
    "Described",
    "Launch",
    "RunContext",
    "RunResult",
    "Runner",
    "Watch",
    "WatchRunner",
    "apply_workload",
    "await_watch",
    "collect",
    "launch",
    "run_to_completion",
    "scripts_configmap_name",
]
