"""The run record's schema: typed ``run.json`` and ``results.jsonl`` entries, written and read by the same code.

The writer (:mod:`harness.reporting.record`) turns what it is given into these classes and writes
:meth:`RunInfo.to_json` / :meth:`TestResult.to_json`; the reader (:mod:`harness.reporting.load`) builds them back with
``from_json``. So a field added here is written and read in one place, and every report (HTML, JUnit, CSV,
compare, history, evidence) reads attributes instead of ``.get`` chains on dicts.

Versions: :data:`SCHEMA_VERSION` is written as ``schema_version`` in ``run.json`` and on every results line.
Version 1 is every record written before the field existed; its keys are the same, so it loads unchanged. A
record from a newer harness loads too, with one problem line saying so (unknown fields are kept in ``extra`` and
written back as they were).

Reading never trusts the file: a value of the wrong type becomes the field's empty default, and what was dropped
is said in ``problems`` (a report shows those sentences). Missing data stays visibly missing (``None``, ``""``).

Reader and writer are driven by the fields themselves: a plain field (a string, a number, a flag, a map or list of
plain values) is read by the lenient reader of its declared type (:data:`_READERS`) and written under its own name,
so adding one is adding the field; only what is not plain (nested entries, the status, older spellings, values a
writer leaves out when empty) is spelled out in the class's ``from_json`` / ``to_json``.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from harness.measurement import Measurement
from harness.thresholds.model import RuleKind, verdict_bar_text

__all__ = [
    "AREAS",
    "SCHEMA_VERSION",
    "STATUSES",
    "CapabilitiesInfo",
    "CheckEntry",
    "Environment",
    "FailureKind",
    "MeasurementEntry",
    "NodeEntry",
    "ProfileInfo",
    "RunInfo",
    "Status",
    "TargetInfo",
    "TestResult",
]

#: 2: this module (typed entries, ``schema_version`` written); 1: records from before, same keys.
SCHEMA_VERSION = 2


class Status(StrEnum):
    """How a test ended (a result's ``status``)."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"


class FailureKind(StrEnum):
    """Why a test did not pass (a result's ``failure_kind``): measured and below the bar, or could not measure
    (and why)."""

    THRESHOLD = "threshold"
    WORKLOAD = "workload"
    TIMEOUT = "timeout"
    PARSE = "parse"
    NO_DATA = "no-data"
    CONFORMANCE = "conformance"
    TARGET = "target"
    HARNESS = "harness"


#: The statuses as the record's strings, in the order reports count them.
STATUSES = tuple(s.value for s in Status)
#: The areas a result may belong to (its ``area``; the plugin's area markers), in the order reports show them.
AREAS = ("compute", "network", "storage", "serving", "observability", "practices", "control_plane")


# ------------------------------------------------------------------------------------------- lenient readers
def _str(value: object) -> str:
    return value if type(value) is str else ("" if value is None else str(value))


def _number(value: object) -> float | None:
    if type(value) is float:
        return value if math.isfinite(value) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _int(value: object, default: int = 0) -> int:
    return value if type(value) is int else default


_ONLY_STR = {str}


def _str_map(value: object) -> dict[str, str]:
    if type(value) is dict and set(map(type, value.values())) <= _ONLY_STR:
        return value  # the common case, as parsed: no copy (a fleet record has 100,000 of these)
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def _any_map(value: object) -> dict[str, Any]:
    if type(value) is dict:
        return value  # as parsed from JSON: string keys already, and ours to keep
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


def _str_list(value: object) -> list[str]:
    return [str(v) for v in value if v is not None] if isinstance(value, list | tuple) else []


def _maps(value: object) -> list[dict[str, Any]]:
    return [_any_map(v) for v in value if isinstance(v, Mapping)] if isinstance(value, list | tuple) else []


def _extra(data: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    if data.keys() <= known:  # the common case, decided in C: 50,000 checks per fleet record
        return {}
    return {k: v for k, v in data.items() if k not in known}


def _drop_none(out: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in out.items() if v is not None}


def _true(value: object) -> bool:
    return value is True


def _int_or_none(value: object) -> int | None:
    return value if type(value) is int else None


def _bool_or_none(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _float_or_zero(value: object) -> float:
    return _number(value) or 0.0


def _items(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _section(value: object) -> dict[str, Any] | None:
    """A nested object, or None when absent or empty (``{}`` says as much as no key)."""
    return dict(value) if isinstance(value, Mapping) and value else None


#: The lenient reader of each plain field type: whatever the file holds, the field gets a value of its type.
_READERS: dict[object, Callable[[object], Any]] = {
    str: _str,
    float: _float_or_zero,
    float | None: _number,
    int: _int,
    int | None: _int_or_none,
    bool: _true,
    bool | None: _bool_or_none,
    dict[str, str]: _str_map,
    dict[str, Any]: _any_map,
    dict[str, Any] | None: _section,
    list[str]: _str_list,
    list[Any]: _items,
    list[dict[str, Any]]: _maps,
}

_Plain = tuple[tuple[str, Callable[[object], Any]], ...]


def _plain(cls: type, *, but: Sequence[str] = ()) -> _Plain:
    """``(name, reader)`` of every field of ``cls`` except ``but`` (the ones its ``from_json`` reads itself), in
    field order; a field of a type without a reader is an error here, at import, not a value silently lost."""
    hints = typing.get_type_hints(cls)
    unknown = [f.name for f in fields(cls) if f.name not in but and hints[f.name] not in _READERS]
    if unknown:
        raise TypeError(f"{cls.__name__}: no reader for the type of {', '.join(unknown)}; read it in from_json")
    return tuple((f.name, _READERS[hints[f.name]]) for f in fields(cls) if f.name not in but)


def _read(plain: _Plain, data: Mapping[str, Any]) -> dict[str, Any]:
    return {name: read(data.get(name)) for name, read in plain}


def _write(entry: object, plain: _Plain) -> dict[str, Any]:
    return {name: getattr(entry, name) for name, _ in plain}


# ----------------------------------------------------------------------------------------------- results
@dataclass(slots=True, kw_only=True)
class MeasurementEntry:
    """One measurement as the record holds it (see :class:`harness.measurement.Measurement`); ``source`` names
    the file an imported measurement came from."""

    metric: str
    value: float
    unit: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    emulated: bool = False
    source: dict[str, str] | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MeasurementEntry | None:
        """The entry, or None when it has no metric or no finite number (the caller says so in its problems)."""
        value = data.get("value")
        if type(value) is not float:
            value = _number(value)
        metric = data.get("metric")
        if value is None or not metric or not math.isfinite(value):
            return None
        source = data.get("source")
        return cls(
            metric=_str(metric),
            value=value,
            unit=_str(data.get("unit")),
            labels=_str_map(data.get("labels")),
            emulated=data.get("emulated") is True,
            source=_str_map(source) if isinstance(source, Mapping) else None,
        )

    @classmethod
    def of(cls, measurement: Measurement) -> MeasurementEntry:
        """The entry of a measurement a test recorded (a value given as an int is held as the float it is)."""
        return cls(
            metric=measurement.metric,
            value=float(measurement.value),
            unit=measurement.unit,
            labels=dict(measurement.labels),
            emulated=measurement.emulated,
        )

    def to_json(self) -> dict[str, Any]:
        out = _write(self, _MEASUREMENT_PLAIN)
        if self.source is not None:
            out["source"] = self.source
        return out


#: Read by hand above (an entry without a finite number is no entry), written field by field.
_MEASUREMENT_PLAIN = _plain(MeasurementEntry, but=("source",))


@dataclass(slots=True, kw_only=True)
class CheckEntry:
    """One threshold check as the record holds it (:meth:`harness.thresholds.model.Check.to_dict`).

    Rule kinds are open: a kind this module does not know keeps its own fields in ``extra``, and reports show the
    common fields (status, metric, observed, bar, source, hint, detail) plus ``extra`` as ``key=value``; nothing
    is rendered per kind."""

    threshold_id: str = ""
    workload: str = ""
    metric: str = ""
    kind: str = ""
    status: str = ""
    severity: str = ""
    observed: float | None = None
    unit: str = ""
    comparison: str = ""
    bar: float | None = None
    baseline_value: float | None = None
    regression_pct: float | None = None
    selector: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    matched: int | None = None
    emulated: bool = False
    source: str = ""
    description: str = ""
    hint: str = ""
    detail: str = ""
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failing(self) -> bool:
        """Failed, or judged without data: both fail a test (warnings do not)."""
        return self.status in ("failed", "no-data")

    @property
    def verdict_bar(self) -> str:
        """What a verdict rule demands, as the judging code words it; empty for a numeric kind or one this version
        does not know. A verdict's ``bar`` is a rule parameter (a factor, an alpha), never a value to compare
        ``observed`` with, so reports print this instead of ``<comparison> <bar> <unit>``."""
        try:
            kind = RuleKind(self.kind)
        except ValueError:
            return ""
        return verdict_bar_text(kind, self.bar) if kind.is_verdict else ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CheckEntry:
        return cls(**_read(_CHECK_PLAIN, data), extra=_extra(data, _CHECK_KEYS))

    def to_json(self) -> dict[str, Any]:
        """Every field under its own name, in field order (the order results.jsonl has), empty unit and comparison
        as null, then the fields of kinds this module does not know."""
        out = _write(self, _CHECK_PLAIN)
        out.update(unit=self.unit or None, comparison=self.comparison or None)
        return {**out, **self.extra}


#: The fields a check entry knows, in order; any other key of a stored check is kept in ``extra``.
_CHECK_PLAIN = _plain(CheckEntry, but=("extra",))
_CHECK_KEYS = frozenset(name for name, _ in _CHECK_PLAIN)


@dataclass(slots=True, kw_only=True)
class TestResult:
    """One test's line of ``results.jsonl``: what it was, how it ended, what it measured and how that was judged."""

    __test__ = False  # not a pytest test class, whatever its name

    id: str
    name: str
    status: str = "error"
    doc: str = ""
    area: str = ""
    markers: list[str] = field(default_factory=list)
    #: CNCF AI conformance requirement ids the test evidences (``conformance_requirement`` markers)
    requirements: list[str] = field(default_factory=list)
    failure_kind: str = ""
    message: str = ""
    duration_s: float = 0.0
    workload: str = ""
    #: the workload's parameters: strings from tests (``record.add``); another writer may keep JSON values there
    #: (``k8s-ai-bench load`` keeps its redacted request headers as an object), so values are kept as written
    params: dict[str, Any] = field(default_factory=dict)
    measurements: list[MeasurementEntry] = field(default_factory=list)
    checks: list[CheckEntry] = field(default_factory=list)
    emulated: bool = False
    artifacts: str = ""
    api_retries: int | None = None
    #: keys this version does not know (a newer writer's, or an importer's), written back unchanged
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, where: str = "", problems: list[str] | None = None) -> TestResult:
        """The result; anything dropped or defaulted is said in ``problems`` (prefixed with ``where``)."""
        said = problems if problems is not None else []
        test_id = _str(data.get("id"))
        label = f"{where} ({test_id or 'no id'})" if where else test_id or "result"
        status = data.get("status")
        if status is None:
            said.append(f"{label} has no status: counted as error")
            status = "error"
        elif status not in STATUSES:
            said.append(f"{label} has unknown status {status!r}: counted as error")
            status = "error"
        measurements = []
        raw = data.get("measurements")
        for item in raw if isinstance(raw, list) else ():
            entry = MeasurementEntry.from_json(item) if isinstance(item, Mapping) else None
            if entry is None:
                said.append(f"{label}: a measurement without metric or numeric value was skipped")
                continue
            measurements.append(entry)
        raw_checks = data.get("checks")
        checks = (
            [CheckEntry.from_json(c) for c in raw_checks if isinstance(c, Mapping)]
            if isinstance(raw_checks, list)
            else []
        )
        requirements = _str_list(data.get("requirements"))
        single = data.get("requirement")  # an older spelling: one id, or a list
        requirements += [single] if isinstance(single, str) else _str_list(single)
        return cls(
            **_read(_RESULT_PLAIN, data),
            id=test_id,
            name=_str(data.get("name")) or (test_id.rsplit("::", 1)[-1] if test_id else where or "unnamed"),
            status=_str(status),
            requirements=list(dict.fromkeys(r.strip() for r in requirements if r and r.strip())),
            measurements=measurements,
            checks=checks,
            extra=_extra(data, _RESULT_KEYS),
        )

    def unwritable(self) -> list[str]:
        """Why this result cannot be written as it is (empty when it can): what the reader would drop or change,
        so a writer refuses it rather than leave a line that reads back different."""
        label = self.id or "(no id)"
        said = [f"{label}: unknown status {self.status!r}"] if self.status not in STATUSES else []
        said.extend(
            f"{label}: measurement {m.metric or '(no metric)'} = {m.value!r} needs a metric and a finite number"
            for m in self.measurements
            if not m.metric or not math.isfinite(m.value)
        )
        return said

    def to_json(self) -> dict[str, Any]:
        """Every field under its own name (``api_retries`` only when counted), after the unknown keys it was read
        with, so a known field always wins."""
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "requirements": self.requirements,
            **_write(self, _RESULT_PLAIN),
            "measurements": [m.to_json() for m in self.measurements],
            "checks": [c.to_json() for c in self.checks],
        }
        if self.api_retries is None:
            del out["api_retries"]
        return {**self.extra, **out}


_RESULT_PLAIN = _plain(TestResult, but=("id", "name", "status", "requirements", "measurements", "checks", "extra"))
#: The keys a result line knows (with ``requirement``, an older spelling); any other is kept in ``extra``.
_RESULT_KEYS = frozenset({f.name for f in fields(TestResult)} - {"extra"} | {"schema_version", "requirement"})


# ---------------------------------------------------------------------------------------------- run info
@dataclass(slots=True, kw_only=True)
class TargetInfo:
    """The cluster the run measured."""

    kind: str = ""
    name: str = ""
    server_version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the real control plane's start_s milestones

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TargetInfo:
        return cls(**_read(_TARGET_PLAIN, data), extra=_extra(data, _TARGET_KEYS))

    def to_json(self) -> dict[str, Any]:
        out = {**self.extra, **_write(self, _TARGET_PLAIN)}
        if not self.server_version:  # an endpoint or an import has none
            del out["server_version"]
        return out


_TARGET_PLAIN = _plain(TargetInfo, but=("extra",))
_TARGET_KEYS = frozenset(name for name, _ in _TARGET_PLAIN)


@dataclass(slots=True, kw_only=True)
class ProfileInfo:
    """The threshold profile the run was judged against, and why that one."""

    name: str = ""
    reason: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProfileInfo:
        return cls(**_read(_PROFILE_PLAIN, data))

    def to_json(self) -> dict[str, Any]:
        return _write(self, _PROFILE_PLAIN)


_PROFILE_PLAIN = _plain(ProfileInfo)


@dataclass(slots=True, kw_only=True)
class NodeEntry:
    """One node of the capabilities snapshot."""

    name: str
    ready: bool = False
    emulated: bool = False
    gpus: int = 0
    tpus: int = 0
    rdma: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    allocatable: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NodeEntry:
        return cls(**_read(_NODE_PLAIN, data), name=_str(data.get("name")) or "?", extra=_extra(data, _NODE_KEYS))

    def to_json(self) -> dict[str, Any]:
        return {**self.extra, "name": self.name, **_write(self, _NODE_PLAIN)}


_NODE_PLAIN = _plain(NodeEntry, but=("name", "extra"))
_NODE_KEYS = frozenset(name for name, _ in _NODE_PLAIN) | {"name"}


@dataclass(slots=True, kw_only=True)
class CapabilitiesInfo:
    """What the target offered (:meth:`harness.cluster.capabilities.Capabilities.to_dict`); the parts reports
    show are typed, the rest (monitoring, system services, ...) kept in ``extra``."""

    server_version: str = ""
    embedded: bool | None = None
    accelerators: str = ""
    nodes: list[NodeEntry] = field(default_factory=list)
    addons: list[Any] = field(default_factory=list)
    cni: list[Any] = field(default_factory=list)
    prometheus: list[Any] = field(default_factory=list)
    storage_classes: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CapabilitiesInfo:
        nodes = data.get("nodes")
        return cls(
            **_read(_CAPS_PLAIN, data),
            nodes=[NodeEntry.from_json(n) for n in nodes if isinstance(n, Mapping)] if isinstance(nodes, list) else [],
            extra=_extra(data, _CAPS_KEYS),
        )

    def to_json(self) -> dict[str, Any]:
        return {**self.extra, **_write(self, _CAPS_PLAIN), "nodes": [n.to_json() for n in self.nodes]}


_CAPS_PLAIN = _plain(CapabilitiesInfo, but=("nodes", "extra"))
_CAPS_KEYS = frozenset(name for name, _ in _CAPS_PLAIN) | {"nodes"}


@dataclass(slots=True, kw_only=True)
class Environment:
    """What ran the harness: its version and commit, and the Python it ran on."""

    harness_version: str = ""
    git_commit: str = ""
    python: str = ""


@dataclass(slots=True, kw_only=True)
class RunInfo:
    """``run.json``: the run's identity, how it ended, where it ran and with what.

    ``present`` lists the keys the file had: a run killed before its end lacks ``finished_at`` and
    ``exit_status``, and reports say so rather than inventing them."""

    schema_version: int = SCHEMA_VERSION
    run_id: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    exit_status: int | None = None
    ended_by: str = ""
    selected: int | None = None
    outcome: str = ""
    end_reason: str = ""
    environment: Environment = field(default_factory=Environment)
    options: dict[str, Any] = field(default_factory=dict)
    option_sources: dict[str, str] = field(default_factory=dict)
    target: TargetInfo | None = None
    capabilities: CapabilitiesInfo | None = None
    profile: ProfileInfo | None = None
    api_retries: dict[str, Any] | None = None
    imported: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    present: frozenset[str] = frozenset()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunInfo:
        target, caps, profile = (_section(data.get(key)) for key in ("target", "capabilities", "profile"))
        return cls(
            **_read(_INFO_PLAIN, data),
            schema_version=_int(data.get("schema_version"), 1),
            environment=Environment(**_read(_ENV_PLAIN, data)),  # flat in run.json, grouped here
            target=TargetInfo.from_json(target) if target is not None else None,
            capabilities=CapabilitiesInfo.from_json(caps) if caps is not None else None,
            profile=ProfileInfo.from_json(profile) if profile is not None else None,
            extra=_extra(data, _INFO_KEYS),
            present=frozenset(data),
        )

    def to_json(self) -> dict[str, Any]:
        """Every field under its own name, the environment's flat beside them; a value not known (None) is left
        out, and so are the empty ones of :data:`_INFO_EMPTY_LEFT_OUT` (the run did not say)."""
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            **_write(self, _INFO_PLAIN),
            **_write(self.environment, _ENV_PLAIN),
            "target": self.target.to_json() if self.target is not None else None,
            "capabilities": self.capabilities.to_json() if self.capabilities is not None else None,
            "profile": self.profile.to_json() if self.profile is not None else None,
        }
        out.update({key: out[key] or None for key in _INFO_EMPTY_LEFT_OUT})
        return {**self.extra, **_drop_none(out)}


_INFO_PLAIN = _plain(
    RunInfo, but=("schema_version", "environment", "target", "capabilities", "profile", "extra", "present")
)
_ENV_PLAIN = _plain(Environment)
#: The keys run.json knows; any other is kept in ``extra``.
_INFO_KEYS = frozenset(name for name, _ in _INFO_PLAIN + _ENV_PLAIN) | {
    "schema_version",
    "target",
    "capabilities",
    "profile",
}
_INFO_EMPTY_LEFT_OUT = ("ended_by", "outcome", "end_reason", "python", "options", "option_sources")
