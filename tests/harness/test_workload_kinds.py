"""``workload.yaml``'s ``kind`` picks the runner and ``parser`` names the module that reads the output: both are
checked against the code, so neither is a label nobody reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.catalog.spec import KINDS, WorkloadSpec, load_workload
from harness.errors import ConfigError
from harness.parsers import MODULES, NO_PARSER
from harness.runners.custom import ConditionResource
from harness.runners.job import JOB
from harness.runners.ray import RAYJOB
from harness.runners.registry import RUN_TO_COMPLETION, SERVICE_KIND, deploy_service, runner_for

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = sorted(p.parent.name for p in (ROOT / "workloads").glob("*/workload.yaml"))
# Where a workload's output is read: the suites, and the harness modules that run workloads for them.
READERS = [*sorted((ROOT / "suites").rglob("*.py")), *sorted((ROOT / "harness").rglob("*.py"))]
TOP_KINDS = {"mpijob": "MPIJob", "jobset": "JobSet", "rayjob": "RayJob"}


def test_every_kind_has_exactly_one_runner() -> None:
    assert set(KINDS) == {*RUN_TO_COMPLETION, SERVICE_KIND}
    assert RUN_TO_COMPLETION["job"] is JOB and RUN_TO_COMPLETION["rayjob"] is RAYJOB
    assert {r.kind for r in RUN_TO_COMPLETION.values() if isinstance(r, ConditionResource)} == {"MPIJob", "JobSet"}


@pytest.mark.parametrize("name", WORKLOADS)
def test_kind_matches_the_top_object(name: str) -> None:
    """An operator's resource is run by that operator's runner: a workload whose manifests define an MPIJob,
    JobSet or RayJob must say so, or the Job runner would wait for a Job that never comes."""
    spec = load_workload(name)
    text = "\n".join((spec.directory / m).read_text() for m in spec.manifests)
    top = {kind for kind, obj in TOP_KINDS.items() if re.search(rf"^kind: {obj}\s*$", text, re.M)}
    if top:
        assert {spec.kind} == top, f"{name}: manifests define {sorted(top)}, workload.yaml says kind {spec.kind}"
    else:
        assert spec.kind in ("job", SERVICE_KIND)


def _spec(kind: str) -> WorkloadSpec:
    return WorkloadSpec(name="w", kind=kind, description="", directory=Path("/catalog/w"), manifests=())


def test_a_service_is_not_run_to_completion_and_a_job_is_not_deployed() -> None:
    with pytest.raises(ConfigError, match=r"^/catalog/w/workload.yaml: kind service is deployed and used live"):
        runner_for(_spec("service"))
    service = deploy_service(_spec("job"), None, None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^/catalog/w/workload.yaml: kind job runs to completion"), service:
        pass


@pytest.mark.parametrize("name", WORKLOADS)
def test_parser_names_the_module_that_reads_the_output(name: str) -> None:
    """A workload's declared parser module is imported by some suite or harness module that names the workload."""
    spec = load_workload(name)
    if spec.parser == NO_PARSER:
        return
    module = MODULES[spec.parser]
    package, _, leaf = module.rpartition(".")
    imports = re.compile(
        rf"(from {re.escape(module)} import|import {re.escape(module)}\b|from {package} import .*\b{leaf}\b)"
    )
    readers = [p for p in READERS if f'"{name}"' in (text := p.read_text()) and imports.search(text)]
    assert readers, f"{name}: parser {spec.parser} ({module}), but no suite naming the workload imports that module"
