"""Readers for other tools' serving results (inference-perf, vLLM bench, GuideLLM, locust history): each on a
real output where one exists (tests/data/README.md, section 6), mapped to docs/serving-metrics.md's names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import ParseError
from harness.parsers.guidellm import guidellm_measurements
from harness.parsers.inference_perf import inference_perf_measurements
from harness.parsers.locust import locust_history_measurements
from harness.parsers.vllm_bench import (
    vllm_serve_json_measurements,
    vllm_serve_text_measurements,
    vllm_throughput_measurements,
)

DATA = Path(__file__).resolve().parent.parent / "data"


def read(name: str) -> str:
    return (DATA / name).read_text()


def one(ms, metric, **labels):
    found = [m for m in ms if m.metric == metric and all(m.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (metric, labels, found)
    return found[0]


def test_inference_perf_lifecycle_report():
    """kubernetes-sigs/inference-perf's own KubeCon NA 2025 demo result (vLLM, Llama-3.1-8B, stage 0, 1 req/s):
    seconds -> ms, TPOT/NTPOT/ITL kept apart, schedule_delay as queue_delay."""
    ms = inference_perf_measurements(
        read("inference-perf_stage_0_lifecycle_metrics_vllm-llama3.1-8b_kubecon-na-2025.json")
    )
    assert one(ms, "ttft", stat="percentile", percentile="50").value == pytest.approx(54.611469531664625)
    assert one(ms, "ttft", stat="percentile", percentile="90").value == pytest.approx(81.16110803093761)
    assert one(ms, "ttft", stat="mean").value == pytest.approx(58.435614053936054)
    assert one(ms, "tpot", stat="percentile", percentile="50").value == pytest.approx(7.365180665650136)
    assert one(ms, "ntpot", stat="mean").value == pytest.approx(16.94352965674343)
    assert one(ms, "itl", stat="max").value == pytest.approx(52.05617903266102)
    assert one(ms, "e2e_latency", stat="percentile", percentile="10").value == pytest.approx(308.74783297185787)
    assert one(ms, "queue_delay", stat="percentile", percentile="50").value == pytest.approx(0.5945437878835946)
    assert one(ms, "requests_per_s").value == pytest.approx(0.9222687047312378)
    assert one(ms, "output_tokens_per_s").value == pytest.approx(211.50695628503055)
    assert (one(ms, "requests").value, one(ms, "failures").value, one(ms, "error_rate").value) == (60, 0, 0)
    assert {m.labels["tool"] for m in ms} == {"inference-perf"} and {m.labels["rate"] for m in ms} == {"1"}


def test_vllm_bench_serve_result_file():
    """A real `vllm bench serve --save-result` file (vllm-ascend, Qwen2.5-VL-3B, 200 prompts at 1 req/s, one
    failed): mean/median/p99 latencies, throughputs, and the failure as a 0.5 % error rate."""
    ms = vllm_serve_json_measurements(read("vllm-bench-serve_result_qwen2.5-vl-3b_rate1_200prompts_ascend-note.json"))
    assert one(ms, "ttft", stat="percentile", percentile="99").value == pytest.approx(113.88637554366143)
    assert one(ms, "ttft", stat="percentile", percentile="50").value == pytest.approx(98.94429985433817)
    assert one(ms, "tpot", stat="mean").value == pytest.approx(34.43461520473263)
    assert one(ms, "itl", stat="percentile", percentile="99").value == pytest.approx(38.25465443544089)
    assert one(ms, "requests_per_s").value == pytest.approx(0.9733236714351853)
    assert one(ms, "output_tokens_per_s").value == pytest.approx(124.58542994370372)
    assert one(ms, "error_rate").value == pytest.approx(0.5) and one(ms, "requests").value == 200
    assert not [m for m in ms if m.metric == "goodput"]  # request_goodput null: no SLO was given
    assert {m.labels["model"] for m in ms} == {"./Qwen2.5-VL-3B-Instruct"}


def test_vllm_serving_result_block():
    """The printed result block of vLLM's README example (benchmark_serving.py, Hermes-3-8B, 10 prompts)."""
    ms = vllm_serve_text_measurements(read("vllm-benchmark_serving_result_sharegpt_hermes3-8b_vllm-readme.txt"))
    assert one(ms, "ttft", stat="mean").value == 71.54
    assert one(ms, "ttft", stat="percentile", percentile="99").value == 79.49
    assert one(ms, "tpot", stat="percentile", percentile="50").value == 7.96
    assert one(ms, "itl", stat="percentile", percentile="99").value == 8.39
    assert one(ms, "requests_per_s").value == 1.73 and one(ms, "output_tokens_per_s").value == 382.89
    assert one(ms, "total_tokens_per_s").value == 619.85
    assert (one(ms, "requests").value, one(ms, "failures").value) == (10, 0)  # no "Failed requests" line: 0


def test_vllm_throughput_lines_before_and_after_the_split():
    """vllm-project/vllm PR #8914: the `Throughput:` line before (one tokens/s) and after (total and output)."""
    after = vllm_throughput_measurements(read("vllm-benchmark_throughput_line_total-and-output_vllm-pr8914.txt"))
    assert [(m.metric, m.value) for m in after] == [
        ("requests_per_s", 89.27), ("total_tokens_per_s", 22853.37), ("output_tokens_per_s", 11426.69)
    ]  # fmt: skip
    before = vllm_throughput_measurements(read("vllm-benchmark_throughput_line_pre-2024-10_vllm-pr8914.txt"))
    assert [(m.metric, m.value) for m in before] == [("requests_per_s", 81.74), ("total_tokens_per_s", 20926.37)]
    assert {m.labels["mode"] for m in after + before} == {"offline"}
    # --output-json: keys from vllm's benchmark_throughput.py (no real file found; document written here)
    doc = {"elapsed_time": 120.5, "num_requests": 1000, "total_num_tokens": 6514, "requests_per_second": 8.30,
           "tokens_per_second": 1244.81}  # fmt: skip
    assert [m.value for m in vllm_throughput_measurements(json.dumps(doc))] == [8.30, 1244.81]


