"""harness.runners.load: shapes (bad input exits 2 naming the field), locust's command line, the Job's samples
block, and a real short run of locust against the token streamer on loopback."""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import ConfigError, WorkloadFailed
from harness.parsers.stream_samples import StreamSummary
from harness.runners.load import (
    SAMPLES_BEGIN,
    SAMPLES_END,
    RequestProfile,
    failure_report,
    job_params,
    load_shape,
    locust_arguments,
    locust_environment,
    run_local,
    samples_from_log,
    shape_from_text,
)


def test_defaults_and_describe():
    shape = load_shape({})
    assert (shape.kind, shape.concurrency, shape.duration_s, shape.warmup_s) == ("concurrency", 1, 10.0, 1.0)
    assert load_shape({"kind": "rate", "rate": 5}).describe() == "Poisson arrivals at 5 req/s (at most 256 in flight)"
    assert load_shape({"kind": "sweep", "levels": "1,4,16"}).levels == (1, 4, 16)


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"kind": "burst"}, "kind: must be one of concurrency, rate, sweep"),
        ({"concurrency": 0}, "concurrency: must be in 1..4096"),
        ({"concurrency": "many"}, "concurrency: must be an integer"),
        ({"duration_s": 0}, "duration_s: must be in 1..3600"),
        ({"duration_s": 5, "warmup_s": -1}, "warmup_s: must be in 0..3600"),
        ({"kind": "rate"}, "rate: must be in 0.001..100000"),
        ({"kind": "rate", "rate": 10, "processes": 2}, "processes: a rate shape runs one arrival process"),
        ({"rate": 10}, "rate: only for kind rate"),
        ({"kind": "sweep", "levels": [4]}, "levels: a sweep needs at least two"),
        ({"kind": "sweep", "levels": [4, 2]}, "levels: must increase strictly"),
        ({"levels": [1, 2]}, "levels: only for kind sweep"),
        ({"concurrency": 1, "processes": 2}, "concurrency: must be at least processes"),
        ({"users": 3}, "users: unknown field"),
        ({"max_requests": 1.5}, "max_requests: must be an integer"),
    ],
)
def test_impossible_shapes_are_config_errors_naming_the_field(fields, needle):
    with pytest.raises(ConfigError) as info:
        load_shape(fields, source="serving.load")
    assert str(info.value).startswith("serving.load: ") and needle in str(info.value)


def test_locust_command_and_environment():
    shape = load_shape({"concurrency": 64, "duration_s": 20, "max_requests": 1001, "processes": 2})
    args = locust_arguments(shape, "http://127.96.0.5:8000")
    assert args[:6] == ["ConcurrencyUser", "--headless", "--users", "64", "--spawn-rate", "64"]
    assert args[args.index("--run-time") + 1] == "36s" and args[-2:] == ["--processes", "2"]
    env = locust_environment(shape, RequestProfile(api="chat", headers={"x-model": "a"}), "/tmp/x")
    assert env["LG_PATH"] == "/v1/chat/completions" and json.loads(env["LG_HEADERS"]) == {"x-model": "a"}
    assert env["LG_MAX_REQUESTS"] == "501"  # the count bound is split over the load processes
    assert (env["LG_RAMP_S"], env["LG_USERS"]) == ("0.5", "32")  # first requests spread over half the warm-up
    rate = load_shape({"kind": "rate", "rate": 20, "duration_s": 8})
    assert locust_arguments(rate, "http://h:1")[:4] == ["ArrivalUser", "--headless", "--users", "1"]
    # the warm-up (1 s by default) comes before the measured 8 s
    assert locust_environment(rate, RequestProfile(), "/x")["LG_DURATION_S"] == "9"
    assert load_shape({"concurrency": 8, "warmup_s": 2}).concurrency == 8
    assert locust_environment(load_shape({"concurrency": 8, "warmup_s": 2}), RequestProfile(), "/x")["LG_RAMP_S"] == "1"
    params = job_params(shape, RequestProfile(), "http://svc:8000")
    assert "LG_SAMPLES_DIR" not in json.loads(params["lg_env"]) and params["host_url"] == "http://svc:8000"


def test_samples_block_round_trip_and_errors():
    text = '{"t":1,"q":0,"ttft":0.1,"e2e":0.2,"n":2,"status":200}\n'
    blob = base64.b64encode(gzip.compress(text.encode())).decode()
    log = f"locust output\n{SAMPLES_BEGIN}\n{blob[:10]}\n{blob[10:]}\n{SAMPLES_END}\n"
    assert samples_from_log(log) == text
    with pytest.raises(WorkloadFailed, match="printed no"):
        samples_from_log("Traceback: boom")
    with pytest.raises(WorkloadFailed, match="corrupt"):
        samples_from_log(f"{SAMPLES_BEGIN}\n!!!\n{SAMPLES_END}")


def test_failure_report_quotes_the_server():
    summary = StreamSummary(
        requests=3, failures=2, warmup_excluded=0, window_s=1, requests_per_s=1, output_tokens_per_s=1,
        inflight_mean=1, errors={"HTTP 404": 2},
    )  # fmt: skip
    from harness.parsers.stream_samples import StreamSample

    bad = StreamSample(start=0, queue=0, ttft=None, e2e=0.01, output_tokens=0, status=404, error="HTTP 404",
                       body='{"message": "The model `m` does not exist."}')  # fmt: skip
    report = failure_report(summary, (bad, bad))
    assert "2 of 3 requests failed" in report and "2 x HTTP 404" in report
    assert report.count("does not exist") == 1


