"""Pod-to-pod TCP probe: a request/response latency measurement and a reachability check (Python sockets).

This is a Python socket probe, named as such in every result: it measures what an application sees for a small
request and its reply over one TCP connection (netperf's TCP_RR pattern), which iperf3 does not measure. Python adds
a few microseconds per round trip on each side, so the numbers are an upper bound on the network's own latency.

Modes (first argument):

- ``serve``: echo every message back, on ``BIND_IP:PORT``. ``--once`` exits after the first client finishes
  (paired with a client Job); otherwise serves until killed (a Deployment behind a Service).
- ``rr``: connect to ``TARGET:PORT``, ``WARMUP`` untimed then ``COUNT`` timed round trips of ``MSG_BYTES``, bounded
  by ``DURATION_S``; prints one result block with RTT percentiles (us) and the TCP connect time.
- ``reach``: try to connect and exchange one message within ``CONNECT_TIMEOUT_S``, again until the ``EXPECT``ed
  outcome or ``SETTLE_S``; prints one result block with ``reachable`` 1/0 and why. Exit code 0 either way: being
  blocked is the expected outcome of a policy test.

Every wait is bounded; the client retries the first connection until ``WAIT_S`` (the server pod may start later).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import sys
import time

BEGIN, END = "===AIBENCH-RESULT-BEGIN===", "===AIBENCH-RESULT-END==="
HEADER = 4  # every message: 4-byte big-endian length, then the payload


def log(message: str) -> None:
    print(f"[tcp_probe] {message}", file=sys.stderr, flush=True)


def env_num(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw else default
    except ValueError:
        raise SystemExit(f"tcp_probe: {name}={raw!r} is not a number") from None


def recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = sock.recv(left)
        if not chunk:
            raise ConnectionError("connection closed by peer")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def exchange(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(len(payload).to_bytes(HEADER, "big") + payload)
    size = int.from_bytes(recv_exact(sock, HEADER), "big")
    if size != len(payload) or recv_exact(sock, size) != payload:
        raise ConnectionError("echo differs from the request")


def serve(once: bool) -> int:
    bind_ip, port = os.environ.get("BIND_IP") or os.environ.get("POD_IP") or "0.0.0.0", int(env_num("PORT", 5201))
    idle_s = env_num("WAIT_S", 300)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((bind_ip, port))
    listener.listen(16)
    if once:
        listener.settimeout(idle_s)
    log(f"echo server on {bind_ip}:{port} ({'one client' if once else 'until stopped'})")
    while True:
        try:
            conn, peer = listener.accept()
        except TimeoutError:
            raise SystemExit(f"tcp_probe: no client connected within {idle_s:.0f}s") from None
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(idle_s)
        served, finished = 0, False
        try:
            while True:
                head = conn.recv(HEADER, socket.MSG_WAITALL)
                if len(head) < HEADER:
                    break
                size = int.from_bytes(head, "big")
                if size == 0:  # the client's "done" message: the measured session is over
                    finished = True
                    conn.sendall(head)
                    break
                conn.sendall(head + recv_exact(conn, size))
                served += 1
        except (OSError, ConnectionError) as exc:
            log(f"client {peer[0]}: {exc}")
        finally:
            conn.close()
        log(f"client {peer[0]}: {served} round trips")
        if once and finished:
            return 0


def connect(target: str, port: int, deadline: float, timeout_s: float) -> socket.socket:
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            sock = socket.create_connection((target, port), timeout=timeout_s)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except OSError as exc:
            last = exc
            time.sleep(0.2)
    raise ConnectionError(f"cannot connect to {target}:{port}: {last}")


def emit(measurements: list[dict], info: dict) -> None:
    print(BEGIN, json.dumps({"measurements": measurements, "info": info}), END, sep="\n", flush=True)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (the value below which q% of samples fall), as latency reports use."""
    rank = max(1, int(-(-q * len(sorted_values) // 100)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def round_trips() -> int:
    target, port = os.environ["TARGET"], int(env_num("PORT", 5201))
    count, warmup = int(env_num("COUNT", 2000)), int(env_num("WARMUP", 100))
    msg_bytes, duration_s = int(env_num("MSG_BYTES", 64)), env_num("DURATION_S", 30)
    if count < 1 or msg_bytes < 1:
        raise SystemExit("tcp_probe: COUNT and MSG_BYTES must be >= 1")
    deadline = time.monotonic() + env_num("WAIT_S", 300)
    start = time.perf_counter()
    sock = connect(target, port, deadline, timeout_s=5)
    address = sock.getpeername()[0]
    connect_us = (time.perf_counter() - start) * 1e6  # includes retries only if the server was not up yet
    sock.settimeout(10)
    payload = os.urandom(msg_bytes)
    for _ in range(warmup):
        exchange(sock, payload)
    samples: list[float] = []
    stop_at = time.monotonic() + duration_s
    while len(samples) < count and time.monotonic() < stop_at:
        t0 = time.perf_counter()
        exchange(sock, payload)
        samples.append((time.perf_counter() - t0) * 1e6)
    sock.sendall((0).to_bytes(HEADER, "big"))  # tell a --once server the session is over
    recv_exact(sock, HEADER)
    sock.close()
    samples.sort()
    labels = {"probe": "python-tcp-rr", "msg_bytes": str(msg_bytes)}
    measurements = [
        {"metric": "rtt", "value": percentile(samples, q), "unit": "us", "labels": {**labels, "percentile": p}}
        for p, q in (("50", 50), ("90", 90), ("99", 99))
    ]
    measurements += [
        {"metric": "rtt_mean", "value": statistics.fmean(samples), "unit": "us", "labels": labels},
        {"metric": "rtt_min", "value": samples[0], "unit": "us", "labels": labels},
        {"metric": "round_trips", "value": len(samples), "unit": "count", "labels": labels},
    ]
    info = {
        "probe": "python socket request/response (TCP_RR pattern)",
        "target": target,
        "address": address,
        "port": port,
        "connect_us": round(connect_us, 1),
        "requested": count,
        "node": os.environ.get("NODE_NAME", ""),
    }
    emit(measurements, info)
    return 0 if len(samples) == count else 1


def attempt(target: str, port: int, timeout_s: float) -> tuple[int, str]:
    """(1, how) when a connection to target:port echoes one message within timeout_s, else (0, why not)."""
    try:
        sock = socket.create_connection((target, port), timeout=timeout_s)
        sock.settimeout(timeout_s)
        exchange(sock, b"reach")
        sock.sendall((0).to_bytes(HEADER, "big"))
        sock.close()
        return 1, "connected and echoed one message"
    except (OSError, ConnectionError) as exc:
        return 0, f"{type(exc).__name__}: {exc}"


def reach() -> int:
    """Probe until the outcome is the ``EXPECT``ed one (reachable/unreachable) or ``SETTLE_S`` passes: policies
    take effect asynchronously on real CNIs, so one early probe would misjudge them. The last outcome is reported
    whatever it is."""
    target, port = os.environ["TARGET"], int(env_num("PORT", 5201))
    timeout_s, settle_s = env_num("CONNECT_TIMEOUT_S", 3), env_num("SETTLE_S", 20)
    expect = os.environ.get("EXPECT", "any")
    if expect not in ("reachable", "unreachable", "any"):
        raise SystemExit(f"tcp_probe: EXPECT={expect!r} must be reachable, unreachable or any")
    wanted = {"reachable": 1, "unreachable": 0}.get(expect)
    started, attempts = time.monotonic(), 0
    while True:
        attempts += 1
        reachable, why = attempt(target, port, timeout_s)
        log(f"attempt {attempts}: {target}:{port} reachable={reachable} ({why})")
        if wanted is None or reachable == wanted or time.monotonic() - started + timeout_s > settle_s:
            break
        time.sleep(1)
    labels = {"probe": "python-tcp-connect", "phase": os.environ.get("PHASE", "")}
    emit(
        [
            {"metric": "reachable", "value": reachable, "unit": "count", "labels": labels},
            {"metric": "attempts", "value": attempts, "unit": "count", "labels": labels},
        ],
        {"target": target, "port": port, "detail": why, "expect": expect,
         "elapsed_s": round(time.monotonic() - started, 2)},
    )  # fmt: skip
    return 0


def main(argv: list[str]) -> int:
    mode = argv[1] if len(argv) > 1 else ""
    if mode == "serve":
        return serve(once="--once" in argv[2:])
    if mode == "rr":
        return round_trips()
    if mode == "reach":
        return reach()
    raise SystemExit("usage: tcp_probe.py serve [--once] | rr | reach")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
