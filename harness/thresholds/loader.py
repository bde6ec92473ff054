"""Strict loading of ``suites/profiles/<name>.yaml`` and choosing a profile from capability facts.

Strict because a typo in a profile must never turn into a bar that silently does not apply: unknown keys,
duplicate keys, wrong types, unknown units, unknown workloads, a missing source or a bad comparison are all
:class:`ConfigError` with one line ``<file>: <key path>: <what is wrong>``, e.g.
``suites/profiles/h100.yaml: thresholds.nccl-allreduce[2].unit: unknown unit 'GBps'; did you mean 'GB/s'?``.

Schema (every key but ``name``, ``extends`` and ``match`` is required; see the shipped profiles for more)::

    name: h100-sxm-8x-ib400            # optional; must equal the file name without .yaml
    description: 8x H100 SXM per node, NVLink4/NVSwitch, 8x 400G InfiniBand
    extends: cpu-only                  # optional: inherit its thresholds; ours override theirs by id
    match:                             # optional: capability conditions for automatic choice (all must hold)
      accelerator: nvidia              # none | nvidia | tpu
      gpu_product_regex: "H100.*HBM3"  # re.search on nvidia.com/gpu.product
      gpu_count_per_node: 8
      rdma: true                       # also: embedded: bool, tpu_type_regex: str
    thresholds:
      nccl-allreduce:                  # workload name -> list of thresholds
        - id: h100-nccl-intra-busbw    # unique in the profile (after extends)
          metric: busbw
          labels: {op: all_reduce, scope: intra-node, size: ["8589934592", "17179869184"]}
          comparison: ">="             # >= <= > < ==
          value: 460                   # absolute rule ...
          unit: GB/s
          # regression_pct: 5          # ... or regression rule (comparison gives the direction), or
          # present: true              # ... presence rule (no comparison/value/unit), or
          # rule: no-corruption        # ... a verdict rule, tuning the built-in one of that kind (see
                                       #     harness/thresholds/verdicts.py; faster-tier-faster takes value as its
                                       #     factor, split-within-binomial as alpha, no-slow-node as tolerance)
          aggregate: max               # worst (default) | min | max | mean | each
          severity: fail               # fail (default) | warn
          source: "Azure/azurehpc-health-checks conf/nd96isr_h100_v5.conf: check_nccl_allreduce 460.0 at 16G"
          description: ...             # optional
          hint: ...                    # optional: likely cause, shown when the check fails
"""

from __future__ import annotations

import difflib
import functools
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from harness.errors import ConfigError
from harness.thresholds.model import (
    WORKLOADS,
    Accelerator,
    Aggregate,
    Comparison,
    LabelSelector,
    Match,
    Profile,
    RuleKind,
    Severity,
    Threshold,
)
from harness.units import UNITS
from harness.yamlfile import display_path, read_yaml

__all__ = ["DEFAULT_PROFILES_DIR", "available_profiles", "load_profile", "match_profile", "validate_profile_file"]

log = logging.getLogger(__name__)

#: Where the shipped profiles live (``suites/profiles`` beside the suites, DESIGN.md section 2).
DEFAULT_PROFILES_DIR = Path(__file__).resolve().parents[2] / "suites" / "profiles"

_TOP_KEYS = ("name", "description", "extends", "match", "thresholds")
_THRESHOLD_KEYS = (
    "id",
    "metric",
    "labels",
    "comparison",
    "value",
    "unit",
    "regression_pct",
    "present",
    "rule",
    "severity",
    "aggregate",
    "source",
    "description",
    "hint",
)
_E = TypeVar("_E", Comparison, Severity, Aggregate, Accelerator, RuleKind)
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class _Invalid(Exception):
    """A problem at a key path inside one file; turned into a ConfigError naming the file."""

    def __init__(self, key_path: str, message: str) -> None:
        super().__init__(message)
        self.key_path = key_path
        self.message = message


def _display(path: Path) -> str:
    """The path as messages show it: relative to the working directory when it is below it."""
    return display_path(path)


def _read_yaml(path: Path) -> Any:
    if not path.exists() and not path.is_symlink():
        raise ConfigError(f"{_display(path)}: no such profile file")
    return read_yaml(path)


