"""Strict profile loading: every problem is one ConfigError line ``<file>: <key path>: <what is wrong>``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.thresholds import (
    Aggregate,
    RuleKind,
    Severity,
    available_profiles,
    load_profile,
    match_profile,
    validate_profile_file,
)

GOOD = """\
description: test profile
match: {accelerator: nvidia, gpu_product_regex: H100, gpu_count_per_node: 8, rdma: true}
thresholds:
  nccl-allreduce:
    - id: intra
      metric: busbw
      labels: {op: all_reduce, size: ["8589934592", 17179869184], node: "*"}
      comparison: ">="
      value: 460
      unit: GB/s
      aggregate: max
      source: azure nhc
      hint: check NVLink
    - id: regress
      metric: busbw
      comparison: ">="
      regression_pct: 5
      source: "baseline:run-1"
    - id: present
      metric: busbw
      present: true
      source: project rule
      severity: warn
"""


@pytest.fixture
def profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    directory = tmp_path / "suites" / "profiles"
    directory.mkdir(parents=True)
    return directory


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        validate_profile_file(path)
    return str(info.value)


def test_good_profile_loads(profiles):
    write(profiles, "good", GOOD)
    profile = load_profile("good", profiles_dir=profiles)
    intra, regress, present = profile.thresholds_for("nccl-allreduce")
    assert profile.name == "good"
    assert intra.aggregate is Aggregate.MAX and intra.value == 460.0 and intra.hint == "check NVLink"
    assert intra.labels.equals["size"] == frozenset({"8589934592", "17179869184"})
    assert intra.labels.present == frozenset({"node"})
    assert regress.kind is RuleKind.REGRESSION and regress.regression_pct == 5.0 and regress.unit is None
    assert present.kind is RuleKind.PRESENCE and present.severity is Severity.WARN
    assert load_profile(profiles / "good.yaml") == profile


def bad(text_change: tuple[str, str]) -> str:
    old, new = text_change
    assert old in GOOD
    return GOOD.replace(old, new, 1)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("      unit: GB/s\n", "      unit: GBps\n"),
            "thresholds.nccl-allreduce[0].unit: unknown unit 'GBps'; did you mean 'GB/s'?",
        ),
        (
            ('      comparison: ">="\n      value', '      comparison: "=>"\n      value'),
            "thresholds.nccl-allreduce[0].comparison: '=>' is not one of '>=', '<=', '>', '<', '=='",
        ),
        (("      source: azure nhc\n", ""), "thresholds.nccl-allreduce[0].source: required"),
        (
            ("      source: azure nhc\n", "      source: '  '\n"),
            "thresholds.nccl-allreduce[0].source: must not be empty",
        ),
        (
            ("      hint: check NVLink\n", "      hints: check NVLink\n"),
            "thresholds.nccl-allreduce[0].hints: unknown key; did you mean 'hint'?",
        ),
        (
            ("      value: 460\n", "      value: fast\n"),
            "thresholds.nccl-allreduce[0].value: expected a number, got str 'fast'",
        ),
        (
            ("      aggregate: max\n", "      aggregate: median\n"),
            "thresholds.nccl-allreduce[0].aggregate: 'median' is not one of 'worst', 'min', 'max', 'mean', 'each'",
        ),
        (
            ("      severity: warn\n", "      severity: error\n"),
            "thresholds.nccl-allreduce[2].severity: 'error' is not one of 'fail', 'warn'",
        ),
        (
            ("  nccl-allreduce:\n", "  ncc-allreduce:\n"),
            "thresholds.ncc-allreduce: unknown workload 'ncc-allreduce'; did you mean 'nccl-allreduce'?",
        ),
        (
            ("    - id: present\n", "    - id: intra\n"),
            "thresholds.nccl-allreduce[2].id: duplicate id 'intra' (also at thresholds.nccl-allreduce[0])",
        ),
        (
            ("      regression_pct: 5\n", "      regression_pct: 5\n      value: 3\n"),
            "thresholds.nccl-allreduce[1]: needs exactly one rule: value (absolute), "
            "regression_pct (against a baseline) or present: true",
        ),
        (
            ('      comparison: ">="\n      regression_pct', '      comparison: "=="\n      regression_pct'),
            "thresholds.nccl-allreduce[1].comparison: a regression rule needs a direction ('>=', '>', '<=' or '<')",
        ),
        (
            ("      present: true\n", "      present: true\n      unit: GB/s\n"),
            "thresholds.nccl-allreduce[2].unit: a presence rule takes no comparison, unit or aggregate",
        ),
        (
            ("gpu_count_per_node: 8", "gpu_count_per_node: eight"),
            "match.gpu_count_per_node: expected a positive integer, got 'eight'",
        ),
        (("rdma: true", "rdma: yes please"), "match.rdma: expected true or false, got str 'yes please'"),
        (("accelerator: nvidia", "accelerator: amd"), "match.accelerator: 'amd' is not one of 'none', 'nvidia', 'tpu'"),
        (
            ("gpu_product_regex: H100", "gpu_product_regex: 'H100('"),
            "match.gpu_product_regex: invalid regex: missing ), unterminated subpattern at position 4",
        ),
        (
            ("description: test profile\n", "description: test profile\nowner: me\n"),
            "owner: unknown key (allowed: name, description, extends, match, thresholds)",
        ),
        (
            ("description: test profile\n", "name: other\ndescription: test profile\n"),
            "name: 'other' differs from the file name 'bad'; profiles are found by file name",
        ),
        (("description: test profile\n", ""), "description: required"),
        (
            ("      labels: {op: all_reduce,", "      labels: {op: {in: all_reduce},"),
            "thresholds.nccl-allreduce[0].labels: op.in: expected a list of values, got str",
        ),
    ],
)
def test_bad_files_name_file_and_key_path(profiles, change, expected):
    path = write(profiles, "bad", bad(change))
    assert error(path) == f"suites/profiles/bad.yaml: {expected}"


def test_duplicate_yaml_keys_are_rejected(profiles):
    path = write(
        profiles, "dup", GOOD.replace("      aggregate: max\n", "      aggregate: max\n      aggregate: min\n")
    )
    message = error(path)
    assert message.startswith("suites/profiles/dup.yaml: line 12: duplicate key 'aggregate'")


def test_yaml_syntax_error_names_line(profiles):
    path = write(profiles, "syntax", "description: x\nthresholds: [\n")
    assert error(path).startswith("suites/profiles/syntax.yaml: line 3: ")


def test_empty_and_non_mapping_files(profiles):
    assert error(write(profiles, "empty", "")) == "suites/profiles/empty.yaml: (top): the file is empty"
    assert error(write(profiles, "list", "- a\n")) == "suites/profiles/list.yaml: (top): expected a mapping, got list"


def test_missing_file(profiles):
    assert error(profiles / "nope.yaml") == "suites/profiles/nope.yaml: no such profile file"


def test_unknown_profile_name_lists_available(profiles):
    write(profiles, "good", GOOD)
    with pytest.raises(ConfigError, match=r"unknown profile 'goood' .*did you mean 'good'\?.*available: good"):
        load_profile("goood", profiles_dir=profiles)


class TestExtends:
    def test_child_overrides_parent_by_id_and_adds(self, profiles):
        write(
            profiles,
            "base",
            GOOD.replace(
                "match: {accelerator: nvidia, gpu_product_regex: H100, gpu_count_per_node: 8, rdma: true}\n", ""
            ),
        )
        write(
            profiles,
            "child",
            """\
            description: child
            extends: base
            thresholds:
              nccl-allreduce:
                - {id: intra, metric: busbw, comparison: ">=", value: 431, unit: GB/s, source: h200 conf}
              fio:
                - {id: seq, metric: bw, comparison: ">=", value: 100, unit: MiB/s, source: floor}
            """,
        )
        profile = load_profile("child", profiles_dir=profiles)
        assert profile.extends == "base"
        assert profile.match is None  # match is never inherited
        assert [t.id for t in profile.thresholds_for("nccl-allreduce")] == ["intra", "regress", "present"]
        assert profile.thresholds_for("nccl-allreduce")[0].value == 431.0
        assert [t.id for t in profile.thresholds_for("fio")] == ["seq"]

    def test_cycle_is_detected(self, profiles):
        write(profiles, "a", "description: a\nextends: b\nthresholds: {}\n")
        write(profiles, "b", "description: b\nextends: c\nthresholds: {}\n")
        write(profiles, "c", "description: c\nextends: a\nthresholds: {}\n")
        assert error(profiles / "a.yaml") == "suites/profiles/c.yaml: extends: cycle a -> b -> c -> a"

    def test_self_extension_is_a_cycle(self, profiles):
        write(profiles, "me", "description: me\nextends: me\nthresholds: {}\n")
        assert error(profiles / "me.yaml") == "suites/profiles/me.yaml: extends: cycle me -> me"

    def test_missing_parent(self, profiles):
        write(profiles, "orphan", "description: o\nextends: ghost\nthresholds: {}\n")
        assert error(profiles / "orphan.yaml").startswith(
            "suites/profiles/orphan.yaml: extends: no profile 'ghost' in suites/profiles"
        )

    def test_error_in_parent_names_the_parent_file(self, profiles):
        write(profiles, "parent", bad(("      unit: GB/s\n", "      unit: GBps\n")))
        write(profiles, "kid", "description: k\nextends: parent\nthresholds: {}\n")
        assert error(profiles / "kid.yaml").startswith("suites/profiles/parent.yaml: thresholds.nccl-allreduce[0].unit")


class TestMatch:
    H100_FACTS = {
        "accelerator": "nvidia",
        "gpu_product": "NVIDIA-H100-80GB-HBM3",
        "gpu_count_per_node": 8,
        "rdma": True,
        "embedded": False,
    }

    def test_most_specific_wins(self, profiles):
        write(profiles, "any-nvidia", "description: x\nmatch: {accelerator: nvidia}\nthresholds: {}\n")
        write(profiles, "h100", GOOD)
        write(profiles, "cpu-only", "description: x\nmatch: {accelerator: none}\nthresholds: {}\n")
        profile, reason = match_profile(self.H100_FACTS, profiles_dir=profiles)
        assert profile.name == "h100"
        assert reason == "matched h100: 8x NVIDIA-H100-80GB-HBM3 per node, RDMA present"

    def test_equal_specificity_is_ambiguous(self, profiles):
        write(profiles, "one", "description: x\nmatch: {accelerator: nvidia}\nthresholds: {}\n")
        write(profiles, "two", "description: x\nmatch: {rdma: true}\nthresholds: {}\n")
        with pytest.raises(ConfigError, match=r"profiles one and two both match .* --profile"):
            match_profile(self.H100_FACTS, profiles_dir=profiles)

    def test_fallback_says_what_came_closest(self, profiles):
        write(profiles, "h100", GOOD)
        write(profiles, "cpu-only", "description: x\nmatch: {accelerator: none}\nthresholds: {}\n")
        profile, reason = match_profile({**self.H100_FACTS, "rdma": False}, profiles_dir=profiles)
        assert profile.name == "cpu-only"
        assert reason == ("no profile matched (closest h100: rdma: want true, have false); using fallback cpu-only")

    def test_no_fallback_raises(self, profiles):
        write(profiles, "h100", GOOD)
        with pytest.raises(ConfigError, match="no profile in suites/profiles matches this target"):
            match_profile({"accelerator": "none"}, profiles_dir=profiles, fallback=None)

    def test_available_profiles_sorted(self, profiles):
        write(profiles, "b", GOOD)
        write(profiles, "a", GOOD)
        assert available_profiles(profiles) == ["a", "b"]
