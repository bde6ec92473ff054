"""``k8s-ai-bench load`` and its parts: the endpoint URL (prefix, TLS), the prompts (synthetic distributions,
ShareGPT files), the preflight's one-line errors and exit codes, and real runs against the token streamer on
127.0.0.1 over https with a path prefix and an API key, writing a run record."""

from __future__ import annotations

import json
import random
import socket
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import start_streamer
from harness.embedded.tls import make_serving_cert
from harness.errors import ConfigError
from harness.loadgen.dataset import parse_length, sharegpt_prompts, synthetic_prompts
from harness.loadgen.endpoint import EndpointUnreachable, parse_endpoint, parse_header, preflight
from harness.runners.load import RequestProfile, load_shape, locust_arguments, locust_environment, run_local

CLI = [sys.executable, "-m", "harness.cli", "load"]


# ----------------------------------------------------------------------------- URL and headers
@pytest.mark.parametrize(
    ("url", "origin", "prefix"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000", ""),
        ("http://gw.example/team-a/", "http://gw.example:80", "/team-a"),
        ("https://gw.example/team-a/v1", "https://gw.example:443", "/team-a"),
        ("https://[::1]:9443/a/b", "https://[::1]:9443", "/a/b"),
    ],
)
def test_url_keeps_its_path_prefix(url, origin, prefix):
    endpoint = parse_endpoint(url)
    assert (endpoint.origin, endpoint.prefix) == (origin, prefix)
    assert endpoint.path("chat") == prefix + "/v1/chat/completions"


def test_the_prefix_reaches_the_load_generator():
    shape = load_shape({"concurrency": 2, "duration_s": 5, "warmup_s": 2})
    env = locust_environment(shape, RequestProfile(), "/x", url="https://gw.example:8443/team-a")
    assert env["LG_PATH"] == "/team-a/v1/completions" and env["LG_DURATION_S"] == "7"
    args = locust_arguments(shape, "https://gw.example:8443/team-a")
    assert args[args.index("--host") + 1] == "https://gw.example:8443"


@pytest.mark.parametrize(
    ("url", "kwargs", "needle"),
    [
        ("ftp://h", {}, "--url ftp://h: must start with http:// or https://"),
        ("http://", {}, "names no host"),
        ("http://h:99999", {}, "the port is not a number"),
        ("http://u:p@h", {}, "credentials in the URL are not sent"),
        ("http://h/?a=1", {}, "a query or fragment"),
        ("http://h", {"insecure": True}, "--insecure and --ca-file apply to https:// URLs only"),
    ],
)
def test_bad_urls_are_config_errors(url, kwargs, needle):
    with pytest.raises(ConfigError, match=None) as info:
        parse_endpoint(url, **kwargs)
    assert needle in str(info.value)


def test_header_parsing():
    assert parse_header("Authorization: Bearer abc") == ("Authorization", "Bearer abc")
    assert parse_header("x-key:v") == ("x-key", "v")
    for bad in ("no colon", ": v", "a b: v"):
        with pytest.raises(ValueError):
            parse_header(bad)


# ----------------------------------------------------------------------------- prompts
def test_length_distributions():
    rng = random.Random(1)
    assert parse_length("64", option="--input-len").draw(rng) == 64
    uniform = parse_length("uniform:10:20", option="--input-len")
    draws = [uniform.draw(rng) for _ in range(2000)]
    assert min(draws) == 10 and max(draws) == 20 and statistics.mean(draws) == pytest.approx(15, abs=0.3)
    normal = parse_length("normal:100:10:80:110", option="--output-len")
    draws = [normal.draw(rng) for _ in range(4000)]
    assert min(draws) >= 80 and max(draws) == 110  # clipped at the upper bound (1 sd above the mean)
    assert statistics.median(draws) == pytest.approx(100, abs=1)
    for text, needle in (
        ("uniform:5", "expected N, fixed:N"),
        ("uniform:9:3", "lower bound 9 is above the upper bound 3"),
        ("normal:1:1:5:9", "LOW <= MEAN <= HIGH"),
        ("0", "whole numbers in 1..131072"),
        ("x", "expected N, fixed:N"),
    ):
        with pytest.raises(ConfigError, match=None) as info:
            parse_length(text, option="--input-len")
        assert str(info.value).startswith(f"--input-len {text}: ") and needle in str(info.value)