# --- field readers: each raises _Invalid(key path, what is wrong) -------------------------------------------------


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _Invalid(where, f"expected a mapping, got {_type_name(value)}")
    for key in value:
        if not isinstance(key, str):
            raise _Invalid(where, f"keys must be strings, got {key!r}")
    return value


def _check_keys(data: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            suggestion = f"; did you mean '{close[0]}'?" if close else f" (allowed: {', '.join(allowed)})"
            raise _Invalid(f"{where}.{key}" if where else key, f"unknown key{suggestion}")


def _string(value: Any, where: str, *, required: bool = True) -> str:
    if not isinstance(value, str):
        raise _Invalid(where, f"expected a string, got {_type_name(value)}")
    if required and not value.strip():
        raise _Invalid(where, "must not be empty")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(where, f"expected a number, got {_type_name(value)} {value!r}")
    if not math.isfinite(value):
        raise _Invalid(where, f"must be a finite number, got {value!r}")
    return float(value)


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(where, f"expected true or false, got {_type_name(value)} {value!r}")
    return value


def _choice(enum: type[_E], value: Any, where: str) -> _E:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(f"'{m.value}'" for m in enum)
        raise _Invalid(where, f"{value!r} is not one of {allowed}") from None


def _regex(value: Any, where: str) -> str:
    text = _string(value, where)
    try:
        re.compile(text)
    except re.error as exc:
        raise _Invalid(where, f"invalid regex: {exc}") from None
    return text


def _unit(value: Any, where: str) -> str:
    text = _string(value, where)
    if text not in UNITS:
        close = difflib.get_close_matches(text, list(UNITS), n=1, cutoff=0.5)
        raise _Invalid(where, f"unknown unit {text!r}" + (f"; did you mean '{close[0]}'?" if close else ""))
    return text


def _parse_match(value: Any, where: str) -> Match:
    data = _mapping(value, where)
    _check_keys(data, Match.FIELDS, where)
    if not data:
        raise _Invalid(where, "empty match matches every target; omit it for a profile chosen only explicitly")
    kwargs: dict[str, Any] = {}
    for key, raw in data.items():
        at = f"{where}.{key}"
        if key == "accelerator":
            kwargs[key] = _choice(Accelerator, raw, at)
        elif key.endswith("_regex"):
            kwargs[key] = _regex(raw, at)
        elif key == "gpu_count_per_node":
            if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
                raise _Invalid(at, f"expected a positive integer, got {raw!r}")
            kwargs[key] = raw
        else:
            kwargs[key] = _bool(raw, at)
    return Match(**kwargs)


def _parse_threshold(value: Any, workload: str, where: str) -> Threshold:
    data = _mapping(value, where)
    _check_keys(data, _THRESHOLD_KEYS, where)
    for key in ("id", "metric", "source"):
        if key not in data:
            raise _Invalid(f"{where}.{key}", "required")
    threshold_id = _string(data["id"], f"{where}.id")
    if not _ID_RE.match(threshold_id):
        raise _Invalid(f"{where}.id", f"{threshold_id!r} must be lower-case letters, digits, '.', '_' or '-'")
    metric = _string(data["metric"], f"{where}.metric")
    source = _string(data["source"], f"{where}.source")
    try:
        labels = LabelSelector.parse(_mapping(data.get("labels") or {}, f"{where}.labels"))
    except ValueError as exc:
        raise _Invalid(f"{where}.labels", str(exc)) from None

    kwargs: dict[str, Any] = {}
    if "rule" in data:
        kind = _verdict_kind(data, where)
        if "value" in data:
            kwargs["value"] = _number(data["value"], f"{where}.value")
        return _finish(data, where, threshold_id, workload, metric, source, labels, kind, kwargs)
    present = "present" in data
    regression = "regression_pct" in data
    absolute = "value" in data
    if present + regression + absolute != 1:
        raise _Invalid(
            where, "needs exactly one rule: value (absolute), regression_pct (against a baseline) or present: true"
        )
    if present:
        if not _bool(data["present"], f"{where}.present"):
            raise _Invalid(f"{where}.present", "present: false is not a rule; remove the threshold instead")
        for key in ("comparison", "unit", "aggregate"):
            if key in data:
                raise _Invalid(f"{where}.{key}", "a presence rule takes no comparison, unit or aggregate")
        kind = RuleKind.PRESENCE
    else:
        if "comparison" not in data:
            raise _Invalid(f"{where}.comparison", "required (one of '>=', '<=', '>', '<', '==')")
        comparison = _choice(Comparison, data["comparison"], f"{where}.comparison")
        kwargs["comparison"] = comparison
        if absolute:
            kind = RuleKind.ABSOLUTE
            kwargs["value"] = _number(data["value"], f"{where}.value")
            if "unit" not in data:
                raise _Invalid(f"{where}.unit", "required with value")
            kwargs["unit"] = _unit(data["unit"], f"{where}.unit")
        else:
            kind = RuleKind.REGRESSION
            if comparison.higher_is_better is None:
                raise _Invalid(f"{where}.comparison", "a regression rule needs a direction ('>=', '>', '<=' or '<')")
            pct = _number(data["regression_pct"], f"{where}.regression_pct")
            if pct < 0:
                raise _Invalid(f"{where}.regression_pct", f"must be >= 0, got {data['regression_pct']!r}")
            kwargs["regression_pct"] = pct
            if "unit" in data:
                kwargs["unit"] = _unit(data["unit"], f"{where}.unit")
        if "aggregate" in data:
            kwargs["aggregate"] = _choice(Aggregate, data["aggregate"], f"{where}.aggregate")
    return _finish(data, where, threshold_id, workload, metric, source, labels, kind, kwargs)


def _verdict_kind(data: Mapping[str, Any], where: str) -> RuleKind:
    """The verdict rule kind of a threshold that names ``rule:``; it takes none of the numeric rules' keys."""
    verdicts = [k for k in RuleKind if k.is_verdict]
    kind = _choice(RuleKind, data["rule"], f"{where}.rule")
    if not kind.is_verdict:
        allowed = ", ".join(f"'{k}'" for k in verdicts)
        raise _Invalid(f"{where}.rule", f"'{kind}' is written without rule:; rule: takes a verdict kind ({allowed})")
    for key in ("present", "regression_pct", "comparison", "unit", "aggregate"):
        if key in data:
            raise _Invalid(f"{where}.{key}", f"a {kind} rule takes no {key}")
    numeric = (RuleKind.FASTER_TIER, RuleKind.WEIGHTED_SPLIT, RuleKind.NO_SLOW_NODE)
    if "value" in data and kind not in numeric:
        raise _Invalid(
            f"{where}.value",
            f"a {kind} rule takes no value (only {RuleKind.FASTER_TIER} has a factor, {RuleKind.WEIGHTED_SPLIT} "
            f"alpha, {RuleKind.NO_SLOW_NODE} a tolerance)",
        )
    if kind is RuleKind.FASTER_TIER and "value" in data and _number(data["value"], f"{where}.value") <= 1:
        raise _Invalid(f"{where}.value", f"the tier factor must be > 1, got {data['value']!r}")
    fraction = (RuleKind.WEIGHTED_SPLIT, RuleKind.NO_SLOW_NODE)
    if kind in fraction and "value" in data and not 0 < _number(data["value"], f"{where}.value") < 1:
        raise _Invalid(f"{where}.value", f"must be a fraction in (0, 1), got {data['value']!r}")
    return kind


def _finish(
    data: Mapping[str, Any],
    where: str,
    threshold_id: str,
    workload: str,
    metric: str,
    source: str,
    labels: LabelSelector,
    kind: RuleKind,
    kwargs: dict[str, Any],
) -> Threshold:
    """Severity, description and hint, then the Threshold (its own checks are the last line of defence)."""
    if "severity" in data:
        kwargs["severity"] = _choice(Severity, data["severity"], f"{where}.severity")
    for key in ("description", "hint"):
        if key in data:
            kwargs[key] = _string(data[key], f"{where}.{key}", required=False)
    try:
        return Threshold(
            id=threshold_id, workload=workload, metric=metric, source=source, labels=labels, kind=kind, **kwargs
        )
    except ValueError as exc:  # defensive: the checks above should have caught it with a better key path
        raise _Invalid(where, str(exc)) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class _ProfileFile:
    name: str
    description: str
    extends: str | None
    match: Match | None
    thresholds: tuple[Threshold, ...]


def _parse_file(path: Path) -> _ProfileFile:
    doc = _read_yaml(path)
    try:
        return _parse_document(doc, path.stem)
    except _Invalid as exc:
        raise ConfigError(f"{_display(path)}: {exc.key_path}: {exc.message}") from None


def _parse_document(doc: Any, stem: str) -> _ProfileFile:
    if doc is None:
        raise _Invalid("(top)", "the file is empty")
    data = _mapping(doc, "(top)")
    _check_keys(data, _TOP_KEYS, "")
    name = stem
    if "name" in data:
        name = _string(data["name"], "name")
        if name != stem:
            raise _Invalid("name", f"{name!r} differs from the file name {stem!r}; profiles are found by file name")
    if "description" not in data:
        raise _Invalid("description", "required")
    description = _string(data["description"], "description")
    extends = None
    if data.get("extends") is not None:
        extends = _string(data["extends"], "extends")
        if not _NAME_RE.match(extends):
            raise _Invalid("extends", f"{extends!r} is not a profile name")
    match = _parse_match(data["match"], "match") if data.get("match") is not None else None
    if "thresholds" not in data:
        raise _Invalid("thresholds", "required (a mapping of workload name to a list of thresholds)")
    groups = _mapping(data["thresholds"], "thresholds")
    thresholds: list[Threshold] = []
    seen: dict[str, str] = {}
    for workload, items in groups.items():
        where = f"thresholds.{workload}"
        if workload not in WORKLOADS:
            close = difflib.get_close_matches(workload, sorted(WORKLOADS), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(sorted(WORKLOADS))})"
            raise _Invalid(where, f"unknown workload {workload!r}{hint}")
        if not isinstance(items, list) or not items:
            raise _Invalid(where, f"expected a non-empty list of thresholds, got {_type_name(items)}")
        for i, item in enumerate(items):
            at = f"{where}[{i}]"
            threshold = _parse_threshold(item, workload, at)
            if threshold.id in seen:
                raise _Invalid(f"{at}.id", f"duplicate id {threshold.id!r} (also at {seen[threshold.id]})")
            seen[threshold.id] = at
            thresholds.append(threshold)
    return _ProfileFile(name=name, description=description, extends=extends, match=match, thresholds=tuple(thresholds))