# GuideLLM: no real benchmarks.json was found; this document follows guidellm/schemas/statistics.py
# (DistributionSummary with percentiles p001..p999) and the GenerativeMetrics names. Numbers made up.
_DIST = {"mean": 25.0, "median": 24.0, "mode": 24.0, "variance": 1.0, "std_dev": 1.0, "min": 20.0, "max": 40.0,
         "count": 100, "total_sum": 2500.0,
         "percentiles": {"p001": 20.0, "p01": 20.5, "p05": 21.0, "p10": 22.0, "p25": 23.0, "p50": 24.0, "p75": 26.0,
                         "p90": 30.0, "p95": 33.0, "p99": 38.0, "p999": 40.0}}  # fmt: skip


def _guidellm_doc() -> dict:
    seconds = {**_DIST, "mean": 0.8, "median": 0.75, "percentiles": {**_DIST["percentiles"], "p99": 1.5}}
    metrics = {
        "time_to_first_token_ms": {"successful": _DIST, "errored": None},
        "inter_token_latency_ms": {"successful": {**_DIST, "mean": 20.0}},
        "time_per_output_token_ms": {"successful": {**_DIST, "mean": 22.5}},
        "request_latency": {"successful": seconds},
        "requests_per_second": {"successful": {**_DIST, "mean": 12.5}},
        "output_tokens_per_second": {"successful": {**_DIST, "mean": 400.0}},
    }
    strategy = {"type_": "concurrent", "streams": 8}
    totals = {"successful": 99, "errored": 1, "incomplete": 0, "total": 100}
    benchmark = {"type_": "generative_benchmark", "config": {"strategy": strategy}, "metrics": metrics}
    return {"benchmarks": [{**benchmark, "request_totals": totals}]}


def test_guidellm_names_map_itl_to_tpot_and_tpot_to_ntpot():
    ms = guidellm_measurements(json.dumps(_guidellm_doc()))
    assert one(ms, "tpot", stat="mean").value == 20.0  # GuideLLM's "ITL" is our TPOT
    assert one(ms, "ntpot", stat="mean").value == 22.5  # its "TPOT" includes TTFT: our NTPOT
    assert one(ms, "ttft", stat="percentile", percentile="99.9").value == 40.0
    assert one(ms, "ttft", stat="percentile", percentile="0.1").value == 20.0
    assert one(ms, "ttft", stat="percentile", percentile="1").value == 20.5
    assert one(ms, "e2e_latency", stat="percentile", percentile="99").value == 1500.0  # seconds -> ms
    assert one(ms, "requests_per_s").value == 12.5 and one(ms, "error_rate").value == 1.0
    assert {(m.labels["strategy"], m.labels["concurrency"]) for m in ms} == {("concurrent", "8")}


def test_locust_stats_history():
    """locust 2.47.0 --csv --csv-full-history, generated here against a local HTTP server (GET / and a 404 path):
    totals from each endpoint's last row, the request rate between the first and last running sample."""
    ms = locust_history_measurements(read("locust-2.47.0_results_stats_history_get-and-404_u4-t6s_generated.csv"))
    agg = {"endpoint": "Aggregated"}
    assert one(ms, "requests", **agg).value == 354 and one(ms, "failures", **agg).value == 80
    assert one(ms, "error_rate", **agg).value == pytest.approx(100 * 80 / 354)
    assert one(ms, "error_rate", endpoint="/missing", method="GET").value == 100.0
    assert one(ms, "e2e_latency", stat="mean", **agg).value == pytest.approx(5.235370403940995)
    assert one(ms, "e2e_latency", stat="percentile", percentile="50", **agg).value == 4
    assert one(ms, "requests_per_s", **agg).value == pytest.approx((354 - 69) / 4)


@pytest.mark.parametrize(
    ("reader", "text", "message"),
    [
        (inference_perf_measurements, "{}", "not a lifecycle report"),
        (inference_perf_measurements, "{", "invalid JSON"),
        (vllm_serve_json_measurements, '{"completed": 1}', "not a result file"),
        (vllm_serve_text_measurements, "Throughput: 1 requests/s", "no '====="),
        (vllm_throughput_measurements, "nothing", "no 'Throughput:"),
        (guidellm_measurements, '{"benchmarks": []}', "not a benchmarks report"),
        (locust_history_measurements, "Type,Name\n", "not a stats history"),
    ],
)
def test_bad_inputs_name_the_problem(reader, text, message):
    with pytest.raises(ParseError, match=message):
        reader(text)


def test_inference_perf_summary_shows_queueing_before_ttft():
    """The same demo's summary over all stages (6,720 requests, no single requested rate): the p90 schedule delay
    (10.7 s) is as large as the p90 TTFT (11.1 s): the client queued, which inference-perf's TTFT excludes."""
    ms = inference_perf_measurements(
        read("inference-perf_summary_lifecycle_metrics_vllm-llama3.1-8b_kubecon-na-2025.json")
    )
    assert one(ms, "queue_delay", stat="percentile", percentile="90").value == pytest.approx(10731.078391539635)
    assert one(ms, "ttft", stat="percentile", percentile="90").value == pytest.approx(11125.515200995142)
    assert one(ms, "requests", tool="inference-perf").value == 6720 and "rate" not in one(ms, "requests").labels
    assert one(ms, "requests_per_s").value == pytest.approx(9.872046692487386)
