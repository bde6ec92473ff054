"""Load generator fidelity and speed: the serving suite's load generator (locust with the user classes of
``workloads/inference-load/locustfile.py``, the one ``k8s-ai-bench load`` runs) against the token streamer.

Fidelity (issue 16): the streamer is set to TTFT 100 ms and TPOT 20 ms (32 tokens); what the load generator
reports must be within +-2 % of that at the median and +-3 % at the p99, at 1, 64 and 256 concurrent streams, over
plain http and over https with a path prefix (the way a real endpoint behind a gateway is reached), with the asked
number of requests really in flight (Little's law over the raw samples) and no client-side queueing.

Speed (issue 16): against a zero-latency streamer the generator must sustain >= 5,000 streamed requests/s with the
time-averaged in-flight count equal to the asked concurrency (+-2 %): below that the generator, not the server, is
the bottleneck. The server side runs as several streamer processes sharing one port (SO_REUSEPORT) so it is not
what limits; the generator runs as several locust processes. Every request is timed: the servers' own success
counts (printed by each process when it stops) equal the client's sample count, and every chunk was time-stamped.
On the project's 2-core CI machine (shared with the server) the target is out of reach and the test fails with the
measured number; it is a target for a machine with a core per process. The embedded target's userspace Service
proxy keeps its own bar (>= 1,400 req/s, twice inference-perf's 704 here).

Why locust's processes with our own socket client and not a new asyncio client: the user classes already time each
``recv()`` as it returns (no chunk lag, unlike FastHttpUser's ``iter_content``), run unchanged in locust's image in
the cluster, and scale by processes; on this machine the streamer, not the client, saturated first
(../shared/research/inference-loadgen-anchors.md section 4: ~2.8k req/s server-bound at ~1 client core).

Every process started here is stopped by PID; all traffic is on 127.0.0.0/8; every run is bounded in time and count.
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from harness.embedded.network import Backend, ServiceProxy
from harness.embedded.tls import make_serving_cert
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
    """Factory: ``streamer(ttft_ms, tpot_ms, tls=False, prefix="", processes=1)`` -> base URL of a token streamer on
    loopback (``processes`` > 1: that many sharing the port). Stopped by PID; ``served()`` sums their counts."""
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    cert = make_serving_cert(tmp_path / "pki")

    def start(ttft_ms: float, tpot_ms: float, *, tls: bool = False, prefix: str = "", processes: int = 1) -> str:
        port = _free_port()
        argv = [sys.executable, str(SCRIPT), "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--ttft-ms", f"{ttft_ms:g}", "--tpot-ms", f"{tpot_ms:g}", "--output-tokens", str(TOKENS)]
        if tls:
            argv += ["--tls-cert", str(cert.cert_path), "--tls-key", str(cert.key_path)]
        if prefix:
            argv += ["--root-path", prefix]
        if processes > 1:
            argv += ["--reuse-port"]
        for i in range(processes):
            log_path = tmp_path / f"streamer-{port}-{i}.log"
            with log_path.open("wb") as log:
                procs.append((subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT), log_path))
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or any(p.poll() is not None for p, _ in procs):
                    raise RuntimeError(f"streamer did not start: {procs[-1][1].read_text()}") from None
                time.sleep(0.05)
        return f"{'https' if tls else 'http'}://127.0.0.1:{port}{prefix}"

    def served() -> int:
        """Stop every streamer and return the streams they answered (each prints its count when it stops)."""
        _stop(procs)
        return sum(int(m.group(1)) for _, path in procs for m in re.finditer(r"served=(\d+)", path.read_text()))

    start.ca = str(cert.ca_path)  # type: ignore[attr-defined]
    start.served = served  # type: ignore[attr-defined]
    yield start
    _stop(procs)


def _stop(procs: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
    for proc, _ in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc, _ in procs:
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


@pytest.mark.parametrize("transport", ["http", "https+prefix"])
@pytest.mark.parametrize("concurrency", [1, 64, 256])
def test_ttft_tpot_fidelity(benchmark, streamer, tmp_path: Path, concurrency: int, transport: str) -> None:
    """TTFT/TPOT medians within +-2 %, p99 within +-3 % of the set 100 ms / 20 ms; in flight == concurrency."""
    secure = transport != "http"
    url = streamer(TTFT_S * 1e3, TPOT_S * 1e3, tls=secure, prefix="/team-a" if secure else "")
    request = replace(REQUEST, ca_file=streamer.ca) if secure else REQUEST
    duration = {1: 30, 64: 12, 256: 10}[concurrency]  # >= 40 requests at 1 stream: the p99 is not just the maximum
    warmup = 1 if concurrency < 256 else 2  # 256 first requests spread over half the warm-up
    shape = load_shape(
        {"concurrency": concurrency, "duration_s": duration, "warmup_s": warmup, "max_requests": 100_000}
    )
    run = benchmark.pedantic(lambda: run_local(url, shape, request, workdir=tmp_path / "load"), rounds=1, iterations=1)
    summary = run.summary()
    server = {} if secure else _server_lateness(url)
    # the generator's own share: client TTFT minus when the server really wrote the first token (its lateness
    # comes back in each stream), for the requests of the measured window
    origin = min(x.start for x in run.samples)
    own = [s.ttft - (TTFT_S + s.server_late) for s in run.samples if s.start - origin >= shape.warmup_s]
    own_p = percentiles(own, (50, 99), method=Method.LINEAR)
    server["generator_ttft_error_ms_p50_p99"] = [round(own_p[50] * 1e3, 2), round(own_p[99] * 1e3, 2)]
    ratios = {
        "ttft_ratio_p50_p99": [round(summary.ttft[q] / TTFT_S, 4) for q in (50, 99)],
        "tpot_ratio_p50_p99": [round(summary.tpot[q] / TPOT_S, 4) for q in (50, 99)],
    }
    _record(benchmark, run, **server, **ratios)
    why = f"ratios {ratios}; the server's own first-token lateness and the generator's share (ms): {server}"
    assert summary.failures == 0
    assert summary.ttft[50] == pytest.approx(TTFT_S, rel=0.02), why
    assert summary.ttft[99] == pytest.approx(TTFT_S, rel=0.03), why
    assert summary.tpot[50] == pytest.approx(TPOT_S, rel=0.02), why
    assert summary.tpot[99] == pytest.approx(TPOT_S, rel=0.03), why
    assert summary.inflight_mean == pytest.approx(concurrency, rel=0.02), summary.inflight_mean
    assert summary.queue[99] == 0.0  # closed loop: nothing waits client-side, so TTFT hides nothing
    # the in-flight count each request saw at its send: all C streams, bar the odd late spawn on a busy machine
    seen = [s.inflight for s in run.samples if s.start - origin >= shape.warmup_s]
    assert sum(f == concurrency for f in seen) >= 0.99 * len(seen), sorted(set(seen))


def _throughput(
    benchmark,
    url: str,
    served: Callable[[], float],
    tmp_path: Path,
    concurrency: int,
    processes: int,
    floor: float,
    exact_inflight: bool = True,
) -> LoadRun:
    shape = load_shape(
        {"concurrency": concurrency, "duration_s": 8, "warmup_s": 1, "max_requests": 400_000, "processes": processes}
    )
    started_cpu = _children_cpu_s()
    run = benchmark.pedantic(lambda: run_local(url, shape, REQUEST, workdir=tmp_path / "load"), rounds=1, iterations=1)
    summary = run.summary()
    counted = served()
    _record(
        benchmark,
        run,
        server_counted=counted,
        client_samples=len(run.samples),
        locust_cpu_s=round(_children_cpu_s() - started_cpu, 1),
        wall_s=round(run.wall_s, 1),
        load_processes=processes,
        inflight_ratio=round(summary.inflight_mean / concurrency, 4),
    )
    assert summary.failures == 0
    assert counted == len(run.samples), "the server answered requests the client did not time (or the reverse)"
    assert all(s.chunks == TOKENS and len(s.itl) == TOKENS - 1 for s in run.samples), "a chunk was not timed"
    in_flight_ok = not exact_inflight or summary.inflight_mean == pytest.approx(concurrency, rel=0.02)
    assert summary.requests_per_s >= floor and in_flight_ok, (
        f"{summary.requests_per_s:.0f} req/s with {summary.inflight_mean:.1f} of {concurrency} in flight "
        f"({processes} load processes on {os.cpu_count()} CPUs)"
    )
    return run


def test_zero_latency_throughput_direct(benchmark, streamer, tmp_path: Path) -> None:
    """>= 5,000 req/s of 32-token streams on loopback with 32 requests in flight (+-2 %), every request and chunk
    timed; servers and load processes each get half the machine's CPUs."""
    half = max(1, (os.cpu_count() or 2) // 2)
    url = streamer(0, 0, processes=half)
    _throughput(benchmark, url, streamer.served, tmp_path, concurrency=32, processes=half, floor=5000)


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
        _throughput(
            benchmark,
            f"http://{cluster_ip}:{port}",
            lambda: _served(url),
            tmp_path,
            32,
            processes=1,
            floor=1400,
            exact_inflight=False,
        )
    finally:
        proxy.stop()
