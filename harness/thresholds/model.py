"""Thresholds, profiles and checks: the values the evaluation works on (DESIGN.md sections 1 and 6).

A :class:`Threshold` is a bar for one metric of one workload, selected by labels, with the **source** of its number.
A :class:`Profile` holds the thresholds of one hardware class and the capability conditions under which it applies.
A :class:`Check` is one threshold evaluated on measurements. Everything here is an immutable value: the loader
builds them from YAML, :mod:`harness.thresholds.evaluate` turns measurements into checks, reports serialise them.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from harness.measurement import Measurement, as_record

__all__ = [
    "WORKLOADS",
    "Accelerator",
    "Aggregate",
    "Check",
    "Checks",
    "Comparison",
    "LabelSelector",
    "Match",
    "Profile",
    "RuleKind",
    "Severity",
    "Status",
    "Threshold",
    "format_labels",
    "format_value",
    "verdict_bar_text",
]

#: The catalog's workload names. A profile naming any other workload is a typo that would silently never be
#: evaluated, so the loader rejects it; add the name here when a workload joins the catalog.
WORKLOADS: frozenset[str] = frozenset(
    {
        "nccl-allreduce",
        "cuda-gemm",
        "cuda-membw",
        "cuda-pcie",
        "cuda-burn",
        "perftest-ib",
        "fio",
        "model-share",
        "s3-model-store",
        "redis-cache",
        "inference-server",
        "inference-server-cpu-model",
        "tpu-jax",
        "pod-startup",
        "api-latency",
        "trivial-job",
        "dcgm-metrics",
        "prometheus",
        "ray-bench",
        "collective-allreduce",
        "net-iperf3",
        "net-latency",
        "net-reach",
        "net-gang",
        "inference-route-istio",
        "inference-route-gateway",
    }
)


class Comparison(StrEnum):
    """How an observed value must relate to the bar. The sense also gives a regression rule its direction."""

    GE = ">="
    LE = "<="
    GT = ">"
    LT = "<"
    EQ = "=="

    @property
    def higher_is_better(self) -> bool | None:
        """True for ``>=``/``>``, False for ``<=``/``<``, None for ``==`` (which has no "worse" direction)."""
        if self in (Comparison.GE, Comparison.GT):
            return True
        if self in (Comparison.LE, Comparison.LT):
            return False
        return None

    def holds(self, observed: float, bar: float) -> bool:
        """Whether ``observed <cmp> bar``. ``==`` uses a relative tolerance of 1e-9: values come through unit
        conversion, and 1 GiB/s converted to MiB/s must still equal 1024 MiB/s."""
        return _COMPARE[self](observed, bar)


def _equal(observed: float, bar: float) -> bool:
    return observed == bar or abs(observed - bar) <= 1e-9 * max(abs(observed), abs(bar))


_COMPARE: dict[Comparison, Callable[[float, float], bool]] = {
    Comparison.GE: operator.ge,
    Comparison.LE: operator.le,
    Comparison.GT: operator.gt,
    Comparison.LT: operator.lt,
    Comparison.EQ: _equal,
}


class Severity(StrEnum):
    """``fail`` makes a violated check fail the test; ``warn`` only flags it in reports."""

    FAIL = "fail"
    WARN = "warn"


class Aggregate(StrEnum):
    """Which value is judged when several measurements match one threshold.

    ``worst`` (the default) judges the value furthest on the wrong side: the minimum for ``>=``/``>`` bars, the
    maximum for ``<=``/``<`` bars, so the worst GPU or endpoint decides whichever way the bar points (``==`` bars
    judge each value). ``min``/``max``/``mean`` reduce to one check explicitly (``max`` over the large message
    sizes of a sweep, for instance). ``each`` judges every matching measurement on its own, one check each (per
    node, per GPU, per NIC), so a report can name the one bad node.
    """

    WORST = "worst"
    MIN = "min"
    MAX = "max"
    MEAN = "mean"
    EACH = "each"


class RuleKind(StrEnum):
    """The rule kinds of DESIGN.md section 6: three numeric bars, and verdicts that are not one number.

    A verdict rule (:attr:`is_verdict`) judges a set of measurements as a whole by a rule written in code
    (:mod:`harness.thresholds.verdicts`): "no element of any size was wrong", "the fastest storage class beats the
    slowest by a factor", "the denied phase did not connect", "every pod of the gang landed in one domain". Its
    evidence is measurements like any other, so the verdict can be re-judged from a run record; its Check is
    recorded, reported and asserted like a bar's.
    """

    ABSOLUTE = "absolute"  # observed <cmp> value unit
    REGRESSION = "regression"  # no worse than the baseline run's measurement by more than regression_pct %
    PRESENCE = "presence"  # at least one matching measurement exists, any value
    NO_CORRUPTION = "no-corruption"  # no wrong element at any size, no out-of-bounds value (nccl-tests #wrong)
    RDMA_TRANSPORT = "rdma-transport"  # NCCL used an RDMA transport between nodes that have RDMA resources
    FASTER_TIER = "faster-tier-faster"  # the fastest storage class beats the slowest by >= value x on one headline
    TRAFFIC_DENIED = "traffic-denied"  # every probe connected exactly when its NetworkPolicy phase says it should
    GANG_WHOLE = "gang-placed-whole"  # every pod of a gang placed, all inside one topology domain
    WEIGHTED_SPLIT = "split-within-binomial"  # each subset's share of requests inside its binomial interval
    NO_SLOW_NODE = "no-slow-node"  # no node's result below the median - tolerance (attributed alone, in pairs...)

    @property
    def is_verdict(self) -> bool:
        """True for the rule kinds judged by a verdict function rather than by comparing one value with a bar."""
        return self not in (RuleKind.ABSOLUTE, RuleKind.REGRESSION, RuleKind.PRESENCE)

    @property
    def verdict_bar(self) -> str:
        """What a verdict rule demands, as a report's "bar" column prints it (empty for the numeric kinds)."""
        return _VERDICT_BARS.get(self, "")


