"""Thresholds, profiles, checks and their evaluation (DESIGN.md section 6).

Flow: :func:`load_profile` (or :func:`match_profile` from capability facts) -> :func:`evaluate` on a workload's
measurements -> :func:`assert_passed` on the checks.

Decisions worth knowing:

- ``no-data`` (no measurement matched a threshold) counts as a failure for both severities: a warn-level bar whose
  metric never appeared means the parser or workload is broken, which is never only a warning.
- A bar whose unit cannot be compared with a matching measurement's unit is a :class:`~harness.errors.ConfigError`
  naming the threshold and both units, not a failed check.
- Regression rules are skipped when no baseline is given, and ``no-data`` when the baseline lacks the measurement.
- Checks on emulated measurements carry ``emulated=True`` and their message says ``[emulated]``.
"""

from __future__ import annotations

from harness.thresholds.assertions import assert_passed, failure_message
from harness.thresholds.evaluate import MeasurementIndex, evaluate, evaluate_thresholds
from harness.thresholds.loader import (
    DEFAULT_PROFILES_DIR,
    available_profiles,
    load_profile,
    match_profile,
    validate_profile_file,
)
from harness.thresholds.model import (
    WORKLOADS,
    Accelerator,
    Aggregate,
    Check,
    Comparison,
    LabelSelector,
    Match,
    Profile,
    RuleKind,
    Severity,
    Status,
    Threshold,
)

__all__ = [
    "DEFAULT_PROFILES_DIR",
    "WORKLOADS",
    "Accelerator",
    "Aggregate",
    "Check",
    "Comparison",
    "LabelSelector",
    "Match",
    "MeasurementIndex",
    "Profile",
    "RuleKind",
    "Severity",
    "Status",
    "Threshold",
    "assert_passed",
    "available_profiles",
    "evaluate",
    "evaluate_thresholds",
    "failure_message",
    "load_profile",
    "match_profile",
    "validate_profile_file",
]