def _resolve(path: Path, stack: tuple[Path, ...]) -> Profile:
    path = path.resolve()
    if path in stack:
        chain = " -> ".join(p.stem for p in (*stack, path))
        raise ConfigError(f"{_display(stack[-1])}: extends: cycle {chain}")
    parsed = _parse_file(path)
    merged: dict[str, Threshold] = {}
    if parsed.extends is not None:
        parent_path = path.parent / f"{parsed.extends}.yaml"
        if not parent_path.is_file():
            raise ConfigError(
                f"{_display(path)}: extends: no profile {parsed.extends!r} in {_display(path.parent)} "
                f"(available: {', '.join(available_profiles(path.parent)) or 'none'})"
            )
        parent = _resolve(parent_path, (*stack, path))
        merged = {t.id: t for t in parent.all_thresholds()}
    for threshold in parsed.thresholds:
        merged[threshold.id] = threshold  # overrides keep the parent's position; new ones go last
    grouped: dict[str, list[Threshold]] = {}
    for threshold in merged.values():
        grouped.setdefault(threshold.workload, []).append(threshold)
    return Profile(
        name=parsed.name,
        description=parsed.description,
        match=parsed.match,
        extends=parsed.extends,
        thresholds={w: tuple(ts) for w, ts in grouped.items()},
        path=str(path),
    )