_VERDICT_BARS: dict[RuleKind, str] = {
    RuleKind.NO_CORRUPTION: "no wrong element, no out-of-bounds value",
    RuleKind.RDMA_TRANSPORT: "an RDMA transport between nodes that have RDMA",
    RuleKind.FASTER_TIER: "fastest class >= factor x slowest on one headline",
    RuleKind.TRAFFIC_DENIED: "denied where a policy denies, admitted where it allows",
    RuleKind.GANG_WHOLE: "every pod placed, all in one topology domain",
    RuleKind.WEIGHTED_SPLIT: "each subset's count inside its binomial acceptance interval",
    RuleKind.NO_SLOW_NODE: "no node below the median of its peers - tolerance",
}


class Status(StrEnum):
    """The outcome of one check. ``no-data`` (nothing matched) counts as a failure for either severity."""

    PASSED = "passed"
    FAILED = "failed"
    WARNED = "warned"
    NO_DATA = "no-data"


class Accelerator(StrEnum):
    """The accelerator family a profile applies to (capability fact ``accelerator``)."""

    NONE = "none"
    NVIDIA = "nvidia"
    TPU = "tpu"


def format_value(value: float) -> str:
    """A number as reports show it: up to 6 significant digits, no trailing zeros (``452.1``, ``1.71799e+10``)."""
    return f"{value:.6g}"


def verdict_bar_text(kind: RuleKind, value: float | None) -> str:
    """What a verdict rule demands, as every report prints it: the faster-tier rule with its factor when the check
    carries one, any other verdict kind by its text (:attr:`RuleKind.verdict_bar`)."""
    if kind is RuleKind.FASTER_TIER and value is not None:
        return f"fastest class >= {format_value(value)}x slowest on one headline"
    return kind.verdict_bar


