"""The types of the fixtures the pytest plugin hands to suites, named in one place.

A suite annotates ``target: Target``, ``capabilities: Capabilities``, ``profile: Profile``,
``run_workload: RunWorkload``, ``deploy_service: DeployService``... from this module instead of ``Any``, so a type
checker follows a test from its fixtures to its records. The classes are the real ones (re-exported here, so the
modules that define them can move without touching every suite); the runner fixtures are built by a factory from
import paths (:func:`harness.pytest_plugin._runner_fixture`), so their call shape is a :class:`Protocol`.

Importing this module imports the kubernetes client (through the target and capabilities modules): the plugin
itself imports it only for type checking, so a plain ``pytest`` of another project never pays for it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol, TypeVar

from harness.catalog.render import Rendered
from harness.catalog.spec import WorkloadSpec
from harness.cluster.capabilities import Capabilities, NodeInfo
from harness.cluster.target import Target
from harness.config import HarnessConfig
from harness.reporting.record import TestRecord
from harness.runners.service import ServiceHandle
from harness.runners.skeleton import RunContext, RunResult
from harness.thresholds.model import Profile

__all__ = [
    "Capabilities",
    "DeployService",
    "HarnessConfig",
    "NodeInfo",
    "Profile",
    "RunContext",
    "RunResult",
    "RunWorkload",
    "Runner",
    "ServiceHandle",
    "Target",
    "TestRecord",
]

R_co = TypeVar("R_co", covariant=True)


class Runner(Protocol[R_co]):
    """What the runner registry exports (``run_workload``, ``deploy_service``): run a rendered workload where its
    :class:`RunContext` says and hand back its result (or, for a service, a context manager)."""

    def __call__(self, spec: WorkloadSpec, rendered: Rendered, context: RunContext, /) -> R_co: ...


class RunWorkload(Protocol):
    """``run_workload``, ``run_mpijob``, ``run_jobset``, ``run_rayjob``: ``(name, **params)`` renders the catalog
    workload ``name`` with ``params`` in the test's namespace and runs it to completion (or raises
    :class:`~harness.errors.WorkloadFailed` / :class:`~harness.errors.WaitTimeout`)."""

    def __call__(self, name: str, /, **params: object) -> RunResult: ...


class DeployService(Protocol):
    """``deploy_service``: ``with deploy_service(name, **params) as handle:`` a ready service workload, torn down
    (its artifacts gathered) when the block ends."""

    def __call__(self, name: str, /, **params: object) -> AbstractContextManager[ServiceHandle]: ...