def _is_path(name_or_path: str | Path) -> bool:
    if isinstance(name_or_path, Path):
        return True
    return name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path


def available_profiles(profiles_dir: Path | None = None) -> list[str]:
    """Names of the profiles in ``profiles_dir`` (default: the shipped ``suites/profiles``), sorted."""
    directory = profiles_dir or DEFAULT_PROFILES_DIR
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.yaml"))


def load_profile(name_or_path: str | Path, *, profiles_dir: Path | None = None) -> Profile:
    """A profile by name (``h100-sxm-8x-ib400``, looked up in ``profiles_dir``) or by file path, with
    ``extends`` resolved (parents are looked up beside the file). Raises :class:`ConfigError`."""
    if _is_path(name_or_path):
        return _check_dimensions(_resolve(Path(name_or_path), ()), Path(name_or_path))
    directory = profiles_dir or DEFAULT_PROFILES_DIR
    path = directory / f"{name_or_path}.yaml"
    if not path.is_file():
        names = available_profiles(directory)
        close = difflib.get_close_matches(str(name_or_path), names, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            f"unknown profile {name_or_path!r} in {_display(directory)}{hint} (available: {', '.join(names) or 'none'})"
        )
    return _resolve(path, ())


def validate_profile_file(path: str | Path) -> None:
    """Load ``path`` strictly (``extends`` included) and raise :class:`ConfigError` on the first problem.
    Backs ``k8s-ai-bench profile validate FILE``."""
    _check_dimensions(_resolve(Path(path), ()), Path(path))


