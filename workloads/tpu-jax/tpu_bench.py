"""TPU slice check and micro-benchmarks with JAX; every host of the slice runs this once and prints one block.

1. Shape: ``jax.device_count()`` (all chips of the slice, across hosts) must equal ``EXPECTED_CHIPS`` (from the
   topology the pod selected); the counts go in ``info`` for the harness to judge.
2. bf16 matmul TFLOP/s on each local chip: ``jax.jit(a @ b)`` on an ``n x n`` pair placed on that chip, 2*n^3 FLOP
   per product, timed over ``BENCH_ITERS`` calls after compilation and warm-up.
3. HBM bandwidth on each local chip: a jitted ``x * 2`` over ``BENCH_MEMBW_MB``; one read and one write per byte.
4. psum all-reduce across every chip of the slice (``jax.pmap`` over local chips, which spans all hosts once
   ``jax.distributed`` is initialised): algbw = bytes / time, busbw = algbw * 2(n-1)/n as nccl-tests reports it.

Multi-host slices: GKE sets TPU_WORKER_HOSTNAMES / TPU_WORKER_ID for Indexed Jobs with a headless subdomain, and
``jax.distributed.initialize()`` reads them; single-host runs skip it.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

BEGIN = "===AIBENCH-RESULT-BEGIN==="
END = "===AIBENCH-RESULT-END==="


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def timed(fn, iters: int) -> float:  # noqa: ANN001
    fn().block_until_ready()  # compile + warm
    start = time.perf_counter()
    out = None
    for _ in range(iters):
        out = fn()
    out.block_until_ready()
    return time.perf_counter() - start


def main() -> int:
    expected = env_int("EXPECTED_CHIPS", 0)
    try:
        import jax
        import jax.numpy as jnp

        if len([h for h in os.environ.get("TPU_WORKER_HOSTNAMES", "").split(",") if h]) > 1:
            jax.distributed.initialize()
        devices = jax.devices()
        local = jax.local_devices()
        platform = devices[0].platform if devices else "none"
        info = {
            "device_count": jax.device_count(),
            "local_device_count": jax.local_device_count(),
            "process_count": jax.process_count(),
            "process_index": jax.process_index(),
            "expected_chips": expected,
            "platform": platform,
            "device_kind": devices[0].device_kind if devices else "",
            "jax": jax.__version__,
            "hostname": os.environ.get("HOSTNAME", ""),
        }
        print(f"aibench: {info['device_count']} {platform} device(s), {len(local)} local", flush=True)
        results: list = []
        if platform == "tpu":
            n = env_int("BENCH_MATMUL_N", 8192)
            iters = env_int("BENCH_ITERS", 50)
            matmul = jax.jit(lambda a, b: a @ b)
            double = jax.jit(lambda x: x * 2)
            for device in local:
                chip = {"chip": str(device.id), "kind": device.device_kind}
                a = jax.device_put(jnp.ones((n, n), dtype=jnp.bfloat16), device)
                b = jax.device_put(jnp.ones((n, n), dtype=jnp.bfloat16), device)
                seconds = timed(lambda a=a, b=b: matmul(a, b), iters)
                results.append(
                    {
                        "metric": "tflops",
                        "value": 2.0 * n**3 * iters / seconds / 1e12,
                        "unit": "TFLOP/s",
                        "labels": {**chip, "dtype": "bf16", "n": n},
                    }
                )
                size = env_int("BENCH_MEMBW_MB", 1024) * 1024 * 1024
                x = jax.device_put(jnp.ones((size // 4,), dtype=jnp.float32), device)
                seconds = timed(lambda x=x: double(x), iters)
                results.append(
                    {"metric": "membw", "value": 2.0 * size * iters / seconds / 1e9, "unit": "GB/s", "labels": chip}
                )
            size = env_int("BENCH_ALLREDUCE_MB", 256) * 1024 * 1024
            total = jax.device_count()
            psum = jax.pmap(lambda v: jax.lax.psum(v, "chips"), axis_name="chips")
            shards = jnp.ones((len(local), size // 4), dtype=jnp.float32)
            seconds = timed(lambda: psum(shards), env_int("BENCH_ALLREDUCE_ITERS", 20))
            per_op = seconds / env_int("BENCH_ALLREDUCE_ITERS", 20)
            algbw = size / per_op / 1e9
            labels = {"op": "psum", "size": str(size), "chips": str(total)}
            results.append({"metric": "allreduce_algbw", "value": algbw, "unit": "GB/s", "labels": labels})
            busbw = algbw * 2 * (total - 1) / total if total > 1 else algbw
            results.append({"metric": "allreduce_busbw", "value": busbw, "unit": "GB/s", "labels": labels})
    except Exception as exc:
        traceback.print_exc()
        print(f"aibench: error: {type(exc).__name__}: {exc}", flush=True)
        return 1
    print(BEGIN)
    print(json.dumps({"measurements": results, "info": info}))
    print(END, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
