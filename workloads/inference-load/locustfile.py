"""locust user classes that time streamed OpenAI-compatible completions exactly, and write one raw sample per
request.

Why not locust's own clients: FastHttpUser's ``iter_content(n)`` waits until n bytes are buffered, so SSE
messages are released one token late (TTFT +1 TPOT) unless n == 1, which then costs a core at ~90 req/s;
HttpUser tops out near 1k req/s and adds ~10 % to TTFT at 64 streams (../shared/research/
inference-loadgen-anchors.md section 6.2). Here each user owns one keep-alive connection on a gevent socket and
time-stamps every ``recv()`` as it returns, so a token is timed when its bytes reach the client, at a cost of a few
microseconds per chunk. The samples are also fired as locust events (``POST`` = end to end, ``TTFT``, ``TPOT``)
so locust's own CSV and web UI show the run; the raw samples are what the harness measures with (locust's stored
percentiles are rounded to 10 ms between 100 ms and 1 s).

Why these classes and not a separate asyncio client (considered for issue 16's >= 5,000 req/s): the time a
generator loses is not in its HTTP parsing but in how often a finished stream waits before its next send; the
closed loop below sends back to back inside one task call (locust's wait between tasks had left 10 of 32 streams
off the wire), which brought the in-flight count to 99.3 % of the asked concurrency, and more load processes
(``--processes``) add cores. The same file runs unchanged in locust's image in the cluster
(benchmarks/README.md, "Load generator").

Two shapes, chosen by the user class:

- ``ConcurrencyUser`` (closed loop): ``-u C`` users, each sends its next request when the last one ends, so
  exactly C requests are in flight; the in-flight count at each send is recorded, not assumed.
- ``ArrivalUser`` (open loop, ``-u 1``): requests are started at Poisson arrival times of rate LG_RATE; at most
  LG_MAX_INFLIGHT run at once; an arrival that finds them all busy waits, and that wait is recorded as
  ``q`` (client-side queueing), never inside TTFT.

Configuration (environment): LG_PATH (the request path with the endpoint's prefix kept, e.g.
``/prefix/v1/completions``), LG_MODEL (empty: the first id of GET <prefix>/v1/models, asked once per process),
LG_PROMPT_WORDS, LG_MAX_TOKENS, LG_PROMPTS_FILE or LG_PROMPTS_B64 (a prompt pool: JSON lines
``{"prompt": ..., "max_tokens": N}``, the second gzip+base64 for the in-cluster Job; without one every prompt is
LG_PROMPT_WORDS words), LG_EXTRA_BODY (JSON object merged into every request body: ``ignore_eos``, ``min_tokens``),
LG_HEADERS (JSON object of extra request headers), LG_TLS_VERIFY (0: no certificate check, --insecure) and
LG_CA_FILE, LG_SAMPLES_DIR (one JSONL file per process),
LG_MAX_REQUESTS (bound in count; the run stops when reached), LG_DURATION_S (no request is sent after it: the
warm-up plus the measured duration), LG_RATE, LG_MAX_INFLIGHT, LG_SEED, LG_TIMEOUT_S (per request), LG_RAMP_S and
LG_USERS (closed loop: first requests evenly spaced over the ramp). The target comes from locust's ``--host``
(http://host:port or https://host:port).

Every prompt starts with a word unique to its request (a random process tag and a counter), so no two requests
share a prefix a server's prefix cache could reuse: TTFT is not flattered by cached prompts.

One sample line (JSON): ``t`` send time (s, CLOCK_MONOTONIC: comparable across the load processes of one
machine or pod), ``q`` queueing before the send (s),
``ttft`` first non-empty token (s after the send; null if none), ``e2e`` (s), ``n`` output tokens (the server's
usage count when sent, else content chunks), ``chunks`` content chunks, ``itl`` gaps between content chunks
(microseconds), ``status`` HTTP status (0 = no response), ``err`` error text, ``ver``/``pod`` (the backend's
x-aibench-version / x-aibench-pod headers when present), ``f`` requests in flight in this process at the send,
``sl`` the reference server's own first-token lateness (s) when it reports it, ``lt`` (open loop) how late the
generator itself was for the scheduled arrival (s, before any wait for an in-flight slot),
``body`` the start of an error response's body.
"""