def format_labels(labels: Mapping[str, str]) -> str:
    """``{k=v, k=v}`` sorted by key, or the empty string for no labels."""
    if not labels:
        return ""
    return "{" + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelSelector:
    """Which measurements of a metric a threshold looks at, by their labels.

    YAML forms, per label key (all keys must match; labels the selector does not name are ignored)::

        labels:
          op: all_reduce                          # exactly this value (numbers are compared as their text)
          size: ["8589934592", "17179869184"]     # any of these values
          dtype: {in: [bf16, fp16]}               # the same, spelled out
          node: "*"                               # the label must be present, any value

    Nothing richer (no regexes, no numeric ranges): a selector should read as a table lookup, and anything
    cleverer belongs in the parser, which can add a label such as ``scope=intra-node``.
    """

    equals: Mapping[str, frozenset[str]] = field(default_factory=dict)
    present: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        overlap = set(self.equals) & self.present
        if overlap:
            raise ValueError(f"label selector names {sorted(overlap)} both as a value and as '*'")
        if any(not values for values in self.equals.values()):
            raise ValueError("label selector has a key with an empty list of values")

    @classmethod
    def parse(cls, spec: Mapping[str, Any] | None) -> LabelSelector:
        """A selector from its YAML form (see the class docstring); raises ValueError naming the bad key."""
        equals: dict[str, frozenset[str]] = {}
        present: set[str] = set()
        for key, raw in (spec or {}).items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"label key {key!r} must be a non-empty string")
            values = raw
            if isinstance(raw, Mapping):
                if set(raw) != {"in"}:
                    raise ValueError(f"{key}: the mapping form is {{in: [values]}}, got keys {sorted(map(str, raw))}")
                values = raw["in"]
                if not isinstance(values, list):
                    raise ValueError(f"{key}.in: expected a list of values, got {type(values).__name__}")
            if isinstance(values, list):
                if not values:
                    raise ValueError(f"{key}: empty list of values matches nothing")
                equals[key] = frozenset(_label_text(key, v) for v in values)
            elif values == "*":
                present.add(key)
            else:
                equals[key] = frozenset({_label_text(key, values)})
        return cls(equals=equals, present=frozenset(present))

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, values in self.equals.items():
            if labels.get(key) not in values:
                return False
        return all(key in labels for key in self.present)

    def __bool__(self) -> bool:
        return bool(self.equals or self.present)

    def __str__(self) -> str:
        parts = []
        for key in sorted([*self.equals, *self.present]):
            if key in self.present:
                parts.append(f"{key}=*")
            else:
                values = sorted(self.equals[key])
                parts.append(f"{key}={values[0]}" if len(values) == 1 else f"{key} in [{', '.join(values)}]")
        return "{" + ", ".join(parts) + "}" if parts else ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: "*" for k in sorted(self.present)}
        for key, values in sorted(self.equals.items()):
            out[key] = next(iter(values)) if len(values) == 1 else sorted(values)
        return out


