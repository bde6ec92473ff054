"""The catalog's ``kind`` picks the runner: one table from a workload's kind to the runner that runs it.

``workload.yaml`` says what its top object is (``kind: job | mpijob | jobset | rayjob | service``); the test
fixtures (``run_workload``, ``run_mpijob``, ``run_jobset``, ``run_rayjob``, ``deploy_service``) all come here, so a
workload runs the way its own file says, whichever fixture a suite named. Run-to-completion kinds share
:func:`~harness.runners.skeleton.run_to_completion` and differ only in their :class:`~harness.runners.skeleton.Runner`;
a service is handed to the test live, so it has its own entry (:func:`deploy_service`). Asking for the wrong
shape (a service to run to completion, a Job to deploy) is a :class:`~harness.errors.ConfigError` naming the
workload file and its kind.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from harness.catalog.render import Rendered
from harness.catalog.spec import KINDS, WorkloadSpec
from harness.errors import ConfigError
from harness.runners.job import JOB
from harness.runners.jobset import JOBSET
from harness.runners.mpijob import MPIJOB
from harness.runners.ray import RAYJOB
from harness.runners.service import ServiceHandle, run_service
from harness.runners.skeleton import RunContext, Runner, RunResult, run_to_completion

SERVICE_KIND = "service"

#: Every run-to-completion kind of ``workload.yaml`` and its runner.
RUN_TO_COMPLETION: Mapping[str, Runner[Any]] = {"job": JOB, "mpijob": MPIJOB, "jobset": JOBSET, "rayjob": RAYJOB}

if set(KINDS) != {*RUN_TO_COMPLETION, SERVICE_KIND}:  # the catalog's list and this table are one vocabulary
    raise ImportError(f"catalog kinds {sorted(KINDS)} and runner kinds {sorted(RUN_TO_COMPLETION)} + service differ")


def _where(spec: WorkloadSpec) -> str:
    return f"{spec.directory / 'workload.yaml'}: kind {spec.kind}"


def runner_for(spec: WorkloadSpec) -> Runner[Any]:
    """The runner of a run-to-completion workload; a service kind is refused (it is deployed, not run)."""
    runner = RUN_TO_COMPLETION.get(spec.kind)
    if runner is None:
        raise ConfigError(
            f"{_where(spec)} is deployed and used live, not run to completion (use deploy_service)"
            if spec.kind == SERVICE_KIND
            else f"{_where(spec)} has no runner (known: {', '.join(KINDS)})"
        )
    return runner


def run_workload(spec: WorkloadSpec, rendered: Rendered, context: RunContext) -> RunResult:
    """Run ``spec`` to completion with the runner its ``kind`` names."""
    return run_to_completion(runner_for(spec), spec, rendered, context)


@contextmanager
def deploy_service(spec: WorkloadSpec, rendered: Rendered, context: RunContext) -> Iterator[ServiceHandle]:
    """Deploy a ``kind: service`` workload and hand it to the test live; other kinds are refused."""
    if spec.kind != SERVICE_KIND:
        raise ConfigError(f"{_where(spec)} runs to completion, it is not a service (use run_workload)")
    with run_service(spec, rendered, context) as handle:
        yield handle


__all__ = ["RUN_TO_COMPLETION", "SERVICE_KIND", "deploy_service", "run_workload", "runner_for"]
