"""The TPU JAX workload's result block: slice shape as JAX saw it, and per-chip / all-reduce measurements."""

from __future__ import annotations

import json

import pytest

from harness.errors import ParseError
from harness.parsers.jax_tpu import parse_tpu_result

INFO = {
    "device_count": 8,
    "local_device_count": 4,
    "process_count": 2,
    "process_index": 1,
    "expected_chips": 8,
    "platform": "tpu",
    "device_kind": "TPU v5 lite",
}


def block(info: dict, measurements: list[dict]) -> str:
    body = json.dumps({"measurements": measurements, "info": info})
    return f"aibench: 8 tpu device(s), 4 local\n===AIBENCH-RESULT-BEGIN===\n{body}\n===AIBENCH-RESULT-END===\n"


def chips(ids: range) -> list[dict]:
    rows = []
    for chip in ids:
        labels = {"chip": str(chip), "kind": "TPU v5 lite"}
        rows.append({"metric": "tflops", "value": 150.0, "unit": "TFLOP/s", "labels": {**labels, "dtype": "bf16"}})
        rows.append({"metric": "membw", "value": 700.0, "unit": "GB/s", "labels": labels})
    size = {"op": "psum", "size": "268435456", "chips": "8"}
    rows.append({"metric": "allreduce_busbw", "value": 70.0, "unit": "GB/s", "labels": size})
    return rows


def test_second_host_of_a_two_host_slice():
    result = parse_tpu_result(block(INFO, chips(range(4, 8))), extra_labels={"topology": "2x4"})
    assert result.slice_matches and result.process_index == 1 and result.local_device_count == 4
    assert sorted(m.labels["chip"] for m in result.measurements if m.metric == "tflops") == ["4", "5", "6", "7"]
    assert all(m.labels["topology"] == "2x4" for m in result.measurements)
    assert result.describe() == ("JAX saw 8 tpu device(s) (TPU v5 lite) across 2 process(es), 4 local; the slice has 8")


def test_a_pod_that_sees_only_its_host_does_not_match_the_slice():
    info = {**INFO, "device_count": 4, "process_count": 1, "process_index": 0}
    result = parse_tpu_result(block(info, chips(range(4))))
    assert not result.slice_matches and "JAX saw 4 tpu device(s)" in result.describe()


def test_jax_on_cpu_is_reported_not_measured():
    info = {**INFO, "platform": "cpu", "device_count": 1, "local_device_count": 1, "device_kind": "cpu"}
    result = parse_tpu_result(block(info, []))
    assert not result.slice_matches and result.measurements == ()


def test_missing_chips_info_or_psum_are_parse_errors():
    with pytest.raises(ParseError, match=r"3 chip\(s\) reported tflops, this process has 4 local chips"):
        parse_tpu_result(block(INFO, chips(range(4, 7))))
    with pytest.raises(ParseError, match=r"info.device_count must be a non-negative integer \(got None\)"):
        parse_tpu_result(block({k: v for k, v in INFO.items() if k != "device_count"}, chips(range(4))))
    without_psum = [m for m in chips(range(4, 8)) if m["metric"] != "allreduce_busbw"]
    with pytest.raises(ParseError, match=r"no allreduce_busbw measurement"):
        parse_tpu_result(block(INFO, without_psum))
    with pytest.raises(ParseError, match=r"info.platform must name the JAX backend"):
        parse_tpu_result(block({**INFO, "platform": ""}, chips(range(4, 8))))
