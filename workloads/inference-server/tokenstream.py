"""A token streamer with an OpenAI-compatible API and known timing: the reference server of the serving suite.

Why it exists: load generators disagree on TTFT/TPOT by up to tens of percent (../shared/research/
inference-loadgen-anchors.md). A server whose first token and token gaps are set by the test is the only way
to check the measuring side, and it lets the mesh/routing/Service tests run on any cluster without a GPU.

Why the standard library only: the same file runs in a pinned python image on a real cluster (shipped in the
workload's ConfigMap, nothing installed at start) and as a host process on the embedded target. It is a small
asyncio HTTP/1.1 server on ``asyncio.Protocol`` (keep-alive, Content-Length request bodies), fast enough to
answer about 2-3k 32-token streams per second on one core, so it is never what limits a load test.

Timing model (per request, t0 = when its body has been read): token i (0-based) is written at the absolute
deadline t0 + TTFT + i * TPOT, so gaps never drift; tokens already due are written together. Output length is
the request's ``max_tokens`` (capped at --max-output-tokens), else --output-tokens. Every token is the word
``--token-text`` (one word-level token). Chat streams send a role-only delta first (``"content": ""``), as vLLM
does, so a client that time-stamps every ``data:`` line instead of the first non-empty content reads TTFT ~ 0.

Endpoints: ``POST /v1/completions``, ``POST /v1/chat/completions`` (``stream: true`` as Server-Sent Events,
``stream_options.include_usage`` honoured, or one JSON body), ``GET /v1/models``, ``GET /health``,
``GET /metrics`` (Prometheus text; the request/latency series use vLLM's metric names so one ServiceMonitor,
dashboard or HPA metric works for both flavours of the workload), ``GET /stats`` (the server's own lateness
against its deadlines: ground truth for fidelity checks).

End of sequence: with ``--eos-after N`` a stream stops after N tokens (``finish_reason: "stop"``) unless the request
sets ``ignore_eos: true`` (vLLM's and llama.cpp's extension) or ``min_tokens`` above N, as a real model stops early
unless told not to; a load generator that does not send ``ignore_eos`` then sees shorter outputs, as it would.

Serving it like a real endpoint: ``--root-path /prefix`` serves every route under a path prefix (an ingress or
gateway path), ``--api-key K`` refuses requests without ``Authorization: Bearer K`` with 401 (vLLM's
``--api-key``), and ``--tls-cert``/``--tls-key`` serve HTTPS.

A request for another model is refused as vLLM refuses it: 404 with an OpenAI error body naming the model.
After the last token a stream carries an SSE comment (``: aibench first_token_late_us=N``, ignored by SSE
clients) with the server's own lateness of that request's first token, so a load generator's timing error can be
separated from the server's. Every response carries ``x-aibench-version`` (the --version label, v1/v2 in routing
tests) and ``x-aibench-pod`` so a client can tell which backend answered.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import gc
import json
import os
import random
import signal
import socket
import ssl
import sys
import time
import uuid
from dataclasses import dataclass, field

# Prometheus histogram buckets (seconds) of vLLM's vllm:time_to_first_token_seconds.
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
MAX_HEADER_BYTES = 65536
MAX_BODY_BYTES = 16 * 1024 * 1024
# asyncio's epoll selector waits in whole milliseconds, rounding a timeout up, so a timer set for t fires in
# [t, t + 1 ms) plus scheduling delay: 0.5-1 ms late at the median (measured here). Aiming half a millisecond early
# centres the wake-up on the deadline; a token is never written before its wake-up, and one woken a little early
# is still written then (the lateness reported can be slightly negative).
WAKE_EARLY_S = 0.0005
STATS_CAP = 100_000  # lateness samples kept (bounded memory under long runs)
REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Payload Too Large",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


@dataclass(slots=True, kw_only=True)
class Options:
    ttft_s: float
    tpot_s: float
    output_tokens: int
    max_output_tokens: int
    token_text: str
    model: str
    version: str
    pod: str
    ready_after_s: float
    error_percent: float = 0.0
    eos_after: int = 0  # 0: no end-of-sequence before max_tokens
    root_path: str = ""
    api_key: str = ""


@dataclass(slots=True)
class Metrics:
    """Counters behind /metrics and /stats (one event loop: no locks needed)."""

    http: dict[tuple[str, int], int] = field(default_factory=dict)  # (path, status) -> count
    success: dict[str, int] = field(default_factory=dict)  # finished_reason -> count
    running: int = 0
    prompt_tokens: int = 0
    generation_tokens: int = 0
    ttft_counts: list[int] = field(default_factory=lambda: [0] * (len(TTFT_BUCKETS) + 1))
    ttft_sum: float = 0.0
    first_late: list[float] = field(default_factory=list)
    gap_late: list[float] = field(default_factory=list)

    def count(self, path: str, status: int) -> None:
        key = (path, status)
        self.http[key] = self.http.get(key, 0) + 1

    def observe_ttft(self, seconds: float) -> None:
        self.ttft_counts[bisect.bisect_left(TTFT_BUCKETS, seconds)] += 1
        self.ttft_sum += seconds


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    pos = (len(s) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def _words(body: dict) -> int:
    prompt = body.get("prompt")
    if prompt is not None:
        return len((" ".join(map(str, prompt)) if isinstance(prompt, list) else str(prompt)).split())
    n = 0
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            content = " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
        n += len(str(content or "").split())
    return n


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class Server:
    """Shared state of all connections: options, metrics, start time (for readiness)."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.rng = random.Random(0)
        self.metrics = Metrics()
        self.started = time.monotonic()
        self.token_json = json.dumps(options.token_text)
        self.common_headers = f"x-aibench-version: {options.version}\r\nx-aibench-pod: {options.pod}\r\n".encode()

    def ready(self) -> bool:
        return time.monotonic() - self.started >= self.options.ready_after_s

    def render_metrics(self) -> bytes:
        m, o = self.metrics, self.options
        model = f'model_name="{o.model}"'
        lines = [
            "# HELP vllm:num_requests_running Number of requests currently generating tokens.",
            "# TYPE vllm:num_requests_running gauge",
            f"vllm:num_requests_running{{{model}}} {m.running}",
            "# HELP vllm:num_requests_waiting Number of requests waiting (always 0: no batching queue).",
            "# TYPE vllm:num_requests_waiting gauge",
            f"vllm:num_requests_waiting{{{model}}} 0",
            "# HELP vllm:request_success_total Count of successfully processed requests.",
            "# TYPE vllm:request_success_total counter",
        ]
        lines += [
            f'vllm:request_success_total{{finished_reason="{r}",{model}}} {n}' for r, n in sorted(m.success.items())
        ]
        lines += [
            "# HELP vllm:prompt_tokens_total Number of prefill tokens processed.",
            "# TYPE vllm:prompt_tokens_total counter",
            f"vllm:prompt_tokens_total{{{model}}} {m.prompt_tokens}",
            "# HELP vllm:generation_tokens_total Number of generation tokens processed.",
            "# TYPE vllm:generation_tokens_total counter",
            f"vllm:generation_tokens_total{{{model}}} {m.generation_tokens}",
            "# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.",
            "# TYPE vllm:time_to_first_token_seconds histogram",
        ]
        cumulative = 0
        for bound, n in zip((*TTFT_BUCKETS, float("inf")), m.ttft_counts, strict=True):
            cumulative += n
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f'vllm:time_to_first_token_seconds_bucket{{le="{le}",{model}}} {cumulative}')
        lines.append(f"vllm:time_to_first_token_seconds_sum{{{model}}} {m.ttft_sum!r}")
        lines.append(f"vllm:time_to_first_token_seconds_count{{{model}}} {cumulative}")
        lines += [
            "# HELP tokenstream_http_requests_total HTTP requests answered, by path and status code.",
            "# TYPE tokenstream_http_requests_total counter",
        ]
        lines += [
            f'tokenstream_http_requests_total{{path="{p}",status="{s}",version="{o.version}"}} {n}'
            for (p, s), n in sorted(m.http.items())
        ]
        return ("\n".join(lines) + "\n").encode()

    def render_stats(self) -> dict:
        m = self.metrics
        out: dict = {"version": self.options.version, "pod": self.options.pod, "running": m.running}
        for key, values in (("first_token_late_ms", m.first_late), ("gap_late_ms", m.gap_late)):
            out[key] = {
                "n": len(values),
                "p50": _percentile(values, 50) * 1e3,
                "p99": _percentile(values, 99) * 1e3,
                "max": max(values, default=0.0) * 1e3,
            }
        return out