from __future__ import annotations

import base64
import gc
import gzip
import itertools
import json
import os
import random
import re
import time
from urllib.parse import urlsplit

import gevent
from gevent import socket, ssl
from gevent.lock import Semaphore
from gevent.pool import Group
from locust import User, constant, events, task
from locust.exception import StopUser

clock = time.perf_counter
# Collections of locust's interpreter would pause every greenlet for milliseconds and land in some requests'
# TTFT; start-up objects are frozen and the young generation is collected less often.
gc.freeze()
gc.set_threshold(50_000, 50, 1000)
TOKEN = re.compile(rb'"(?:text|content)":\s*"(?!")')  # non-empty text/content: skips role-only and usage chunks
USAGE = re.compile(rb'"completion_tokens":\s*(\d+)')
SERVER_LATE = re.compile(rb"first_token_late_us=(-?\d+)")  # the reference server's own lateness (SSE comment)
RECV_BYTES = 65536
MODELS_MAX_BYTES = 1 << 20  # a model list larger than this is no model list


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


PATH = _env("LG_PATH", "/v1/completions")
MODEL = _env("LG_MODEL", "")
PROMPT_WORDS = int(_env("LG_PROMPT_WORDS", "128"))
MAX_TOKENS = int(_env("LG_MAX_TOKENS", "32"))
EXTRA_HEADERS = json.loads(_env("LG_HEADERS", "{}"))
SAMPLES_DIR = _env("LG_SAMPLES_DIR", ".")
MAX_REQUESTS = int(_env("LG_MAX_REQUESTS", "1000000"))
RATE = float(_env("LG_RATE", "0"))
MAX_INFLIGHT = int(_env("LG_MAX_INFLIGHT", "256"))
TIMEOUT_S = float(_env("LG_TIMEOUT_S", "60"))
RAMP_S = float(_env("LG_RAMP_S", "0"))  # closed loop: the users' first requests are spread over this
USERS = int(_env("LG_USERS", "1"))  # closed-loop users of this process
DURATION_S = float(_env("LG_DURATION_S", "0"))  # sending stops after this (0: when locust stops the users)
SEED = int(_env("LG_SEED", "0"))
EXTRA_BODY = json.loads(_env("LG_EXTRA_BODY", "{}"))
TLS_VERIFY = _env("LG_TLS_VERIFY", "1") != "0"
CA_FILE = _env("LG_CA_FILE", "")
TAG = os.urandom(4).hex()  # this process's part of every prompt's unique first word


def _load_prompts() -> list[tuple[str, int]]:
    text = ""
    if _env("LG_PROMPTS_FILE", ""):
        with open(_env("LG_PROMPTS_FILE", "")) as handle:
            text = handle.read()
    elif _env("LG_PROMPTS_B64", ""):
        text = gzip.decompress(base64.b64decode(_env("LG_PROMPTS_B64", ""))).decode()
    pool = []
    for line in text.splitlines():
        if line.strip():
            item = json.loads(line)
            pool.append((str(item["prompt"]), int(item["max_tokens"])))
    return pool or [(" ".join(["hello"] * max(0, PROMPT_WORDS - 1)), MAX_TOKENS)]


PROMPTS = _load_prompts()


class Prompts:
    """The next request body: the pool in turn (from a seeded random start per process), each prompt led by a
    word unique to the request. The default fixed prompt has LG_PROMPT_WORDS words with that word included."""

    def __init__(self) -> None:
        self.count = itertools.count()
        self.offset = random.Random(f"{SEED}-{TAG}").randrange(len(PROMPTS))

    def body(self, model: str) -> bytes:
        n = next(self.count)
        prompt, max_tokens = PROMPTS[(self.offset + n) % len(PROMPTS)]
        prompt = f"r{TAG}x{n} {prompt}" if prompt else f"r{TAG}x{n}"
        body: dict = {
            "model": model,
            "max_tokens": max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            **EXTRA_BODY,
        }
        if "min_tokens" in EXTRA_BODY:
            body["min_tokens"] = max_tokens  # the extension asks for exactly max_tokens
        if PATH.endswith("/chat/completions"):
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        return json.dumps(body).encode()


