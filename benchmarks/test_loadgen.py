"""Load generator fidelity and speed: locust with the serving suite's user classes against the token streamer.

Fidelity: the streamer is set to TTFT 100 ms and TPOT 20 ms (32 tokens); what the load generator reports must be
within +-2 % of that at the median and +-5 % at the p99, at 1 and at 64 concurrent streams, with the asked number
of requests really in flight (Little's law over the raw samples) and no client-side queueing.

Speed: against a zero-latency streamer the generator must sustain >= 1,400 streamed requests/s (twice
inference-perf's 704 on this machine, ../shared/research/inference-loadgen-anchors.md section 4), with every
request timed: the server's own success count equals the client's sample count, and every chunk was time-stamped.
Measured directly on loopback and through the embedded target's userspace Service proxy.

Every process started here is stopped by PID; all traffic is on 127.0.0.0/8; every run is bounded in time and count.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from harness.embedded.network import Backend, ServiceProxy
from harness.parsers.exposition import parse_exposition
from harness.runners.load import LoadRun, RequestProfile, load_shape, run_local
from harness.statistics import Method, percentiles

SCRIPT = Path(__file__).resolve().parent.parent / "workloads" / "inference-server" / "tokenstream.py"
TTFT_S, TPOT_S, TOKENS = 0.100, 0.020, 32
REQUEST = RequestProfile(max_tokens=TOKENS, prompt_words=128)


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@pytest.fixture
def streamer(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Factory: ``streamer(ttft_ms, tpot_ms)`` -> base URL of a token streamer on loopback (stopped by PID)."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(ttft_ms: float, tpot_ms: float) -> str:
        port = _free_port()
        log = (tmp_path / f"streamer-{port}.log").open("wb")
        argv = [sys.executable, str(SCRIPT), "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--ttft-ms", f"{ttft_ms:g}", "--tpot-ms", f"{tpot_ms:g}", "--output-tokens", str(TOKENS)]
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        procs.append(proc)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return f"http://127.0.0.1:{port}"
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    log_text = (tmp_path / f"streamer-{port}.log").read_text()
                    raise RuntimeError(f"streamer did not start: {log_text}") from None
                time.sleep(0.05)

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _served(url: str) -> float:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as answer:
        series = parse_exposition(answer.read().decode())
    return sum(s.value for s in series if s.name == "vllm:request_success_total")


def _server_lateness(url: str) -> dict[str, float]:
    """The streamer's own first-token lateness against its deadlines (ground truth the client cannot beat)."""
    with urllib.request.urlopen(url + "/stats", timeout=10) as answer:
        stats = json.loads(answer.read())
    late = stats["first_token_late_ms"]
    return {
        "server_first_token_late_ms_p50": round(late["p50"], 2),
        "server_first_token_late_ms_p99": round(late["p99"], 2),
    }


def _record(benchmark: object, run: LoadRun, **extra: float | str) -> None:
    summary = run.summary()
    info = benchmark.extra_info  # type: ignore[attr-defined]
    info.update(
        {
            "requests": summary.requests,
            "req_per_s": round(summary.requests_per_s, 1),
            "ttft_ms_p50_p90_p99": [round(summary.ttft[q] * 1e3, 2) for q in (50, 90, 99)],
            "tpot_ms_p50_p90_p99": [round(summary.tpot[q] * 1e3, 3) for q in (50, 90, 99)] if summary.tpot else [],
            "inflight_mean": round(summary.inflight_mean, 2),
            "queue_ms_p99": round(summary.queue[99] * 1e3, 3),
            "loadavg_1m": round(os.getloadavg()[0], 2),
            **extra,
        }
    )


def _children_cpu_s() -> float:
    """CPU seconds of this process's reaped children (the locust run, which has ended when this is read)."""
    times = psutil.Process().cpu_times()
    return times.children_user + times.children_system