def _label_text(key: str, value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{key}: label values are strings or numbers, got {type(value).__name__}")
    return str(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Threshold:
    """A bar for one metric of one workload.

    Exactly one rule kind (:attr:`kind`):

    - ``absolute``: ``comparison``, ``value`` and ``unit`` are set; the observed value (converted to ``unit``)
      must satisfy ``observed <comparison> value``.
    - ``regression``: ``comparison`` and ``regression_pct`` are set (``unit`` optional, for display): the
      observed value may be worse than the baseline run's measurement with the same metric and labels by at
      most ``regression_pct`` percent. "Worse" is lower for ``>=``/``>`` and higher for ``<=``/``<``.
    - ``presence``: none of those are set; at least one measurement must match (any value).

    ``source`` is required: a number nobody can trace is a number nobody can argue with or fix.
    """

    id: str
    workload: str
    metric: str
    source: str
    labels: LabelSelector = field(default_factory=LabelSelector)
    kind: RuleKind = RuleKind.ABSOLUTE
    comparison: Comparison | None = None
    value: float | None = None
    unit: str | None = None
    regression_pct: float | None = None
    severity: Severity = Severity.FAIL
    aggregate: Aggregate = Aggregate.WORST
    description: str = ""
    hint: str = ""

    def __post_init__(self) -> None:
        for name in ("id", "workload", "metric", "source"):
            if not str(getattr(self, name)).strip():
                raise ValueError(f"threshold {self.id or '?'}: {name} must not be empty")
        match self.kind:
            case RuleKind.ABSOLUTE:
                if self.comparison is None or self.value is None or self.unit is None:
                    raise ValueError(f"threshold {self.id}: an absolute rule needs comparison, value and unit")
                if self.regression_pct is not None:
                    raise ValueError(f"threshold {self.id}: an absolute rule takes no regression_pct")
            case RuleKind.REGRESSION:
                if self.comparison is None or self.regression_pct is None:
                    raise ValueError(f"threshold {self.id}: a regression rule needs comparison and regression_pct")
                if self.comparison.higher_is_better is None:
                    raise ValueError(f"threshold {self.id}: a regression rule needs a direction, not '=='")
                if self.value is not None:
                    raise ValueError(f"threshold {self.id}: a regression rule takes no value (the baseline is it)")
                if self.regression_pct < 0:
                    raise ValueError(f"threshold {self.id}: regression_pct must be >= 0")
            case RuleKind.PRESENCE:
                if any(x is not None for x in (self.comparison, self.value, self.unit, self.regression_pct)):
                    raise ValueError(f"threshold {self.id}: a presence rule takes no comparison/value/unit")
            case _:  # a verdict rule: only the tier factor and the split's alpha are numbers
                if any(x is not None for x in (self.comparison, self.unit, self.regression_pct)):
                    raise ValueError(f"threshold {self.id}: a {self.kind} rule takes no comparison/unit/regression_pct")
                if self.kind is RuleKind.FASTER_TIER:
                    if self.value is None or self.value <= 1.0:
                        raise ValueError(f"threshold {self.id}: a {self.kind} rule needs a factor value > 1")
                elif self.kind in (RuleKind.WEIGHTED_SPLIT, RuleKind.NO_SLOW_NODE):
                    if self.value is not None and not 0.0 < self.value < 1.0:
                        raise ValueError(f"threshold {self.id}: a {self.kind} rule's value is a fraction in (0, 1)")
                elif self.value is not None:
                    raise ValueError(f"threshold {self.id}: a {self.kind} rule takes no value")

    @property
    def bar_text(self) -> str:
        """The bar as reports print it: ``>= 460 GB/s``, ``<= 5% worse than baseline``, ``present``, or what a
        verdict rule demands."""
        match self.kind:
            case RuleKind.ABSOLUTE:
                return f"{self.comparison} {format_value(self.value or 0.0)} {self.unit}"
            case RuleKind.REGRESSION:
                return f"{self.comparison} baseline - {format_value(self.regression_pct or 0.0)}%"
            case RuleKind.PRESENCE:
                return "present"
            case _:
                return verdict_bar_text(self.kind, self.value)

    def status_for(self, holds: bool) -> Status:
        """PASSED when the bar holds; otherwise FAILED, or WARNED for a warn-severity threshold."""
        if holds:
            return Status.PASSED
        return Status.FAILED if self.severity is Severity.FAIL else Status.WARNED

    def check(self, **outcome: Any) -> Check:
        """A Check carrying this threshold's identity (id, workload, metric, kind, severity, source, selector,
        description, hint) plus the ``outcome`` (status, observed, bar, ...): the one place a check is made."""
        return Check(
            threshold_id=self.id,
            workload=self.workload,
            metric=self.metric,
            kind=self.kind,
            severity=self.severity,
            source=self.source,
            selector=self.labels,
            description=self.description,
            hint=self.hint,
            **outcome,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Match:
    """Capability conditions under which a profile applies; every condition set must hold.

    The facts come from capabilities discovery, a flat mapping with these keys (absent keys never match a set
    condition): ``accelerator`` (``none``/``nvidia``/``tpu``), ``gpu_product`` (the GFD label
    ``nvidia.com/gpu.product``, e.g. ``NVIDIA-H100-80GB-HBM3``), ``gpu_count_per_node`` (GPUs on a GPU node),
    ``rdma`` (RDMA resources advertised), ``embedded`` (the target is the built-in one), ``tpu_type``
    (GKE's ``cloud.google.com/gke-tpu-accelerator``, e.g. ``tpu-v5-lite-podslice``). Regexes use ``re.search``.
    """

    accelerator: Accelerator | None = None
    gpu_product_regex: str | None = None
    gpu_count_per_node: int | None = None
    rdma: bool | None = None
    embedded: bool | None = None
    tpu_type_regex: str | None = None

    FIELDS = ("accelerator", "gpu_product_regex", "gpu_count_per_node", "rdma", "embedded", "tpu_type_regex")

    @property
    def specificity(self) -> int:
        """How many conditions are set: among matching profiles the most specific one wins."""
        return sum(getattr(self, name) is not None for name in self.FIELDS)

    def mismatches(self, facts: Mapping[str, Any]) -> list[str]:
        """Why these facts do not satisfy the conditions, one phrase per failed condition (empty: they do)."""
        out: list[str] = []
        if self.accelerator is not None and str(facts.get("accelerator", "")) != self.accelerator:
            out.append(f"accelerator: want {self.accelerator}, have {facts.get('accelerator', 'unknown')}")
        if self.gpu_product_regex is not None and not re.search(
            self.gpu_product_regex, str(facts.get("gpu_product") or "")
        ):
            out.append(f"gpu_product {facts.get('gpu_product') or 'unknown'} does not match /{self.gpu_product_regex}/")
        if self.gpu_count_per_node is not None and facts.get("gpu_count_per_node") != self.gpu_count_per_node:
            out.append(
                f"gpu_count_per_node: want {self.gpu_count_per_node}, have {facts.get('gpu_count_per_node', 'unknown')}"
            )
        for name in ("rdma", "embedded"):
            want = getattr(self, name)
            if want is not None and facts.get(name) is not want:
                out.append(f"{name}: want {str(want).lower()}, have {str(facts.get(name, 'unknown')).lower()}")
        if self.tpu_type_regex is not None and not re.search(self.tpu_type_regex, str(facts.get("tpu_type") or "")):
            out.append(f"tpu_type {facts.get('tpu_type') or 'unknown'} does not match /{self.tpu_type_regex}/")
        return out

    def describe(self, facts: Mapping[str, Any]) -> str:
        """What about the facts made this match, for the "matched <profile>: ..." line."""
        parts: list[str] = []
        if self.gpu_product_regex is not None or self.gpu_count_per_node is not None:
            parts.append(f"{facts.get('gpu_count_per_node', '?')}x {facts.get('gpu_product', '?')} per node")
        elif self.accelerator is Accelerator.NONE:
            parts.append("no accelerators")
        elif self.accelerator is not None and self.tpu_type_regex is None:
            parts.append(f"accelerator {self.accelerator}")
        if self.tpu_type_regex is not None:
            parts.append(f"TPU {facts.get('tpu_type', '?')}")
        if self.rdma is not None:
            parts.append("RDMA present" if self.rdma else "no RDMA")
        if self.embedded is not None:
            parts.append("embedded target" if self.embedded else "external cluster")
        return ", ".join(parts) or "no conditions"


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """The thresholds for one hardware class, grouped by workload, after ``extends`` has been resolved.

    ``match`` is None for profiles that are only ever chosen explicitly (bases meant to be extended).
    ``extends`` records the parent's name for reports; the parent's thresholds are already merged in
    (the child's override the parent's by id).
    """

    name: str
    description: str
    thresholds: Mapping[str, tuple[Threshold, ...]]
    match: Match | None = None
    extends: str | None = None
    path: str | None = None

    def thresholds_for(self, workload: str) -> tuple[Threshold, ...]:
        return self.thresholds.get(workload, ())

    def all_thresholds(self) -> list[Threshold]:
        return [t for group in self.thresholds.values() for t in group]

    def evaluate(
        self,
        workload: str,
        measurements: Sequence[Measurement],
        *,
        baseline: Mapping[str, Sequence[Measurement]] | None = None,
    ) -> list[Check]:
        """Shortcut for :func:`harness.thresholds.evaluate.evaluate` on this profile."""
        from harness.thresholds.evaluate import evaluate

        return evaluate(self, workload, measurements, baseline=baseline)


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One threshold evaluated on measurements.

    ``observed`` is in ``unit`` (the threshold's unit; for presence checks None). ``bar`` is the number the
    observed value was compared with: the threshold's value, or for a regression rule the limit derived from
    ``baseline_value``. ``labels`` are the judged measurement's labels (for ``mean`` the labels all matched
    measurements share). ``emulated`` is True when any judged measurement came from emulated hardware, so reports
    can label the check. ``detail`` says why a check has no data when that is not simply "nothing matched".
    The message is built on demand: evaluation may create 100,000 checks, and most are never printed.

    The fields stand in the order results.jsonl records them (:meth:`to_dict`, read back by
    :class:`harness.reporting.schema.CheckEntry` with the same fields in the same order).
    """

    threshold_id: str
    workload: str
    metric: str
    kind: RuleKind
    status: Status
    severity: Severity
    observed: float | None = None
    unit: str | None = None
    comparison: Comparison | None = None
    bar: float | None = None
    baseline_value: float | None = None
    regression_pct: float | None = None
    selector: LabelSelector
    labels: Mapping[str, str] = field(default_factory=dict)
    matched: int = 0
    emulated: bool = False
    source: str
    description: str = ""
    hint: str = ""
    detail: str = ""

    @property
    def counts_as_failure(self) -> bool:
        """Failed checks and checks without data fail a test; warnings do not."""
        return self.status in (Status.FAILED, Status.NO_DATA)

    @property
    def bar_text(self) -> str:
        if self.kind is RuleKind.PRESENCE:
            return "present"
        if self.kind.is_verdict:
            return verdict_bar_text(self.kind, self.bar)
        if self.bar is None:
            return f"{self.comparison} baseline - {format_value(self.regression_pct or 0.0)}%"
        text = f"{self.comparison} {format_value(self.bar)} {self.unit}"
        if self.kind is RuleKind.REGRESSION and self.baseline_value is not None:
            pct = format_value(self.regression_pct or 0.0)
            text += f" (baseline {format_value(self.baseline_value)} {self.unit} - {pct}%)"
        return text

    @property
    def message(self) -> str:
        """One line: ``<id>: <metric>{labels} = <observed> <unit>, bar <bar> (source: ...)[; hint: ...]``."""
        if self.status is Status.NO_DATA:
            text = f"{self.threshold_id}: no data for {self.metric}{self.selector}"
            return text + (f" ({self.detail})" if self.detail else "")
        if self.kind is RuleKind.PRESENCE:
            return (
                f"{self.threshold_id}: {self.metric}{self.selector} present "
                f"({self.matched} measurement{'s' if self.matched != 1 else ''})"
            )
        if self.kind.is_verdict:  # the verdict's own sentence says what was seen and why it passes or fails
            text = f"{self.threshold_id}: {self.detail}{' [emulated]' if self.emulated else ''} (source: {self.source})"
            return text + (f"; hint: {self.hint}" if self.hint and self.status is not Status.PASSED else "")
        emulated = " [emulated]" if self.emulated else ""
        text = (
            f"{self.threshold_id}: {self.metric}{format_labels(self.labels)} = "
            f"{format_value(self.observed or 0.0)} {self.unit}{emulated}, bar {self.bar_text} "
            f"(source: {self.source})"
        )
        if self.hint and self.status is not Status.PASSED:
            text += f"; hint: {self.hint}"
        return text

    def __str__(self) -> str:
        return f"[{self.status}] {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """The check as results.jsonl stores it: its fields (enums as their strings, the selector in its YAML
        spelling) and the message, so a report prints what the run printed."""
        return {**as_record(self), "message": self.message}


class Checks(list[Check]):
    """The checks of one evaluation, plus why there are none when there are none.

    A plain list cannot say whether "no checks" means "the profile has no bar for this" (measured, not judged: a
    skip that says so) or "nothing was measured" (missing data: a failure). :func:`~harness.thresholds.evaluate`
    knows both and records them here, so :func:`~harness.thresholds.assert_passed` applies one rule for every test.
    """

    def __init__(self, checks: Sequence[Check] = (), *, unjudged: str = "", measured: int | None = None) -> None:
        super().__init__(checks)
        self.unjudged = unjudged  # why no threshold applied, e.g. "profile cpu-only has no fio thresholds"
        self.measured = measured  # how many measurements were offered; None when unknown