PROMPT_SOURCE = Prompts()


def tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=CA_FILE or None)
    if not TLS_VERIFY:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class ProcessState:
    """Per process: the samples file, the request budget, the in-flight count."""

    def __init__(self) -> None:
        self.file = None
        self.model = MODEL
        self.sent = 0
        self.inflight = 0
        self.active = 0  # users running in this process
        self.deadline: float | None = None  # when users stop sending (LG_DURATION_S after the first started)

    def open(self) -> None:
        if self.file is None:
            os.makedirs(SAMPLES_DIR, exist_ok=True)
            self.file = open(os.path.join(SAMPLES_DIR, f"samples-{os.getpid()}.jsonl"), "w", buffering=1 << 20)  # noqa: SIM115

    def take(self) -> bool:
        """Claim one request of the budget (LG_MAX_REQUESTS per process)."""
        if self.sent >= MAX_REQUESTS:
            return False
        self.sent += 1
        return True

    def write(self, sample: dict) -> None:
        self.open()
        self.file.write(json.dumps(sample, separators=(",", ":")) + "\n")

    def close(self) -> None:
        if self.file is not None:
            self.file.flush()
            self.file.close()
            self.file = None


STATE = ProcessState()


@events.quitting.add_listener
def _flush(environment: object, **_kwargs: object) -> None:
    STATE.close()


@events.test_stop.add_listener
def _flush_on_stop(environment: object, **_kwargs: object) -> None:
    if STATE.file is not None:
        STATE.file.flush()