def test_synthetic_prompts_are_distinct_and_sized():
    inputs, outputs = parse_length("uniform:20:40", option="i"), parse_length("normal:64:8:32:96", option="o")
    pool = synthetic_prompts(inputs, outputs, count=200, seed=3)
    assert len({p.text for p in pool}) == 200  # no two prompts alike
    # one word fewer than drawn: the load generator puts the request's unique word in front
    assert all(19 <= len(p.text.split()) <= 39 and 32 <= p.max_tokens <= 96 for p in pool)
    assert synthetic_prompts(inputs, outputs, count=5, seed=3) == pool[:5]  # seeded


def test_sharegpt_file(tmp_path: Path):
    data = [
        {"id": "a", "conversations": [{"from": "human", "value": "why is the sky blue today"},
                                      {"from": "gpt", "value": "because of Rayleigh scattering of sunlight " * 3}]},
        {"id": "b", "conversations": [{"from": "gpt", "value": "bot first is skipped here"},
                                      {"from": "human", "value": "then a human turn comes"}]},
        {"id": "c", "conversations": [{"from": "human", "value": "too short"},
                                      {"from": "gpt", "value": "ok fine then sure"}]},
        {"id": "d", "conversations": [{"from": "human", "value": "only one turn in this conversation"}]},
        {"id": "e", "conversations": [{"from": "human", "value": "write a long poem about the sea please"},
                                      {"from": "gpt", "value": "wave " * 5000}]},
    ]  # fmt: skip
    path = tmp_path / "sharegpt.json"
    path.write_text(json.dumps(data))
    pool = sharegpt_prompts(path, count=10, max_output=1024)
    assert sorted((p.text, p.max_tokens) for p in pool) == [
        ("why is the sky blue today", 18),
        ("write a long poem about the sea please", 1024),  # the answer's length, capped
    ]
    (tmp_path / "bad.json").write_text('{"conversations": []}')
    with pytest.raises(ConfigError, match="expected a JSON list"):
        sharegpt_prompts(tmp_path / "bad.json", count=1, max_output=10)
    (tmp_path / "none.json").write_text(json.dumps(data[1:4]))
    with pytest.raises(ConfigError, match="no usable conversation among 3"):
        sharegpt_prompts(tmp_path / "none.json", count=1, max_output=10)
    with pytest.raises(ConfigError, match="no such file"):
        sharegpt_prompts(tmp_path / "missing.json", count=1, max_output=10)


# ----------------------------------------------------------------------------- a TLS streamer with a prefix and a key
@pytest.fixture
def tls_streamer(tmp_path: Path):
    """The token streamer over https (a throw-away CA from harness.embedded.tls) under /team-a, with an API key
    and an end of sequence after 4 tokens unless ignore_eos."""
    cert = make_serving_cert(tmp_path / "pki")
    proc, url = start_streamer(
        tmp_path,
        "--ttft-ms", "30", "--tpot-ms", "5", "--eos-after", "4", "--root-path", "/team-a", "--api-key", "k-123",
        "--tls-cert", str(cert.cert_path), "--tls-key", str(cert.key_path),
    )  # fmt: skip
    yield url.replace("http://", "https://") + "/team-a", cert.ca_path
    proc.terminate()
    proc.wait(timeout=10)