@functools.cache
def _shipped_dimensions() -> dict[tuple[str, str], tuple[str, str]]:
    """(workload, metric) -> (dimension, profile) as the shipped profiles state them: the parsers' units are
    checked against those profiles by the suites' own tests, so they are the reference a user's file is held to."""
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for name in available_profiles(DEFAULT_PROFILES_DIR):
        for threshold in _resolve(DEFAULT_PROFILES_DIR / f"{name}.yaml", ()).all_thresholds():
            if threshold.unit:
                found.setdefault((threshold.workload, threshold.metric), (UNITS[threshold.unit].dimension, name))
    return found


def _check_dimensions(profile: Profile, path: Path) -> Profile:
    """A bar in a unit of the wrong kind for its metric (``ms`` on a bandwidth bar) is refused now, not at run time
    when the measurement cannot be converted."""
    reference = _shipped_dimensions()
    for threshold in profile.all_thresholds():
        known = reference.get((threshold.workload, threshold.metric))
        if threshold.unit and known and UNITS[threshold.unit].dimension != known[0]:
            raise ConfigError(
                f"{_display(path)}: thresholds.{threshold.workload} {threshold.id}: unit {threshold.unit!r} is "
                f"{UNITS[threshold.unit].dimension}, but {threshold.workload} {threshold.metric} is measured as "
                f"{known[0]} (as in profile {known[1]})"
            )
    return profile


def match_profile(
    facts: Mapping[str, Any],
    *,
    profiles_dir: Path | None = None,
    fallback: str | None = "cpu-only",
) -> tuple[Profile, str]:
    """The most specific profile whose ``match`` holds for the capability ``facts``, and why it was chosen.

    Facts are a flat mapping (see :class:`~harness.thresholds.model.Match` for the keys). Among matching profiles
    the one with the most conditions wins; two winners with the same number of conditions are ambiguous, a
    :class:`ConfigError` telling the user to pass ``--profile``. When nothing matches, ``fallback`` is used (the
    reason says which profile came closest and why it did not match); ``fallback=None`` raises instead.
    """
    directory = profiles_dir or DEFAULT_PROFILES_DIR
    profiles = [load_profile(name, profiles_dir=directory) for name in available_profiles(directory)]
    matching: list[Profile] = []
    misses: list[tuple[int, int, str, str]] = []
    for profile in profiles:
        if profile.match is None:
            continue
        mismatches = profile.match.mismatches(facts)
        if mismatches:
            misses.append((len(mismatches), -profile.match.specificity, profile.name, "; ".join(mismatches)))
        else:
            matching.append(profile)
    if matching:
        matching.sort(key=lambda p: (-_specificity(p), p.name))
        best = matching[0]
        if len(matching) > 1 and _specificity(matching[1]) == _specificity(best):
            raise ConfigError(
                f"profiles {best.name} and {matching[1].name} both match this target equally "
                f"well; choose one with --profile"
            )
        assert best.match is not None
        reason = f"matched {best.name}: {best.match.describe(facts)}"
        log.info("%s", reason)
        return best, reason
    closest = min(misses, default=None)  # fewest failed conditions, then the most specific profile
    why = f"closest {closest[2]}: {closest[3]}" if closest else "no profile has match conditions"
    if fallback is None:
        raise ConfigError(f"no profile in {_display(directory)} matches this target ({why}); choose one with --profile")
    profile = load_profile(fallback, profiles_dir=directory)
    reason = f"no profile matched ({why}); using fallback {profile.name}"
    log.info("%s", reason)
    return profile, reason


def _specificity(profile: Profile) -> int:
    return profile.match.specificity if profile.match is not None else -1