class StreamClient:
    """One keep-alive HTTP/1.1 connection: send a POST, read the response as it arrives, time each read."""

    def __init__(self, host: str) -> None:
        parts = urlsplit(host)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--host must be http(s)://host:port (got {host!r})")
        self.tls = tls_context() if parts.scheme == "https" else None
        self.hostname = parts.hostname
        self.address = (parts.hostname, parts.port or (443 if self.tls else 80))
        self.host_header = parts.netloc
        self.sock: socket.socket | None = None
        headers = "".join(f"{k}: {v}\r\n" for k, v in EXTRA_HEADERS.items())
        if not any(k.lower() == "host" for k in EXTRA_HEADERS):  # a Host header given routes through a gateway
            headers = f"Host: {self.host_header}\r\n" + headers
        self.headers = headers
        self.head = f"POST {PATH} HTTP/1.1\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\n{headers}"
        self.model = STATE.model
        self.request = b""

    def resolve_model(self) -> str:
        """The first id of GET <prefix>/v1/models, asked once per process (vLLM serves one model)."""
        prefix = PATH.split("/v1/", 1)[0]
        sock = self._connect()
        try:
            sock.sendall(f"GET {prefix}/v1/models HTTP/1.1\r\n{self.headers}Connection: close\r\n\r\n".encode())
            data = b""
            while len(data) < MODELS_MAX_BYTES and (chunk := sock.recv(RECV_BYTES)):
                data += chunk
        finally:
            sock.close()
        head, _, body = data.partition(b"\r\n\r\n")
        if b"chunked" in head.lower():
            body = _Body(True, None).feed(body)
        try:
            STATE.model = str(json.loads(body)["data"][0]["id"])
        except (ValueError, KeyError, IndexError, TypeError):
            raise ValueError(f"GET {prefix}/v1/models named no model: {head[:80]!r} {body[:200]!r}") from None
        return STATE.model

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=TIMEOUT_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_hostname=self.hostname)
        return sock

    def run(self, queued_s: float, late_s: float | None = None) -> dict:
        """One request; never raises: failures are samples with ``status``/``err`` set."""
        problem = ""
        if not self.model:
            try:
                self.model = STATE.model or self.resolve_model()
            except (OSError, ValueError) as exc:
                problem = f"model lookup: {type(exc).__name__}: {exc}"[:300]
        body = PROMPT_SOURCE.body(self.model)
        self.request = (self.head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        STATE.inflight += 1
        inflight = STATE.inflight
        start = clock()
        sample = {
            "t": start,
            "q": queued_s,
            "ttft": None,
            "e2e": 0.0,
            "n": 0,
            "chunks": 0,
            "itl": [],
            "status": 0,
            "err": "",
            "ver": "",
            "pod": "",
            "f": inflight,
        }
        if late_s is not None:
            sample["lt"] = late_s
        try:
            if problem:
                raise ValueError(problem)
            self._exchange(sample, start)
        except (OSError, ValueError, IndexError) as exc:  # socket.timeout is an OSError; IndexError: bad status line
            self.close()
            sample["err"] = sample["err"] or f"{type(exc).__name__}: {exc}"[:300]
        finally:
            STATE.inflight -= 1
        sample["e2e"] = clock() - start
        return sample

    def _exchange(self, sample: dict, start: float) -> None:
        fresh = self.sock is None
        if fresh:
            self.sock = self._connect()
        try:
            self.sock.sendall(self.request)
            data = self.sock.recv(RECV_BYTES)
        except OSError:
            if fresh:
                raise
            self.close()  # a kept-alive connection the server had closed: reconnect once
            self.sock = self._connect()
            self.sock.sendall(self.request)
            data = self.sock.recv(RECV_BYTES)
        now = clock()
        buf = data
        while b"\r\n\r\n" not in buf:
            if not data:
                raise ValueError("connection closed before the response headers")
            data = self.sock.recv(RECV_BYTES)
            now = clock()
            buf += data
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        sample["status"] = status
        sample["ver"] = headers.get("x-aibench-version", "")
        sample["pod"] = headers.get("x-aibench-pod", "")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = None if chunked else int(headers.get("content-length", "-1"))
        keep = headers.get("connection", "").lower() != "close"
        body = _Body(chunked, length)
        events_buf = b""
        times: list[float] = []
        usage_n = None
        pending = rest
        while True:
            payload = body.feed(pending)
            if payload:
                if status != 200:
                    sample["body"] = (sample.get("body", "") + payload.decode("utf-8", "replace"))[:500]
                else:
                    events_buf += payload
                    while b"\n\n" in events_buf:
                        event, _, events_buf = events_buf.partition(b"\n\n")
                        if TOKEN.search(event):
                            times.append(now)
                        elif event.startswith(b":") and (m := SERVER_LATE.search(event)):
                            sample["sl"] = int(m.group(1)) / 1e6
                        elif b'"usage"' in event and (m := USAGE.search(event)):
                            usage_n = int(m.group(1))
            if body.done:
                break
            pending = self.sock.recv(RECV_BYTES)
            now = clock()
            if not pending:
                if length == -1:
                    break
                raise ValueError("connection closed mid-response")
        if not keep or length == -1:
            self.close()
        if status != 200:
            sample["err"] = f"HTTP {status}"
            return
        if times:
            sample["ttft"] = times[0] - start
            sample["itl"] = [round((b - a) * 1e6) for a, b in itertools.pairwise(times)]
        sample["chunks"] = len(times)
        sample["n"] = usage_n if usage_n is not None else len(times)
        if not times:
            sample["err"] = "no content tokens in the stream"


class _Body:
    """Incremental HTTP/1.1 body decoder (chunked or Content-Length)."""

    __slots__ = ("buf", "chunked", "done", "remaining")

    def __init__(self, chunked: bool, length: int | None) -> None:
        self.chunked = chunked
        self.remaining = length if length is not None and length >= 0 else None
        self.buf = b""
        self.done = not chunked and self.remaining == 0

    def feed(self, data: bytes) -> bytes:
        if not self.chunked:
            if self.remaining is None:
                return data
            out = data[: self.remaining]
            self.remaining -= len(out)
            self.done = self.remaining == 0
            return out
        self.buf += data
        out = []
        while True:
            end = self.buf.find(b"\r\n")
            if end < 0:
                break
            size = int(self.buf[:end].split(b";", 1)[0], 16)
            if size == 0:
                if self.buf.find(b"\r\n", end + 2) < 0:
                    break  # wait for the final CRLF of the trailer section
                self.done = True
                self.buf = b""
                break
            if len(self.buf) < end + 2 + size + 2:
                break
            out.append(self.buf[end + 2 : end + 2 + size])
            self.buf = self.buf[end + 2 + size + 2 :]
        return b"".join(out)


def fire(user: User, sample: dict) -> None:
    """Report the sample to locust (its CSV/UI), then keep it raw for the harness."""
    fire_event = user.environment.events.request.fire
    error = Exception(sample["err"]) if sample["err"] else None
    fire_event(
        request_type="POST",
        name=PATH,
        response_time=sample["e2e"] * 1e3,
        response_length=sample["n"],
        exception=error,
        context={},
    )
    if sample["ttft"] is not None:
        fire_event(
            request_type="TTFT",
            name=PATH,
            response_time=sample["ttft"] * 1e3,
            response_length=0,
            exception=None,
            context={},
        )
        if sample["n"] > 1:
            tpot = (sample["e2e"] - sample["ttft"]) / (sample["n"] - 1)
            fire_event(
                request_type="TPOT", name=PATH, response_time=tpot * 1e3, response_length=0, exception=None, context={}
            )
    STATE.write(sample)


def _stop(user: User) -> None:
    runner = user.environment.runner
    if runner is not None:
        gevent.spawn(runner.quit)


class ConcurrencyUser(User):
    """Closed loop: one request at a time per user, back to back, until LG_DURATION_S after the first user
    started or the request budget is spent. Users stop themselves between requests, so no request is cut off
    (the server's count and the samples agree); the last one to stop ends the run."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.client = StreamClient(self.host)
        index = STATE.active
        STATE.active += 1
        if STATE.deadline is None and DURATION_S > 0:
            STATE.deadline = clock() + DURATION_S
        # Evenly spaced first requests: streams started together stay in lock-step (every stream's next request
        # lands in the same millisecond, measured +23 % TTFT p99 at 64 streams); locust's spawner does not
        # spread them at high spawn rates, so each user waits its own share of the ramp.
        if RAMP_S > 0 and USERS > 1:
            gevent.sleep(RAMP_S * index / USERS)

    def on_stop(self) -> None:
        self.client.close()
        STATE.active -= 1
        if STATE.active == 0:
            _stop(self)

    @task
    def one(self) -> None:
        # Back to back inside one task call: returning to locust between requests passes through its wait
        # (gevent.sleep(0)), which puts this stream behind every other ready greenlet, and that wait is time with
        # no request on the wire (22.9 of 32 streams in flight at 8.9k req/s, measured).
        while (STATE.deadline is None or clock() < STATE.deadline) and STATE.take():
            fire(self, self.client.run(0.0))
        raise StopUser()


class ArrivalUser(User):
    """Open loop: Poisson arrivals at LG_RATE per second, at most LG_MAX_INFLIGHT at once."""

    fixed_count = 1
    wait_time = constant(0)

    def on_start(self) -> None:
        if RATE <= 0:
            raise ValueError("ArrivalUser needs LG_RATE > 0")
        self.rng = random.Random(SEED)
        self.slots = Semaphore(MAX_INFLIGHT)
        self.idle: list[StreamClient] = []
        self.greenlets = Group()

    def on_stop(self) -> None:
        self.greenlets.kill(block=True, timeout=5)
        for c in self.idle:
            c.close()

    def _one(self, scheduled: float) -> None:
        late = max(0.0, clock() - scheduled)  # the generator's own lateness, before any wait for a slot
        with self.slots:
            queued = max(0.0, clock() - scheduled)
            client = self.idle.pop() if self.idle else StreamClient(self.host)
            try:
                fire(self, client.run(queued, late))
            finally:
                self.idle.append(client)

    @task
    def arrivals(self) -> None:
        begin = next_at = clock()
        while True:
            next_at += self.rng.expovariate(RATE)
            if DURATION_S and next_at - begin >= DURATION_S:
                break  # the last arrival of the window; running requests still finish
            if not STATE.take():
                break
            delay = next_at - clock()
            if delay > 0:
                gevent.sleep(delay)
            self.greenlets.spawn(self._one, next_at)
        self.greenlets.join(timeout=TIMEOUT_S)
        _stop(self)
        raise StopUser()
