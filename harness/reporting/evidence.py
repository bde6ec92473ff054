"""CNCF Kubernetes AI Conformance evidence from a run record (DESIGN.md section 7; mission-anchors.md section 4).

From v1.37 the program (cncf/k8s-ai-conformance ``instructions.md``) recommends that a submission carry, next to
``PRODUCT.yaml``, the artefacts of the upstream suite ``kubernetes-sigs/ai-conformance/test``: ``e2e.log``
(``go test -v`` output), ``junit.xml`` (gotestsum / go-junit-report) or ``results.json`` (``go test -json``,
i.e. the test2json event stream), referenced per requirement as ``file://vX.Y/<dir>/junit.xml#<TestName>``.
:func:`write_evidence` writes the same three files from this suite's results, in those shapes, plus
``requirements.md`` / ``requirements.json`` (a per-requirement table to fill ``PRODUCT.yaml`` from):

- Each requirement becomes one Go-style parent test named after the upstream test that covers it
  (``TestSecureAcceleratorAccess``; ``Test`` + the CamelCased id where upstream has none), and each pytest result
  mapped to it a subtest ``<Parent>/<pytest name>``, so ``junit.xml#TestSecureAcceleratorAccess`` works.
- ``e2e.log`` follows ``go test -v`` layout (``=== RUN``, indented log lines, the parent's ``--- PASS/FAIL/SKIP:
  name (Ns)`` followed by its subtests' indented ones, final ``PASS``/``FAIL`` and ``ok``/``FAIL`` package
  line); each subtest logs its requirement id and level, the pytest node id, the test's doc sentence, its status
  and message.
- ``results.json`` is newline-separated test2json ``TestEvent`` objects (``Time``, ``Action``, ``Package``,
  ``Test``, ``Elapsed``, ``Output``). Per-test times are not in the run record, so ``Time`` is set only on the
  package ``start`` (run start) and final events (run end); test2json allows omitting it.
- ``junit.xml`` is :mod:`harness.reporting.junit` output (xunit2 flavour) with one ``<testsuite>`` per
  requirement and the Go-style names above.

A result maps to requirements through ``requirements_of`` (a ``requirements`` list or ``requirement`` string in
the result; see :mod:`harness.reporting.load`). Requirement status: ``implemented`` (at least one mapped test
passed, none failed or errored), ``failed`` (a mapped test failed: measured, and the behaviour does not hold),
``error`` (a mapped test could not verify: harness or target trouble), ``not-tested`` (no mapped result, or all
skipped). Evidence from emulated nodes or the embedded target is flagged: it shows the suite works, not that a
platform conforms.
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import RecordWriteError
from harness.reporting.atomic import write_atomic
from harness.reporting.junit import Case, Suite, render_suites
from harness.reporting.load import RunRecordData, requirements_of

__all__ = [
    "PACKAGE",
    "REQUIREMENTS",
    "Requirement",
    "RequirementStatus",
    "evaluate_requirements",
    "go_test_name",
    "write_evidence",
]

PACKAGE = "k8s-ai-bench/suites"


@dataclass(frozen=True, slots=True, kw_only=True)
class Requirement:
    """One checklist requirement of the CNCF Kubernetes AI Conformance program (descriptions paraphrased)."""

    id: str
    category: str
    level: str  # MUST or SHOULD
    description: str
    upstream_test: str = ""  # the Go test in kubernetes-sigs/ai-conformance/test that covers it, if any
    checklists: str = "v1.35, v1.37"


#: From cncf/k8s-ai-conformance docs/AIConformance-1.35.md and docs/AIConformance-1.37.yaml; upstream test names
#: from kubernetes-sigs/ai-conformance test/*.go (the README's table and the test files).
REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement(
        id="dra_support",
        category="accelerators",
        level="MUST",
        checklists="v1.33-v1.35",
        description="Dynamic Resource Allocation APIs are available for accelerators.",
    ),
    Requirement(
        id="driver_runtime_management",
        category="accelerators",
        level="SHOULD",
        description="A verifiable mechanism ensures compatible accelerator drivers and container-runtime "
        "configuration on accelerator nodes (via DRA once drivers expose versions there).",
        upstream_test="TestAcceleratorDriverRuntimeManagement",
    ),
    Requirement(
        id="gpu_sharing",
        category="accelerators",
        level="SHOULD",
        description="At least one GPU sharing strategy: partitions (e.g. MIG) as schedulable resources, or "
        "time-slicing with oversubscription.",
    ),
    Requirement(
        id="virtualized_accelerator",
        category="accelerators",
        level="SHOULD",
        description="Virtualized accelerators (e.g. vGPU) are exposed and managed consistently with fractional GPUs.",
    ),
    Requirement(
        id="ai_inference",
        category="networking",
        level="MUST",
        description="Gateway API implementation with advanced traffic management for inference: weighted "
        "splitting, header-based routing (OpenAI protocol headers), optional mesh integration.",
    ),
    Requirement(
        id="advanced_inference_ingress",
        category="networking",
        level="SHOULD",
        checklists="v1.37",
        description="Gateway API Inference Extension implementation routing to models with model-server "
        "aware decisions (e.g. KV-cache aware).",
    ),
    Requirement(
        id="high_performance_networking",
        category="networking",
        level="SHOULD",
        checklists="v1.37",
        description="Specialised pod-to-pod network resources are discoverable and attachable as extra "
        "interfaces, preferably through DRA (e.g. DRANET).",
    ),
    Requirement(
        id="disaggregated_inference",
        category="networking",
        level="SHOULD",
        checklists="v1.37",
        description="A disaggregated inference stack (separate prefill and decode) installs and runs.",
    ),
    Requirement(
        id="gang_scheduling",
        category="schedulingOrchestration",
        level="MUST",
        description="At least one gang scheduler (e.g. Kueue, Volcano) installs and gives all-or-nothing scheduling.",
        upstream_test="TestGangScheduling",
    ),
    Requirement(
        id="cluster_autoscaling",
        category="schedulingOrchestration",
        level="MUST",
        description="Node groups of a given accelerator type scale up and down on pending pods requesting "
        "it (when the platform offers cluster autoscaling).",
        upstream_test="TestAcceleratorClusterAutoscaling",
    ),
    Requirement(
        id="pod_autoscaling",
        category="schedulingOrchestration",
        level="MUST",
        description="HorizontalPodAutoscaler works for accelerator pods, including on custom AI metrics.",
    ),
    Requirement(
        id="accelerator_metrics",
        category="observability",
        level="MUST",
        description="An accelerator metrics solution exposes per-accelerator utilisation and memory (and "
        "where available temperature, power, interconnect) on a machine-readable endpoint.",
        upstream_test="TestAcceleratorPerformanceMetrics",
    ),
    Requirement(
        id="ai_service_metrics",
        category="observability",
        level="MUST",
        description="A monitoring system discovers and collects workload metrics exposed in a standard "
        "format (Prometheus exposition).",
        upstream_test="TestAIServiceMetrics",
    ),
    Requirement(
        id="secure_accelerator_access",
        category="security",
        level="MUST",
        description="Accelerator access from containers is isolated and mediated by the device plugin or "
        "DRA and the container runtime.",
        upstream_test="TestSecureAcceleratorAccess",
    ),
    Requirement(
        id="workload_sandboxing",
        category="security",
        level="SHOULD",
        checklists="v1.37",
        description="Workloads can run in a sandbox strongly isolated from the node kernel (gVisor, Kata, "
        "agent-sandbox).",
        upstream_test="TestWorkloadSandboxing",
    ),
    Requirement(
        id="robust_controller",
        category="operator",
        level="MUST",
        description="A complex AI operator with CRDs (e.g. KubeRay, Kubeflow) installs; its pods run, its "
        "webhooks work and its resources reconcile.",
        upstream_test="TestRobustCRDControllerOperation",
    ),
)
_BY_ID = {r.id: r for r in REQUIREMENTS}


def go_test_name(requirement_id: str) -> str:
    """The parent test name for a requirement: the upstream one, else ``Test`` + CamelCase of the id."""
    known = _BY_ID.get(requirement_id)
    if known is not None and known.upstream_test:
        return known.upstream_test
    return "Test" + "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", requirement_id))


def _subtest_name(result: Mapping[str, Any]) -> str:
    """Go subtest names have no spaces (``go test`` rewrites them to underscores)."""
    return re.sub(r"\s+", "_", str(result.get("name") or result.get("id") or "test"))


@dataclass(frozen=True, slots=True, kw_only=True)
class RequirementStatus:
    requirement: Requirement
    status: str  # implemented | failed | error | not-tested
    results: tuple[Mapping[str, Any], ...] = field(default=())
    emulated: bool = False
    known: bool = True  # False for ids the catalog does not list

    @property
    def test_name(self) -> str:
        return go_test_name(self.requirement.id)

    def counts(self) -> dict[str, int]:
        out = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
        for result in self.results:
            out[result["status"]] = out.get(result["status"], 0) + 1
        return out


def evaluate_requirements(record: RunRecordData) -> list[RequirementStatus]:
    """Every catalogued requirement (in checklist order), then ids found in results that the catalog lacks."""
    mapped: dict[str, list[Mapping[str, Any]]] = {}
    for result in record.results:
        for req in requirements_of(result):
            mapped.setdefault(req, []).append(result)
    statuses = []
    unknown = [
        Requirement(
            id=rid,
            category="unknown",
            level="?",
            checklists="none",
            description="not a requirement id of the stored checklists (typo?)",
        )
        for rid in mapped
        if rid not in _BY_ID
    ]
    for requirement in (*REQUIREMENTS, *unknown):
        results = tuple(mapped.get(requirement.id, ()))
        states = {r["status"] for r in results}
        if "failed" in states:
            status = "failed"
        elif "error" in states:
            status = "error"
        elif "passed" in states:
            status = "implemented"
        else:
            status = "not-tested"
        passed = [r for r in results if r["status"] == "passed"]
        emulated = bool(passed) and all(r.get("emulated") for r in passed)
        statuses.append(
            RequirementStatus(
                requirement=requirement,
                status=status,
                results=results,
                emulated=emulated,
                known=requirement.id in _BY_ID,
            )
        )
    return statuses


def _when(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC).isoformat().replace("+00:00", "Z")


def _caveats(record: RunRecordData, statuses: Sequence[RequirementStatus]) -> list[str]:
    notes = list(record.problems)
    if record.target_kind == "embedded":
        notes.append(
            "target is the embedded one-machine cluster: this evidence exercises the suite, not a conformant platform"
        )
    for st in statuses:
        if st.emulated:
            notes.append(f"{st.requirement.id}: every passing test ran on emulated hardware")
        if not st.known:
            notes.append(f"{st.requirement.id}: unknown requirement id in results ({len(st.results)} tests)")
    return notes


def _parent_status(st: RequirementStatus) -> str:
    return {"implemented": "PASS", "failed": "FAIL", "error": "FAIL", "not-tested": "SKIP"}[st.status]


_GO_STATUS = {"passed": "PASS", "failed": "FAIL", "error": "FAIL", "skipped": "SKIP"}


def _subtest_lines(st: RequirementStatus, result: Mapping[str, Any]) -> list[str]:
    req = st.requirement
    lines = [f"requirement: {req.id} ({req.level}, {req.category})", f"test: {result['id']}"]
    if result.get("doc"):
        lines.append(f"doc: {result['doc']}")
    lines.append(f"status: {result['status']}" + (f" ({result['failure_kind']})" if result.get("failure_kind") else ""))
    if result.get("emulated"):
        lines.append("emulated: measured on emulated hardware")
    lines.extend(
        f"message: {line}" if i == 0 else f"         {line}"
        for i, line in enumerate(str(result.get("message") or "").splitlines())
    )
    return lines


def _e2e_log(record: RunRecordData, statuses: Sequence[RequirementStatus]) -> str:
    info = record.info
    given = info.get("target")
    target: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    out = [
        f"# k8s-ai-bench {info.get('harness_version', '?')} conformance evidence, run {record.run_id}",
        f"# target: {target.get('kind', '?')} {target.get('name', '?')}, server {target.get('server_version', '?')}; "
        f"profile: {record.profile_name or '?'}; started {_when(record.started_at) or '?'}",
    ]
    out.extend(f"# NOTE: {note}" for note in _caveats(record, statuses))
    any_failed = False
    for st in statuses:
        if not st.results:
            continue
        parent = st.test_name
        out.append(f"=== RUN   {parent}")
        out.append(f"    requirement {st.requirement.id} ({st.requirement.level}): {st.requirement.description}")
        total = 0.0
        ends = []
        for result in st.results:
            name = f"{parent}/{_subtest_name(result)}"
            out.append(f"=== RUN   {name}")
            out.extend(f"        {line}" for line in _subtest_lines(st, result))
            duration = float(result.get("duration_s") or 0.0)
            total += duration
            ends.append(f"    --- {_GO_STATUS[result['status']]}: {name} ({duration:.2f}s)")
        status = _parent_status(st)
        any_failed = any_failed or status == "FAIL"
        out.append(f"--- {status}: {parent} ({total:.2f}s)")  # go test -v: the parent's line, then its subtests'
        out.extend(ends)
    elapsed = (record.finished_at - record.started_at) if record.finished_at and record.started_at else 0.0
    out.append("FAIL" if any_failed else "PASS")
    out.append(f"{'FAIL' if any_failed else 'ok  '}\t{PACKAGE}\t{elapsed:.3f}s")
    return "\n".join(out) + "\n"


def _events(record: RunRecordData, statuses: Sequence[RequirementStatus]) -> list[dict[str, Any]]:
    action = {"passed": "pass", "failed": "fail", "error": "fail", "skipped": "skip"}
    events: list[dict[str, Any]] = []

    def event(
        act: str,
        test: str | None = None,
        *,
        output: str | None = None,
        elapsed: float | None = None,
        time: str | None = None,
    ) -> None:
        item: dict[str, Any] = {}
        if time:
            item["Time"] = time
        item["Action"] = act
        item["Package"] = PACKAGE
        if test:
            item["Test"] = test
        if elapsed is not None:
            item["Elapsed"] = round(elapsed, 3)
        if output is not None:
            item["Output"] = output
        events.append(item)

    event("start", time=_when(record.started_at))
    any_failed = False
    for st in statuses:
        if not st.results:
            continue
        parent = st.test_name
        event("run", parent)
        event("output", parent, output=f"=== RUN   {parent}\n")
        total = 0.0
        for result in st.results:
            name = f"{parent}/{_subtest_name(result)}"
            total += float(result.get("duration_s") or 0.0)
            event("run", name)
            event("output", name, output=f"=== RUN   {name}\n")
            for line in _subtest_lines(st, result):
                event("output", name, output=f"        {line}\n")
        status = _parent_status(st)
        any_failed = any_failed or status == "FAIL"
        # As go test -json orders them: the parent's result line, then each subtest's line and end event.
        event("output", parent, output=f"--- {status}: {parent} ({total:.2f}s)\n")
        for result in st.results:
            name = f"{parent}/{_subtest_name(result)}"
            duration = float(result.get("duration_s") or 0.0)
            event("output", name, output=f"    --- {_GO_STATUS[result['status']]}: {name} ({duration:.2f}s)\n")
            event(action[result["status"]], name, elapsed=duration)
        event({"PASS": "pass", "FAIL": "fail", "SKIP": "skip"}[status], parent, elapsed=total)
    elapsed = (record.finished_at - record.started_at) if record.finished_at and record.started_at else 0.0
    event("output", output=("FAIL" if any_failed else "PASS") + "\n")
    event("fail" if any_failed else "pass", elapsed=elapsed, time=_when(record.finished_at))
    return events


def _junit(record: RunRecordData, statuses: Sequence[RequirementStatus]) -> str:
    suites = []
    for st in statuses:
        if not st.results:
            continue
        parent = st.test_name
        cases = [
            Case(
                result=r,
                name=f"{parent}/{_subtest_name(r)}",
                classname=PACKAGE,
                properties=(("requirement.level", st.requirement.level),),
            )
            for r in st.results
        ]
        suites.append(
            Suite(
                name=parent,
                cases=cases,
                properties=(
                    ("requirement", st.requirement.id),
                    ("requirement.level", st.requirement.level),
                    ("requirement.status", st.status),
                ),
            )
        )
    return render_suites(suites, record=record, flavor="xunit2")


def _table(statuses: Sequence[RequirementStatus]) -> list[dict[str, Any]]:
    return [
        {
            "id": st.requirement.id,
            "category": st.requirement.category,
            "level": st.requirement.level,
            "checklists": st.requirement.checklists,
            "description": st.requirement.description,
            "status": st.status,
            "test": st.test_name if st.results else "",
            "upstream_test": st.requirement.upstream_test,
            "counts": st.counts(),
            "emulated": st.emulated,
            "tests": [
                {
                    "id": r["id"],
                    "status": r["status"],
                    "failure_kind": r.get("failure_kind", ""),
                    "message": str(r.get("message") or "").splitlines()[0] if r.get("message") else "",
                }
                for r in st.results
            ],
            "evidence": [f"junit.xml#{st.test_name}", "e2e.log"] if st.results else [],
        }
        for st in statuses
    ]


def _markdown(record: RunRecordData, statuses: Sequence[RequirementStatus]) -> str:
    lines = [
        f"# CNCF AI conformance requirements: run {record.run_id}",
        "",
        f"Target: {record.target_kind or '?'} {record.target_name or ''}; profile: {record.profile_name or '?'}. "
        "Status: `implemented` (a mapped test passed, none failed), `failed` (a mapped test failed), `error` "
        "(a mapped test could not verify), `not-tested` (no mapped test ran). Evidence links are relative to this "
        "directory (`file://vX.Y/<dir>/junit.xml#<Test>` in PRODUCT.yaml).",
        "",
    ]
    caveats = _caveats(record, statuses)
    if caveats:
        lines.extend(f"> **Note:** {c}" for c in caveats)
        lines.append("")
    lines.append("| requirement | level | category | status | tests (pass/fail/error/skip) | evidence |")
    lines.append("|---|---|---|---|---|---|")
    for st in statuses:
        c = st.counts()
        status = st.status + (" (emulated)" if st.emulated else "")
        evidence = f"`junit.xml#{st.test_name}`, `e2e.log`" if st.results else ""
        lines.append(
            f"| `{st.requirement.id}` | {st.requirement.level} | {st.requirement.category} | {status} | "
            f"{c['passed']}/{c['failed']}/{c['error']}/{c['skipped']} | {evidence} |"
        )
    details = [st for st in statuses if st.results]
    if details:
        lines.extend(["", "## Tests per requirement", ""])
        for st in details:
            lines.append(f"### `{st.requirement.id}` ({st.test_name})")
            lines.append("")
            lines.append(st.requirement.description)
            lines.append("")
            for r in st.results:
                message = str(r.get("message") or "").splitlines()[0] if r.get("message") else ""
                doc = f": {r['doc']}" if r.get("doc") else ""
                lines.append(f"- **{r['status']}** `{r['id']}`{doc}" + (f" ({message})" if message else ""))
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_evidence(record: RunRecordData, out_dir: Path | str) -> dict[str, Path]:
    """Write ``e2e.log``, ``junit.xml``, ``results.json``, ``requirements.md`` and ``requirements.json`` into
    ``out_dir`` (created); returns the paths by file name."""
    out = Path(out_dir)
    made = not out.exists()
    try:
        return _write_all(record, out)
    except RecordWriteError:
        if made:  # nothing half-written: a directory made for files that could not be written goes too
            shutil.rmtree(out, ignore_errors=True)
        raise


def _write_all(record: RunRecordData, out: Path) -> dict[str, Path]:
    statuses = evaluate_requirements(record)
    paths = {
        name: out / name for name in ("e2e.log", "junit.xml", "results.json", "requirements.md", "requirements.json")
    }
    write_atomic(paths["e2e.log"], _e2e_log(record, statuses))
    write_atomic(paths["junit.xml"], _junit(record, statuses))
    write_atomic(paths["results.json"], "".join(json.dumps(e) + "\n" for e in _events(record, statuses)))
    write_atomic(paths["requirements.md"], _markdown(record, statuses))
    summary = {
        "format": "k8s-ai-bench conformance requirements v1",
        "run_id": record.run_id,
        "started_at": _when(record.started_at),
        "finished_at": _when(record.finished_at),
        "target": record.info.get("target", {}),
        "profile": record.info.get("profile", {}),
        "notes": _caveats(record, statuses),
        "requirements": _table(statuses),
    }
    write_atomic(paths["requirements.json"], json.dumps(summary, indent=2, default=str) + "\n")
    return paths