class Connection(asyncio.Protocol):
    """One client connection: parse requests one at a time (no pipelining), answer, keep alive."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.busy = False  # a response is streaming; later bytes wait in the buffer
        self.close_after = False
        self.timers: list[asyncio.TimerHandle] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in self.timers:
            timer.cancel()
        if self.busy:
            self.server.metrics.running -= 1
            self.busy = False
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._next_request()

    # ------------------------------------------------------------------ parsing
    def _next_request(self) -> None:
        while self.transport is not None and not self.busy:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEADER_BYTES:
                    self._simple(431, b"header too large", "-", close=True)
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            try:
                method, target, proto = head[0].split(" ", 2)
            except ValueError:
                self._simple(400, b"bad request line", "-", close=True)
                return
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self._simple(411, b"chunked request bodies are not supported; send Content-Length", "-", close=True)
                return
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                self._simple(400, b"bad Content-Length", "-", close=True)
                return
            if length > MAX_BODY_BYTES:
                self._simple(413, b"body too large", "-", close=True)
                return
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            connection = headers.get("connection", "").lower()
            self.close_after = connection == "close" or (proto == "HTTP/1.0" and connection != "keep-alive")
            path = target.split("?", 1)[0]
            root = self.server.options.root_path
            if root:
                if path != root and not path.startswith(root + "/"):
                    self._error(404, f"no route {path} (served under {root})", "NotFoundError", path)
                    continue
                path = path[len(root) :] or "/"
            key = self.server.options.api_key
            if key and path.startswith("/v1/") and headers.get("authorization", "") != f"Bearer {key}":
                # vLLM's --api-key answer: 401 with {"error": "Unauthorized"}
                self._json(401, {"error": "Unauthorized"}, path)
                continue
            self._dispatch(method, path, body)

    # ------------------------------------------------------------------ responses
    def _respond(self, status: int, content_type: str, body: bytes, path: str, close: bool = False) -> None:
        if self.transport is None:
            return
        close = close or self.close_after
        head = (
            f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n{'Connection: close' if close else 'Connection: keep-alive'}\r\n"
        ).encode()
        self.transport.write(head + self.server.common_headers + b"\r\n" + body)
        self.server.metrics.count(path, status)
        if close:
            self.transport.close()
            self.transport = None

    def _simple(self, status: int, text: bytes, path: str, close: bool = False) -> None:
        self._respond(status, "text/plain; charset=utf-8", text, path, close)

    def _json(self, status: int, payload: object, path: str) -> None:
        self._respond(status, "application/json", json.dumps(payload).encode(), path)

    def _error(self, status: int, message: str, kind: str, path: str, param: str | None = None) -> None:
        # vLLM's OpenAI-compatible error body (vllm/entrypoints/openai/protocol.py ErrorResponse)
        self._json(status, {"object": "error", "message": message, "type": kind, "param": param, "code": status}, path)

    def _dispatch(self, method: str, path: str, body: bytes) -> None:
        server = self.server
        if path in ("/health", "/ready"):
            if server.ready():
                self._simple(200, b"ok", path)
            else:
                self._simple(503, b"warming up", path)
            return
        if path == "/metrics" and method == "GET":
            self._respond(200, "text/plain; version=0.0.4; charset=utf-8", server.render_metrics(), path)
            return
        if path == "/stats" and method == "GET":
            self._json(200, server.render_stats(), path)
            return
        if path == "/v1/models" and method == "GET":
            card = {"id": server.options.model, "object": "model", "created": 0, "owned_by": "aibench-tokenstream"}
            self._json(200, {"object": "list", "data": [card]}, path)
            return
        if path not in ("/v1/completions", "/v1/chat/completions"):
            self._error(404, f"no route {path}", "NotFoundError", path)
            return
        if method != "POST":
            self._error(405, f"{path} takes POST", "MethodNotAllowed", path)
            return
        try:
            request = json.loads(body or b"{}")
            if not isinstance(request, dict):
                raise ValueError("the body must be a JSON object")
        except ValueError as exc:
            self._error(400, f"invalid JSON body: {exc}", "BadRequestError", path)
            return
        model = request.get("model")
        if model != server.options.model:
            self._error(404, f"The model `{model}` does not exist.", "NotFoundError", path, param="model")
            return
        if server.options.error_percent and server.rng.random() * 100.0 < server.options.error_percent:
            # a share of failing requests, so a mesh's retry policy has something to retry (routing tests)
            self._error(503, "injected failure (--error-percent)", "ServiceUnavailableError", path)
            return
        chat = path == "/v1/chat/completions"
        if chat and not isinstance(request.get("messages"), list):
            self._error(400, "messages: a list of chat messages is required", "BadRequestError", path, "messages")
            return
        if not chat and "prompt" not in request:
            self._error(400, "prompt: required", "BadRequestError", path, "prompt")
            return
        limit = request.get("max_tokens", request.get("max_completion_tokens"))
        n = server.options.output_tokens
        if limit is not None:
            if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
                self._error(400, f"max_tokens must be a positive integer (got {limit!r})", "BadRequestError", path)
                return
            n = min(limit, server.options.max_output_tokens)
        finish = "length"
        eos = server.options.eos_after
        if eos and n > eos and request.get("ignore_eos") is not True:
            floor = request.get("min_tokens")
            floor = floor if isinstance(floor, int) and not isinstance(floor, bool) and floor > 0 else 0
            if floor < n:
                n, finish = max(eos, floor), "stop"
        self._generate(path, request, chat, n, finish)

    # ------------------------------------------------------------------ generation
    def _generate(self, path: str, request: dict, chat: bool, n: int, finish_reason: str = "length") -> None:
        server, options = self.server, self.server.options
        t0 = self.loop.time()
        prompt_tokens = _words(request)
        server.metrics.prompt_tokens += prompt_tokens
        created = int(time.time())
        rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": n, "total_tokens": prompt_tokens + n}
        if not request.get("stream"):
            self.busy = True
            server.metrics.running += 1

            def finish() -> None:
                self.busy = False
                server.metrics.running -= 1
                server.metrics.success[finish_reason] = server.metrics.success.get(finish_reason, 0) + 1
                server.metrics.generation_tokens += n
                server.metrics.observe_ttft(options.ttft_s)
                text = options.token_text * n
                if chat:
                    choice = {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": finish_reason,
                    }
                else:
                    choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
                kind = "chat.completion" if chat else "text_completion"
                self._json(
                    200,
                    {
                        "id": rid,
                        "object": kind,
                        "created": created,
                        "model": options.model,
                        "choices": [choice],
                        "usage": usage,
                    },
                    path,
                )
                self._next_request()

            self.timers = [self.loop.call_at(t0 + options.ttft_s + max(0, n - 1) * options.tpot_s, finish)]
            return
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        kind = "chat.completion.chunk" if chat else "text_completion"
        head = (
            f'data: {{"id":"{rid}","object":"{kind}","created":{created},"model":"{options.model}","choices":['
        ).encode()
        if chat:
            first = (
                head
                + b'{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n'
            )
            token = head + b'{"index":0,"delta":{"content":%s},"logprobs":null,"finish_reason":null}]}\n\n' % (
                server.token_json.encode()
            )
            last = head + b'{"index":0,"delta":{"content":%s},"logprobs":null,"finish_reason":"%s"}]}\n\n' % (
                server.token_json.encode(),
                finish_reason.encode(),
            )
        else:
            first = b""
            token = head + b'{"index":0,"text":%s,"logprobs":null,"finish_reason":null}]}\n\n' % (
                server.token_json.encode()
            )
            last = head + b'{"index":0,"text":%s,"logprobs":null,"finish_reason":"%s"}]}\n\n' % (
                server.token_json.encode(),
                finish_reason.encode(),
            )
        tail = b""
        if include_usage:
            tail += head + b'],"usage":' + json.dumps(usage).encode() + b"}\n\n"
        tail += b"data: [DONE]\n\n"
        status_line = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\n" + (b"Connection: close\r\n" if self.close_after else b"")
        )
        assert self.transport is not None
        # headers go out at once (as vLLM's do): time to first byte is not TTFT
        self.transport.write(status_line + server.common_headers + b"\r\n" + (_chunk(first) if first else b""))
        self.busy = True
        server.metrics.running += 1
        state = {"next": 0, "late": 0.0}

        def emit() -> None:
            if self.transport is None:
                return
            now = self.loop.time()
            i = state["next"]
            due_count = n if options.tpot_s <= 0 else min(n, int((now - t0 - options.ttft_s) / options.tpot_s) + 1)
            due_count = max(due_count, i + 1)
            out = [token] * (due_count - i)
            if due_count == n:
                out[-1] = last
            payload = b"".join(out)
            if i == 0:
                late = now - (t0 + options.ttft_s)
                state["late"] = late
                server.metrics.observe_ttft(now - t0)
                if len(server.metrics.first_late) < STATS_CAP:
                    server.metrics.first_late.append(late)
            elif len(server.metrics.gap_late) < STATS_CAP and options.tpot_s > 0:
                server.metrics.gap_late.append(now - (t0 + options.ttft_s + i * options.tpot_s))
            state["next"] = due_count
            if due_count < n:
                self.transport.write(_chunk(payload))
                when = t0 + options.ttft_s + due_count * options.tpot_s
                self.timers = [self.loop.call_at(when - WAKE_EARLY_S, emit)]
                return
            # an SSE comment (ignored by SSE clients) with this request's own first-token lateness, so a load
            # generator's error can be told apart from the server's
            timing = b": aibench first_token_late_us=%d\n\n" % round(state["late"] * 1e6)
            self.transport.write(_chunk(payload + timing + tail) + b"0\r\n\r\n")
            self.timers = []
            self.busy = False
            server.metrics.running -= 1
            server.metrics.generation_tokens += n
            server.metrics.success[finish_reason] = server.metrics.success.get(finish_reason, 0) + 1
            server.metrics.count(path, 200)
            if self.close_after:
                self.transport.close()
                self.transport = None
                return
            self._next_request()

        self.timers = [self.loop.call_at(t0 + options.ttft_s - WAKE_EARLY_S, emit)]


def parse_args(argv: list[str] | None = None) -> tuple[Options, str, int, tuple[str, str, str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--ttft-ms", type=float, default=100.0, help="time to first token")
    parser.add_argument("--tpot-ms", type=float, default=20.0, help="time per output token after the first")
    parser.add_argument("--output-tokens", type=int, default=32, help="tokens when the request sets no max_tokens")
    parser.add_argument("--max-output-tokens", type=int, default=4096, help="cap on a request's max_tokens")
    parser.add_argument("--token-text", default=" hello")
    parser.add_argument("--model", default="aibench-tokenstream")
    parser.add_argument("--version", default="v1", help="label reported in x-aibench-version (routing tests)")
    parser.add_argument("--ready-after-s", type=float, default=0.0, help="/health answers 503 until then")
    parser.add_argument("--error-percent", type=float, default=0.0, help="share of completions refused with 503")
    parser.add_argument(
        "--eos-after",
        type=int,
        default=0,
        help="end the sequence after N tokens unless ignore_eos/min_tokens (0: never)",
    )
    parser.add_argument("--root-path", default="", help="serve every route under this path prefix (/prefix)")
    parser.add_argument("--api-key", default="", help="refuse /v1/ requests without 'Authorization: Bearer KEY' (401)")
    parser.add_argument(
        "--reuse-port",
        action="store_true",
        help="SO_REUSEPORT: several streamer processes share one port (the kernel spreads connections over them)",
    )
    parser.add_argument("--tls-cert", default="", help="PEM certificate: serve HTTPS (with --tls-key)")
    parser.add_argument("--tls-key", default="", help="PEM private key of --tls-cert")
    args = parser.parse_args(argv)
    problems = [
        name
        for name, bad in (
            ("--ttft-ms", args.ttft_ms < 0),
            ("--tpot-ms", args.tpot_ms < 0),
            ("--output-tokens", args.output_tokens < 1),
            ("--max-output-tokens", args.max_output_tokens < 1),
            ("--port", not 0 < args.port < 65536),
            ("--ready-after-s", args.ready_after_s < 0),
            ("--error-percent", not 0 <= args.error_percent <= 100),
            ("--eos-after", args.eos_after < 0),
            (
                "--root-path",
                bool(args.root_path) and (not args.root_path.startswith("/") or args.root_path.endswith("/")),
            ),
            ("--tls-key", bool(args.tls_cert) != bool(args.tls_key)),
        )
        if bad
    ]
    if problems:
        parser.error(f"{problems[0]}: out of range")
    options = Options(
        ttft_s=args.ttft_ms / 1e3,
        tpot_s=args.tpot_ms / 1e3,
        output_tokens=args.output_tokens,
        max_output_tokens=args.max_output_tokens,
        token_text=args.token_text,
        model=args.model,
        version=args.version,
        pod=os.environ.get("POD_NAME") or socket.gethostname(),
        ready_after_s=args.ready_after_s,
        error_percent=args.error_percent,
        eos_after=args.eos_after,
        root_path=args.root_path,
        api_key=args.api_key,
    )
    return options, args.host, args.port, (args.tls_cert, args.tls_key, "reuse-port" if args.reuse_port else "")


async def serve(options: Options, host: str, port: int, tls: tuple[str, str, str] = ("", "", "")) -> None:
    loop = asyncio.get_running_loop()
    server = Server(options)
    context = None
    if tls[0]:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tls[0], tls[1])
    listener = await loop.create_server(
        lambda: Connection(server), host, port, backlog=4096, reuse_address=True, reuse_port=bool(tls[2]), ssl=context
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    bound = ", ".join(str(s.getsockname()[:2]) for s in listener.sockets)
    print(
        f"tokenstream pid={os.getpid()} listening on {bound} {'https' if context else 'http'} "
        f"model={options.model} version={options.version} "
        f"ttft_ms={options.ttft_s * 1e3:g} tpot_ms={options.tpot_s * 1e3:g} output_tokens={options.output_tokens}",
        flush=True,
    )
    await stop.wait()
    listener.close()
    # the count of answered streams: with --reuse-port each process serves a share, and /metrics reaches only one
    served = sum(server.metrics.success.values())
    print(f"tokenstream: stopping (signal) pid={os.getpid()} served={served}", flush=True)


def main(argv: list[str] | None = None) -> int:
    options, host, port, tls = parse_args(argv)
    # A reference clock must not stall: a full collection of a busy interpreter takes milliseconds, which would
    # show up as server lateness at the p99. Start-up objects are frozen out of collection, and the young
    # generation is collected less often (no reference cycles are created per request).
    gc.freeze()
    gc.set_threshold(50_000, 50, 1000)
    try:
        asyncio.run(serve(options, host, port, tls))
    except OSError as exc:
        print(f"tokenstream: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