def test_harness_never_imports_locust():
    code = (
        "import sys, harness.runners.load, harness.parsers.stream_samples; "
        "print('locust' in sys.modules, 'gevent' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# ----------------------------------------------------------------------------- a real run on loopback
def test_real_closed_loop_run_against_the_streamer(streamer, tmp_path):
    shape = load_shape({"concurrency": 4, "duration_s": 3, "warmup_s": 0.5, "max_requests": 2000})
    run = run_local(streamer, shape, RequestProfile(api="chat", max_tokens=8), workdir=tmp_path / "load")
    summary = run.summary()
    assert summary.failures == 0 and summary.requests > 20
    assert 0.049 <= summary.ttft[50] <= 0.060  # set to 50 ms (bounds wide enough for a busy CI machine)
    assert summary.tpot[50] == pytest.approx(0.010, rel=0.05)
    assert summary.inflight_mean == pytest.approx(4, rel=0.1)
    assert summary.versions.keys() == {"v2"} and all(s.output_tokens == 8 for s in run.samples)
    # the server's own lateness came back with every stream, and the client saw the token after it was written
    assert all(s.server_late is not None and s.ttft >= 0.05 + s.server_late for s in run.samples)
    assert (tmp_path / "load" / "locust.log").exists()


def test_real_run_with_a_rejected_model_keeps_the_error_body(streamer, tmp_path):
    shape = load_shape({"concurrency": 1, "duration_s": 1, "warmup_s": 0, "max_requests": 3})
    run = run_local(streamer, shape, RequestProfile(model="nope"), workdir=tmp_path / "bad")
    assert len(run.samples) == 3 and {s.status for s in run.samples} == {404}
    assert "The model `nope` does not exist." in failure_report(run.summary(), run.samples)


def test_shape_from_text_and_the_serving_load_option():
    from harness.config import resolve

    assert shape_from_text("kind=sweep,levels=1;4;16,duration_s=3").levels == (1, 4, 16)
    assert shape_from_text("concurrency=64, duration_s=30").concurrency == 64
    with pytest.raises(ValueError, match="expected key=value"):
        shape_from_text("concurrency")
    assert resolve({"serving_load": "kind=rate,rate=20"}, {}, {}).serving_load == "kind=rate,rate=20"
    with pytest.raises(ConfigError, match=r"^--serving-load: concurrency: must be in 1\.\.4096"):
        resolve({"serving_load": "concurrency=0"}, {}, {})
    with pytest.raises(ConfigError, match="AIBENCH_SERVING_LOAD: kind: the latency test runs one"):
        resolve({}, {"AIBENCH_SERVING_LOAD": "kind=sweep,levels=1;2"}, {})


def test_each_run_in_a_namespace_gets_its_own_job():
    """A Job's pod template is immutable: a sweep's levels (and every tagged run) are separate Jobs, and a run reads
    the samples of its own Job's pod, not an earlier level's (both stay in the namespace)."""
    from types import SimpleNamespace

    from harness.loadgen.dataset import Prompt
    from harness.runners.load import LoadDriver, job_name

    assert job_name("c16") == "inference-load-c16" and job_name("Bad Model!") == "inference-load-bad-model"
    assert len(job_name("x" * 100)) <= 63

    def block(n: int) -> str:  # n samples, sent faster at each level (throughput grows: the sweep goes on)
        text = "".join(f'{{"t":{i / n},"q":0,"ttft":0.1,"e2e":0.2,"n":2,"status":200}}\n' for i in range(n))
        return f"{SAMPLES_BEGIN}\n{base64.b64encode(gzip.compress(text.encode())).decode()}\n{SAMPLES_END}\n"

    calls: list[dict] = []
    logs: dict[str, str] = {}

    def run_workload(name: str, **params: str):
        calls.append(params)
        # every earlier Job's pod is still there, with its own block
        logs[f"{params['job_name']}-abcde/locust"] = block(len(calls) + 2)
        return SimpleNamespace(logs=dict(logs), log_of=lambda c: "".join(logs.values()))

    driver = LoadDriver(local=False, workdir=Path("/nonexistent"), run_workload=run_workload)
    prompts = (Prompt("a b c", 4), Prompt("d e", 2))
    shape = load_shape({"kind": "sweep", "levels": [1, 4, 16], "duration_s": 2, "warmup_s": 0})
    request = RequestProfile(prompts=prompts)
    runs = driver.sweep("https://svc.ns:8443/pre", shape, request)
    assert [c["job_name"] for c in calls] == ["inference-load-c1", "inference-load-c4", "inference-load-c16"]
    assert [len(r.samples) for r in runs] == [3, 4, 5]  # each level read its own pod's block
    env = json.loads(calls[0]["lg_env"])
    assert env["LG_PATH"] == "/pre/v1/completions" and "https://svc.ns:8443" in calls[0]["locust_args"]
    pool = gzip.decompress(base64.b64decode(env["LG_PROMPTS_B64"])).decode().splitlines()
    assert [json.loads(line) for line in pool] == [
        {"prompt": "a b c", "max_tokens": 4},
        {"prompt": "d e", "max_tokens": 2},
    ]