def test_preflight_learns_the_model_and_ignore_eos(tls_streamer):
    url, ca = tls_streamer
    endpoint = parse_endpoint(url, ca_file=str(ca), headers={"Authorization": "Bearer k-123"})
    checked = preflight(endpoint, api="chat")
    assert checked.model == "aibench-tokenstream" and checked.models == ("aibench-tokenstream",)
    assert dict(checked.extra_body) == {"ignore_eos": True, "min_tokens": 2}
    with pytest.raises(ConfigError, match=r"^--model nope: .* it serves: aibench-tokenstream$"):
        preflight(endpoint, api="chat", model="nope")
    with pytest.raises(EndpointUnreachable, match="HTTP 401 from /team-a/v1/models with no credentials"):
        preflight(parse_endpoint(url, ca_file=str(ca)), api="chat")
    with pytest.raises(EndpointUnreachable, match="TLS certificate not trusted"):
        preflight(parse_endpoint(url, headers={"Authorization": "Bearer k-123"}), api="chat")


def test_https_run_with_prefix_and_exact_output(tls_streamer, tmp_path):
    url, ca = tls_streamer
    shape = load_shape({"concurrency": 3, "duration_s": 2, "warmup_s": 0.5, "max_requests": 500})
    headers = {"Authorization": "Bearer k-123"}
    exact = RequestProfile(max_tokens=12, headers=headers, ca_file=str(ca), extra_body={"ignore_eos": True})
    run = run_local(url, shape, exact, workdir=tmp_path / "exact")
    summary = run.summary()
    assert summary.failures == 0 and summary.requests > 20
    assert {s.output_tokens for s in run.samples} == {12}  # ignore_eos honoured: no stop after 4
    assert 0.030 <= summary.ttft[50] <= 0.040 and summary.tpot[50] == pytest.approx(0.005, rel=0.1)
    # without ignore_eos the model's own end of sequence stops it at 4 tokens, as a real model would
    plain = RequestProfile(max_tokens=12, headers=headers, ca_file=str(ca))
    short = run_local(
        url, load_shape({"concurrency": 1, "duration_s": 1, "warmup_s": 0}), plain, workdir=tmp_path / "p"
    )
    assert {s.output_tokens for s in short.samples} == {4}
    # --insecure: no certificate check
    insecure = RequestProfile(max_tokens=2, headers=headers, verify_tls=False)
    one = load_shape({"concurrency": 1, "duration_s": 1, "warmup_s": 0, "max_requests": 3})
    assert all(s.ok for s in run_local(url, one, insecure, workdir=tmp_path / "i").samples)


def test_every_prompt_is_unique(streamer, tmp_path):
    """No two requests share their first word (no prefix-cache flattery); the default prompt keeps its length."""
    shape = load_shape({"concurrency": 2, "duration_s": 5, "warmup_s": 0, "max_requests": 40})
    run_local(streamer, shape, RequestProfile(model="aibench-tokenstream", max_tokens=2, prompt_words=16),
              workdir=tmp_path / "u")  # fmt: skip
    with socket.create_connection((streamer.split("//")[1].split(":")[0], int(streamer.rsplit(":", 1)[1]))) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        text = b""
        while chunk := s.recv(65536):
            text += chunk
    # prompt tokens = words: 16 per request
    tokens = [ln for ln in text.decode().splitlines() if ln.startswith("vllm:prompt_tokens_total")]
    requests = [ln for ln in text.decode().splitlines() if ln.startswith("vllm:request_success_total")]
    total = sum(float(ln.rsplit(" ", 1)[1]) for ln in requests)
    assert total == 40 and float(tokens[0].rsplit(" ", 1)[1]) == 16 * 40


# ----------------------------------------------------------------------------- the command
def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], check=False, capture_output=True, text=True, timeout=120, cwd=cwd)


