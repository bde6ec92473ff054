"""The token streamer's protocol: SSE shape, the vLLM-style role chunk, timing, errors, /metrics, readiness."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from conftest import get, start_streamer
from harness.parsers.exposition import parse_exposition


def post(url: str, body: dict) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def events(raw: bytes) -> list[str]:
    return [e.removeprefix("data: ") for e in raw.decode().split("\n\n") if e]


def test_chat_stream_role_chunk_tokens_usage_done(streamer):
    body = {"model": "aibench-tokenstream", "messages": [{"role": "user", "content": "a b c"}], "max_tokens": 4,
            "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip
    started = time.monotonic()
    status, headers, raw = post(streamer + "/v1/chat/completions", body)
    elapsed = time.monotonic() - started
    assert status == 200 and headers["Content-Type"] == "text/event-stream" and headers["x-aibench-version"] == "v2"
    ev = events(raw)
    assert ev[-1] == "[DONE]"
    comments = [e for e in ev if e.startswith(":")]
    assert len(comments) == 1 and comments[0].startswith(": aibench first_token_late_us=")
    chunks = [json.loads(e) for e in ev[:-1] if not e.startswith(":")]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}  # vLLM's role-only delta
    tokens = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(tokens) == 4 and tokens[-1]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert 0.08 <= elapsed < 0.5  # TTFT 50 ms + 3 x 10 ms


def test_unary_completion_and_max_tokens(streamer):
    status, _, raw = post(
        streamer + "/v1/completions", {"model": "aibench-tokenstream", "prompt": "x", "max_tokens": 3}
    )
    answer = json.loads(raw)
    assert status == 200 and answer["choices"][0]["text"] == " hello" * 3 and answer["usage"]["completion_tokens"] == 3


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("/v1/completions", {"model": "gpt-x", "prompt": "x"}, 404, "The model `gpt-x` does not exist."),
        ("/v1/completions", {"model": "aibench-tokenstream"}, 400, "prompt: required"),
        ("/v1/chat/completions", {"model": "aibench-tokenstream", "prompt": "x"}, 400, "messages"),
        ("/v1/completions", {"model": "aibench-tokenstream", "prompt": "x", "max_tokens": 0}, 400, "max_tokens"),
        ("/v1/embeddings", {"model": "aibench-tokenstream"}, 404, "no route"),
    ],
)
def test_errors_are_openai_error_bodies(streamer, path, body, status, needle):
    got, _, raw = post(streamer + path, body)
    error = json.loads(raw)
    assert got == status and error["object"] == "error" and error["code"] == status and needle in error["message"]


def test_metrics_count_what_was_served(streamer):
    for _ in range(3):
        post(streamer + "/v1/completions", {"model": "aibench-tokenstream", "prompt": "a b", "stream": True})
    post(streamer + "/v1/completions", {"model": "other", "prompt": "a"})
    status, text = get(streamer + "/metrics")
    series = {
        (s.name, s.labels.get("status", s.labels.get("le", ""))): s.value for s in parse_exposition(text.decode())
    }
    assert status == 200
    assert series[("vllm:request_success_total", "")] == 3
    assert series[("vllm:generation_tokens_total", "")] == 24
    assert series[("vllm:prompt_tokens_total", "")] == 6
    assert series[("vllm:time_to_first_token_seconds_bucket", "0.06")] == 3  # TTFT 50 ms
    assert series[("vllm:time_to_first_token_seconds_bucket", "0.04")] == 0
    assert series[("tokenstream_http_requests_total", "404")] == 1
    assert series[("vllm:num_requests_running", "")] == 0


def test_stats_report_the_servers_own_lateness(streamer):
    post(streamer + "/v1/completions", {"model": "aibench-tokenstream", "prompt": "a", "stream": True})
    stats = json.loads(get(streamer + "/stats")[1])
    assert stats["first_token_late_ms"]["n"] == 1 and -1 <= stats["first_token_late_ms"]["p50"] < 20


def test_not_ready_until_ready_after(tmp_path):
    proc, url = start_streamer(tmp_path, "--ready-after-s", "30")
    try:
        status, body = get(url + "/health")
        assert status == 503 and body == b"warming up"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_error_percent_refuses_that_share(tmp_path):
    proc, url = start_streamer(tmp_path, "--error-percent", "30", "--ttft-ms", "0", "--tpot-ms", "0")
    try:
        body = {"model": "aibench-tokenstream", "prompt": "x", "max_tokens": 1}
        statuses = [post(url + "/v1/completions", body)[0] for _ in range(200)]
        assert set(statuses) == {200, 503} and 30 <= statuses.count(503) <= 90  # Bin(200, 0.3): mean 60, sd 6.5
    finally:
        proc.terminate()
        proc.wait(timeout=10)
