"""CPU collective baseline: all-reduce across the pods of an Indexed Job, with nccl-tests' bandwidth math.

This is the TCP/gloo baseline, never NCCL: it measures what pod-to-pod networking gives a collective when no GPU
fabric is involved (a cluster without GPUs, or the embedded target), so the numbers say how the pod network
carries the traffic pattern distributed training uses.

Backends (``BACKEND``):

- ``tcp-ring``: a ring all-reduce over plain TCP sockets with numpy, written out here: reduce-scatter then
  all-gather, n-1 steps each, every rank sending to rank+1 and receiving from rank-1 at once (what NCCL's ring
  algorithm and gloo's ring do). Needs only Python and numpy.
- ``torch-gloo``: ``torch.distributed.all_reduce`` on the gloo backend (the CPU backend PyTorch training uses).

Rendezvous: rank r is the pod ``<job>-<r>`` of the Indexed Job; the headless Service named by ``SUBDOMAIN`` gives
it the DNS name ``<job>-<r>.<subdomain>``. Every rank listens on its own pod IP (pods that share a network
namespace on one node must not all bind 0.0.0.0).

Math, as nccl-tests (``doc/PERFORMANCE.md``): ``algbw = size / time``; ``busbw = algbw * 2(n-1)/n`` for
all-reduce; ``time`` is the mean per iteration, the slowest rank's; GB/s are 1e9 B/s. Every measured size is
checked against the exact expected sum (integers in float32 stay exact), and the number of wrong elements is
reported as ``wrong`` (nccl-tests' ``#wrong``): any wrong element is data corruption.

Rank 0 prints exactly one ``===AIBENCH-RESULT-BEGIN===`` block; every rank exits non-zero on any error.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import threading
import time

import numpy as np

BEGIN, END = "===AIBENCH-RESULT-BEGIN===", "===AIBENCH-RESULT-END==="
EXPECTED_PERIOD = 251  # input element i of rank r is (r+1) * (i % 251 + 1): exact in float32, distinct per rank


def log(message: str) -> None:
    print(f"[rank {os.environ.get('JOB_COMPLETION_INDEX', '?')}] {message}", file=sys.stderr, flush=True)


def env_int(name: str, default: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        if default is None:
            raise SystemExit(f"collective: environment variable {name} is required")
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"collective: {name}={raw!r} is not an integer") from None


def parse_sizes(text: str) -> list[int]:
    """``1M,4M,64M`` (K/M/G are powers of 1024, like nccl-tests' -b/-e) -> bytes, each a multiple of 4."""
    sizes = []
    for raw in text.split(","):
        item = raw.strip().upper()
        if not item:
            continue
        factor = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(item[-1], 1)
        number = item[:-1] if factor > 1 else item
        try:
            size = int(number) * factor
        except ValueError:
            raise SystemExit(f"collective: SIZES item {item!r} is not a size like 64M") from None
        if size <= 0 or size % 4:
            raise SystemExit(f"collective: SIZES item {item!r} must be a positive multiple of 4 bytes (float32)")
        sizes.append(size)
    if not sizes:
        raise SystemExit("collective: SIZES is empty")
    return sizes


def expected_input(rank: int, count: int) -> np.ndarray:
    return ((np.arange(count, dtype=np.int64) % EXPECTED_PERIOD + 1) * (rank + 1)).astype(np.float32)


def expected_sum(world: int, count: int) -> np.ndarray:
    return ((np.arange(count, dtype=np.int64) % EXPECTED_PERIOD + 1) * (world * (world + 1) // 2)).astype(np.float32)


# ----------------------------------------------------------------------------- tcp-ring
def recv_exact(sock: socket.socket, view: memoryview) -> None:
    while view.nbytes:
        got = sock.recv_into(view)
        if got == 0:
            raise ConnectionError("peer closed the connection mid-transfer")
        view = view[got:]


def resolve(host: str, deadline: float) -> str:
    """The peer's address; its DNS record appears once its pod exists, so retry until the deadline."""
    while True:
        try:
            return socket.gethostbyname(host)
        except OSError as exc:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"collective: cannot resolve peer {host} ({exc}) before the rendezvous timeout"
                ) from None
            time.sleep(0.2)


class Ring:
    """Two TCP connections per rank: to the next rank (send) and from the previous one (receive)."""

    def __init__(self, rank: int, world: int, peer: str, bind_ip: str, port: int, wait_s: float, step_s: float) -> None:
        self.rank, self.world = rank, world
        deadline = time.monotonic() + wait_s
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((bind_ip, port))
        listener.listen(1)
        listener.settimeout(wait_s)
        nxt = (rank + 1) % world
        host = peer.format(rank=nxt)
        address = resolve(host, deadline)
        self.send_sock = None
        while self.send_sock is None:
            try:
                self.send_sock = socket.create_connection((address, port), timeout=5)
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise SystemExit(
                        f"collective: cannot connect to rank {nxt} at {host} ({address}:{port}): {exc}"
                    ) from None
                time.sleep(0.2)
                address = resolve(host, deadline)
        self.send_sock.sendall(struct.pack("!I", rank))
        try:
            self.recv_sock, remote = listener.accept()
        except TimeoutError:
            raise SystemExit(f"collective: rank {(rank - 1) % world} never connected within {wait_s:.0f}s") from None
        listener.close()
        hello = bytearray(4)
        self.recv_sock.settimeout(step_s)
        recv_exact(self.recv_sock, memoryview(hello))
        (prev,) = struct.unpack("!I", hello)
        if prev != (rank - 1) % world:
            raise SystemExit(f"collective: expected rank {(rank - 1) % world} to connect, got rank {prev}")
        for sock in (self.send_sock, self.recv_sock):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.send_sock.settimeout(step_s)
        log(f"ring connected: {(rank - 1) % world} -> {rank} -> {nxt} (peer {host} at {address}, from {remote[0]})")

    def _exchange(self, send: np.ndarray, recv: np.ndarray) -> None:
        """Send one chunk to the next rank while receiving one from the previous rank."""
        errors: list[BaseException] = []

        def sender() -> None:
            try:
                self.send_sock.sendall(memoryview(send).cast("B"))
            except OSError as exc:
                errors.append(exc)

        thread = threading.Thread(target=sender)
        thread.start()
        recv_exact(self.recv_sock, memoryview(recv).cast("B"))
        thread.join()
        if errors:
            raise errors[0]

    def all_reduce(self, data: np.ndarray, scratch: np.ndarray) -> None:
        """In-place sum over all ranks: reduce-scatter (n-1 steps) then all-gather (n-1 steps)."""
        n, r = self.world, self.rank
        if n == 1:
            return
        bounds = np.linspace(0, data.size, n + 1).astype(np.int64)
        chunk = [data[bounds[i] : bounds[i + 1]] for i in range(n)]
        for step in range(n - 1):  # after this, rank r holds the full sum of chunk (r+1) % n
            out, into = chunk[(r - step) % n], chunk[(r - step - 1) % n]
            buf = scratch[: into.size]
            self._exchange(out, buf)
            np.add(into, buf, out=into)
        for step in range(n - 1):
            out, into = chunk[(r - step + 1) % n], chunk[(r - step) % n]
            self._exchange(out, into)

    def close(self) -> None:
        for sock in (self.send_sock, self.recv_sock):
            sock.close()


# ----------------------------------------------------------------------------- benchmark
def run_tcp_ring(rank: int, world: int, sizes: list[int], iters: int, warmup: int) -> tuple[list[dict], str]:
    ring = Ring(
        rank,
        world,
        peer=os.environ["PEER_HOST_TEMPLATE"],
        bind_ip=os.environ.get("POD_IP") or "0.0.0.0",
        port=env_int("PORT", 29500),
        wait_s=float(env_int("RENDEZVOUS_TIMEOUT_S", 300)),
        step_s=float(env_int("STEP_TIMEOUT_S", 120)),
    )
    rows = []
    scratch = np.empty(max(sizes) // 4 // world + 1, dtype=np.float32)
    for size in sizes:
        count = size // 4
        source, work = expected_input(rank, count), np.empty(count, dtype=np.float32)
        times = []
        for i in range(warmup + iters):
            work[:] = source
            start = time.perf_counter()
            ring.all_reduce(work, scratch)
            if i >= warmup:
                times.append(time.perf_counter() - start)
        wrong = int(np.count_nonzero(work != expected_sum(world, count)))
        # the slowest rank's mean time and every rank's wrong count, all-reduced over the same ring
        mine = np.zeros(2 * world, dtype=np.float32)
        mine[rank], mine[world + rank] = sum(times) / len(times) * 1e6, wrong
        ring.all_reduce(mine, scratch)
        rows.append({"size": size, "time_us": float(mine[:world].max()), "wrong": int(mine[world:].sum())})
    ring.close()
    return rows, "tcp-ring (numpy over TCP sockets)"


def run_torch_gloo(rank: int, world: int, sizes: list[int], iters: int, warmup: int) -> tuple[list[dict], str]:
    import datetime

    import torch
    import torch.distributed as dist

    master = os.environ["PEER_HOST_TEMPLATE"].format(rank=0)
    wait_s = env_int("RENDEZVOUS_TIMEOUT_S", 300)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://{resolve(master, time.monotonic() + wait_s)}:{env_int('PORT', 29500)}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=env_int("STEP_TIMEOUT_S", 120)),
    )
    rows = []
    for size in sizes:
        count = size // 4
        source = torch.from_numpy(expected_input(rank, count))
        work = torch.empty_like(source)
        times = []
        for i in range(warmup + iters):
            work.copy_(source)
            dist.barrier()
            start = time.perf_counter()
            dist.all_reduce(work)
            if i >= warmup:
                times.append(time.perf_counter() - start)
        wrong = int((work.numpy() != expected_sum(world, count)).sum())
        stats = torch.zeros(2 * world, dtype=torch.float64)
        stats[rank], stats[world + rank] = sum(times) / len(times) * 1e6, wrong
        dist.all_reduce(stats)
        rows.append({"size": size, "time_us": float(stats[:world].max()), "wrong": int(stats[world:].sum())})
    dist.destroy_process_group()
    return rows, f"torch.distributed gloo (torch {torch.__version__})"


def main() -> int:
    rank, world = env_int("JOB_COMPLETION_INDEX"), env_int("WORLD_SIZE")
    if not 0 <= rank < world:
        raise SystemExit(f"collective: rank {rank} outside world size {world}")
    backend = os.environ.get("BACKEND", "tcp-ring")
    sizes = parse_sizes(os.environ.get("SIZES", "1M,4M,16M,64M"))
    iters, warmup = env_int("ITERS", 5), env_int("WARMUP", 1)
    if iters < 1 or warmup < 0:
        raise SystemExit("collective: ITERS must be >= 1 and WARMUP >= 0")
    node = os.environ.get("NODE_NAME", "")
    log(f"backend {backend}, world {world}, node {node}, pod IP {os.environ.get('POD_IP', '')}")
    runners = {"tcp-ring": run_tcp_ring, "torch-gloo": run_torch_gloo}
    if backend not in runners:
        raise SystemExit(f"collective: BACKEND {backend!r} is not one of {', '.join(runners)}")
    started = time.monotonic()
    rows, implementation = runners[backend](rank, world, sizes, iters, warmup)
    log(f"done in {time.monotonic() - started:.2f}s")
    if rank != 0:
        return 0
    factor = 2 * (world - 1) / world
    measurements = []
    for row in rows:
        seconds = row["time_us"] / 1e6
        algbw = row["size"] / seconds / 1e9 if seconds > 0 else 0.0
        labels = {"op": "all_reduce", "backend": backend, "dtype": "float32", "size": str(row["size"]),
                  "nranks": str(world)}  # fmt: skip
        measurements += [
            {"metric": "busbw", "value": algbw * factor, "unit": "GB/s", "labels": labels},
            {"metric": "algbw", "value": algbw, "unit": "GB/s", "labels": labels},
            {"metric": "time", "value": row["time_us"], "unit": "us", "labels": labels},
            {"metric": "wrong", "value": row["wrong"], "unit": "count", "labels": labels},
        ]
        print(
            f"# {row['size']:>12} B  time {row['time_us']:>12.1f} us  algbw {algbw:8.3f} GB/s  "
            f"busbw {algbw * factor:8.3f} GB/s  #wrong {row['wrong']}",
            flush=True,
        )
    info = {"backend": backend, "implementation": implementation, "nranks": world, "iters": iters,
            "warmup": warmup, "rank0_node": node, "busbw_factor": factor}  # fmt: skip
    print(BEGIN, json.dumps({"measurements": measurements, "info": info}), END, sep="\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
