"""The Prometheus text exposition reader on real dcgm-exporter output and on the format's edge cases."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness.errors import ParseError
from harness.parsers.exposition import parse_exposition

DATA = Path(__file__).resolve().parents[1] / "data"
ISSUE_363 = DATA / "dcgm-exporter_no-pod-labels_driver-version-label_rtxa5000_dcgm-exporter-issue363.prom"


def test_dcgm_exporter_issue_363_output() -> None:
    samples = parse_exposition(ISSUE_363.read_text())
    assert [(s.name, s.value) for s in samples] == [("DCGM_FI_DEV_GPU_UTIL", 0.0), ("DCGM_FI_DEV_FB_USED", 21383.0)]
    util = samples[0].labels
    assert util["Hostname"] == "k8s-gpu1"
    assert util["modelName"] == "NVIDIA RTX A5000"
    assert util["DCGM_FI_DRIVER_VERSION"] == "550.54.15"
    assert "pod" not in util


def test_escapes_special_values_timestamps_and_empty_labels() -> None:
    text = (
        '# HELP x a "help" line\n'
        "# TYPE x gauge\n"
        'x{path="C:\\\\dir",msg="say \\"hi\\"\\nbye"} NaN 1700000000000\n'
        "y{} +Inf\n"
        "z -Inf\n"
        "\n"
        "up 1\n"
    )
    x, y, z, up = parse_exposition(text)
    assert x.labels["path"] == "C:\\dir"
    assert x.labels["msg"] == 'say "hi"\nbye'
    assert math.isnan(x.value)
    assert y.value == math.inf and y.labels == {"__name__": "y"}
    assert z.value == -math.inf
    assert up.value == 1.0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('x{a="1" 3', "malformed labels"),
        ("x", "expected 'value"),
        ("x one", "not a sample value"),
        ('{a="1"} 3', "no metric name"),
    ],
)
def test_malformed_lines_name_the_line(line: str, message: str) -> None:
    with pytest.raises(ParseError, match=f"line 2: .*{message}|line 2: {message}"):
        parse_exposition("ok 1\n" + line + "\n")