def test_preflight_errors_are_one_line_with_their_exit_code(tls_streamer, tmp_path):
    url, ca = tls_streamer
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    auth = ["--header", "Authorization: Bearer k-123", "--ca-file", str(ca)]
    cases = [
        (["--url", f"http://127.0.0.1:{free}"], 3,
         f"k8s-ai-bench: error: http://127.0.0.1:{free} (GET /v1/models): connection refused (nothing listens on "
         f"port {free})"),
        (["--url", url, "--ca-file", str(ca)], 3,
         f"k8s-ai-bench: error: {url}: HTTP 401 from /team-a/v1/models with no credentials (pass --header "
         "'Authorization: ...'): {\"error\": \"Unauthorized\"}"),
        (["--url", url, *auth, "--model", "llama"], 2,
         f"k8s-ai-bench: error: --model llama: {url} does not serve it ({{\"object\": \"error\", \"message\": "
         "\"The model `llama` does not exist.\", \"type\": \"NotFoundError\", \"param\": \"model\", \"code\": 404}); "
         "it serves: aibench-tokenstream"),
        (["--url", url, "--header", "Authorization: Bearer k-123"], 3,
         f"k8s-ai-bench: error: {url} (GET /team-a/v1/models): TLS certificate not trusted (unable to get local "
         "issuer certificate); --ca-file CA.pem names the issuer, --insecure skips the check"),
        (["--url", url.replace("https", "http"), *auth[:2]], 3,
         f"k8s-ai-bench: error: {url.replace('https', 'http')} (GET /team-a/v1/models): not an HTTP answer "
         "(RemoteDisconnected('Remote end closed connection without response')); is it an https:// endpoint?"),
        (["--url", url, *auth, "--input-len", "uniform:9:3"], 2,
         "k8s-ai-bench: error: --input-len uniform:9:3: the lower bound 9 is above the upper bound 3"),
        (["--url", url, *auth, "--concurrency", "0"], 2,
         "k8s-ai-bench: error: --concurrency: must be in 1..4096 (got 0)"),
        (["--url", url, *auth, "--header", "bad"], 2,
         "k8s-ai-bench: error: --header: expected 'Name: value' (got 'bad')"),
        (["--url", url, *auth, "--dataset", "sharegpt:/nonexistent.json"], 2,
         "k8s-ai-bench: error: --dataset /nonexistent.json: no such file or directory"),
        (["--url", url, *auth, "--run-id", "latest"], 2,
         "k8s-ai-bench: error: --run-id: 'latest' is reserved (reports/latest links to the newest run); choose "
         "another id"),
    ]  # fmt: skip
    for args, code, line in cases:
        result = _cli(*args, "--duration", "2", "--reports-dir", str(tmp_path / "r"), cwd=tmp_path)
        assert (result.returncode, result.stderr.strip()) == (code, line), args
        assert result.stdout == ""  # nothing started, no record
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_load_writes_a_judged_run_record(tls_streamer, tmp_path):
    url, ca = tls_streamer
    result = _cli(
        "--url", url, "--ca-file", str(ca), "--header", "Authorization: Bearer k-123", "--api", "chat",
        "--concurrency", "4", "--duration", "2", "--warmup", "1", "--input-len", "normal:64:16:16:128",
        "--output-len", "10", "--profile", "cpu-only", "--run-id", "r1", "--reports-dir", str(tmp_path / "reports"),
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    run_dir = tmp_path / "reports" / "r1"
    for name in ("run.json", "results.jsonl", "report.html", "junit.xml", "results.csv"):
        assert (run_dir / name).is_file(), name
    [res] = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert res["status"] == "passed" and res["workload"] == "inference-server"
    assert (
        res["params"]["headers"] == {"Authorization": "<redacted>"}
        and "k-123" not in (run_dir / "run.json").read_text()
    )
    assert "k-123" not in (run_dir / "results.jsonl").read_text()
    assert (
        res["params"]["exact_output"] == "ignore_eos,min_tokens"
        and res["params"]["api"] == "/team-a/v1/chat/completions"
    )
    metrics = {(m["metric"], m["labels"].get("percentile", m["labels"].get("stat", ""))) for m in res["measurements"]}
    wanted = {("ttft", "50"), ("tpot", "99"), ("itl", "50"), ("ntpot", "50"), ("goodput", ""), ("error_rate", ""),
              ("requests_per_s", ""), ("output_tokens_per_s", ""), ("inflight", "mean")}  # fmt: skip
    assert wanted <= metrics, wanted - metrics
    tokens = next(m for m in res["measurements"] if m["metric"] == "output_tokens_per_s")["value"]
    rate = next(m for m in res["measurements"] if m["metric"] == "requests_per_s")["value"]
    assert tokens == pytest.approx(10 * rate, rel=0.01)  # exactly 10 tokens each: ignore_eos was sent
    assert {c["threshold_id"] for c in res["checks"]} >= {"inference-ttft-p99-interactive-path", "inference-error-rate"}
    assert all(c["status"] == "passed" for c in res["checks"]), res["checks"]
    assert json.loads((run_dir / "run.json").read_text())["target"] == {"kind": "endpoint", "name": url}
    assert "concurrency 4:" in result.stdout and "-> PASSED" in result.stdout


def test_load_rate_shape_reports_the_generators_lateness(streamer, tmp_path):
    result = _cli(
        "--url", streamer, "--rate", "40", "--duration", "2", "--warmup", "0.5", "--output-len", "4",
        "--run-id", "rate", "--reports-dir", str(tmp_path / "reports"), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    [res] = [json.loads(line) for line in (tmp_path / "reports" / "rate" / "results.jsonl").read_text().splitlines()]
    late = {m["labels"]["percentile"]: m["value"] for m in res["measurements"] if m["metric"] == "send_lateness"}
    assert set(late) == {"50", "90", "99"} and 0 <= late["50"] < 20  # ms; a free generator is on time
    sent = next(m for m in res["measurements"] if m["metric"] == "requests")["value"]
    assert 40 * 2 - 4 * (80**0.5) <= sent <= 40 * 2 + 4 * (80**0.5)  # the warm-up's arrivals are not counted


def test_serving_url_option():
    from harness.config import resolve

    assert resolve({"serving_url": "https://gw.example/llm/v1/"}, {}, {}).serving_url == "https://gw.example:443/llm"
    with pytest.raises(ConfigError, match=r"^--serving-url: ftp://x: must start with http:// or https://$"):
        resolve({"serving_url": "ftp://x"}, {}, {})


def test_a_failed_load_level_keeps_the_record_whole(streamer, tmp_path, monkeypatch, capsys):
    """The sweep's second level's load generator fails: the first level stays measured and judged, the second is
    an error result naming the failure, run.json is written, and the exit code is 1 (a failure, not 3)."""
    import harness.runners.load as load_runner
    from harness.cli import main
    from harness.errors import WorkloadFailed

    real = load_runner.run_local
    calls: list[int] = []

    def second_level_fails(url, shape, request, *, workdir):
        calls.append(shape.concurrency)
        if len(calls) == 2:
            raise WorkloadFailed("locust exited 1. Last output:\nTraceback: boom")
        return real(url, shape, request, workdir=workdir)

    monkeypatch.setattr(load_runner, "run_local", second_level_fails)
    code = main([
        "load", "--url", streamer, "--sweep", "1,2", "--duration", "1", "--warmup", "0", "--output-len", "4",
        "--run-id", "broken", "--reports-dir", str(tmp_path / "reports"),
    ])  # fmt: skip
    out = capsys.readouterr().out
    run_dir = tmp_path / "reports" / "broken"
    assert code == 1, out
    assert json.loads((run_dir / "run.json").read_text())["exit_status"] == 1
    first, second = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert (first["status"], first["message"]) == ("passed", "measured, no --profile to judge it"), first
    assert {m["metric"] for m in first["measurements"]} >= {"requests_per_s", "ttft"}
    assert (second["status"], second["failure_kind"]) == ("error", "workload")
    assert second["message"] == "the load generator failed: locust exited 1. Last output:\nTraceback: boom"
    assert (run_dir / "report.html").is_file() and "-> ERROR" in out