@pytest.mark.parametrize("concurrency", [1, 64])
def test_ttft_tpot_fidelity(benchmark, streamer, tmp_path: Path, concurrency: int) -> None:
    """TTFT/TPOT medians within +-2 %, p99 within +-5 % of the set 100 ms / 20 ms; in flight == concurrency."""
    url = streamer(TTFT_S * 1e3, TPOT_S * 1e3)
    duration = 30 if concurrency == 1 else 12  # >= 40 requests at 1 stream: the p99 is not just the maximum
    shape = load_shape({"concurrency": concurrency, "duration_s": duration, "warmup_s": 1, "max_requests": 100_000})
    run = benchmark.pedantic(lambda: run_local(url, shape, REQUEST, workdir=tmp_path / "load"), rounds=1, iterations=1)
    summary = run.summary()
    server = _server_lateness(url)
    # the generator's own share: client TTFT minus when the server really wrote the first token (its lateness
    # comes back in each stream), for the requests of the measured window
    origin = min(x.start for x in run.samples)
    own = [s.ttft - (TTFT_S + s.server_late) for s in run.samples if s.start - origin >= shape.warmup_s]
    own_p = percentiles(own, (50, 99), method=Method.LINEAR)
    server["generator_ttft_error_ms_p50_p99"] = [round(own_p[50] * 1e3, 2), round(own_p[99] * 1e3, 2)]
    _record(benchmark, run, **server)
    why = f"client TTFT {summary.ttft}; the server's own first-token lateness (ms): {server}"
    assert summary.failures == 0
    assert own_p[99] <= 0.05 * TTFT_S, f"the load generator itself added {own_p[99] * 1e3:.1f} ms at the p99"
    assert summary.ttft[50] == pytest.approx(TTFT_S, rel=0.02), why
    assert summary.ttft[99] == pytest.approx(TTFT_S, rel=0.05), why
    assert summary.tpot[50] == pytest.approx(TPOT_S, rel=0.02), summary.tpot
    assert summary.tpot[99] == pytest.approx(TPOT_S, rel=0.05), summary.tpot
    assert summary.inflight_mean == pytest.approx(concurrency, rel=0.02), summary.inflight_mean
    assert summary.queue[99] == 0.0  # closed loop: nothing waits client-side, so TTFT hides nothing
    # the in-flight count each request saw at its send: all C streams, bar the odd late spawn on a busy machine
    origin = min(x.start for x in run.samples)
    seen = [s.inflight for s in run.samples if s.start - origin >= shape.warmup_s]
    assert sum(f == concurrency for f in seen) >= 0.99 * len(seen), sorted(set(seen))


def _throughput(benchmark, url: str, server_url: str, tmp_path: Path, concurrency: int) -> LoadRun:
    shape = load_shape({"concurrency": concurrency, "duration_s": 8, "warmup_s": 1, "max_requests": 200_000})
    before = _served(server_url)
    started_cpu = _children_cpu_s()
    run = benchmark.pedantic(lambda: run_local(url, shape, REQUEST, workdir=tmp_path / "load"), rounds=1, iterations=1)
    served = _served(server_url) - before
    summary = run.summary()
    _record(
        benchmark,
        run,
        server_counted=served,
        client_samples=len(run.samples),
        locust_cpu_s=round(_children_cpu_s() - started_cpu, 1),
        wall_s=round(run.wall_s, 1),
    )
    assert summary.failures == 0
    assert served == len(run.samples), "the server answered requests the client did not time (or the reverse)"
    assert all(s.chunks == TOKENS and len(s.itl) == TOKENS - 1 for s in run.samples), "a chunk was not timed"
    assert summary.requests_per_s >= 1400, f"{summary.requests_per_s:.0f} req/s"
    return run


def test_zero_latency_throughput_direct(benchmark, streamer, tmp_path: Path) -> None:
    """>= 1,400 req/s of 32-token streams on loopback with every request and chunk timed."""
    url = streamer(0, 0)
    _throughput(benchmark, url, url, tmp_path, concurrency=32)


def test_zero_latency_throughput_through_service_proxy(benchmark, streamer, tmp_path: Path) -> None:
    """The same through the embedded target's userspace kube-proxy (a ClusterIP on 127.96.0.0/12): the proxy is
    in the path of every serving test on the embedded target, so it must not be the bottleneck either."""
    url = streamer(0, 0)
    backend_port = int(url.rsplit(":", 1)[1])
    proxy = ServiceProxy()
    cluster_ip = f"127.{random.randint(96, 111)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
    port = _free_port(cluster_ip)
    try:
        proxy.sync(cluster_ip, port, [Backend("127.0.0.1", backend_port)])
        _throughput(benchmark, f"http://{cluster_ip}:{port}", url, tmp_path, concurrency=32)
    finally:
        proxy.stop()
