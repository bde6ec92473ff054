"""GPU micro-benchmarks with PyTorch, one mode per run, one result block at the end.

Modes (env ``BENCH_MODE``):

* ``gemm``  dense matmul TFLOP/s per dtype (bf16, fp16, tf32, fp32) with cuBLAS via ``torch.matmul``: 2*n^3 FLOP per
  product, timed with CUDA events over ``BENCH_ITERS`` products after ``BENCH_WARMUP``.
* ``membw`` device memory bandwidth: a device-to-device copy of ``BENCH_MEMBW_MB``; read + write bytes count, as
  STREAM's Copy does, so the number compares with the HBM spec.
* ``pcie``  host<->device bandwidth from pinned host memory (``BENCH_PCIE_MB``), each direction separately, as
  cuda-samples bandwidthTest does with ``--memory=pinned``.
* ``burn``  bf16 matmuls for ``BENCH_BURN_S`` seconds, throughput per window of about ``BENCH_BURN_WINDOW_S``
  (1 s: as many products as fit), with temperature and power sampled from NVML (nvidia-ml-py) or nvidia-smi each
  window: mean, coefficient of variation, maxima.

Every visible GPU is measured in turn (label ``gpu`` = its index in this container, plus ``uuid`` and ``product``).
On a CUDA or driver error the script prints the error and the driver version (``aibench: driver_version=...``),
which the harness puts in the failure message, and exits 1. GB = 1e9 bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import traceback

BEGIN = "===AIBENCH-RESULT-BEGIN==="
END = "===AIBENCH-RESULT-END==="


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def driver_version() -> str:
    if shutil.which("nvidia-smi") is None:
        return ""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.strip().splitlines()[0] if out.strip() else ""


class Telemetry:
    """Temperature (C) and power (W) of one GPU: NVML when nvidia-ml-py is importable, else nvidia-smi."""

    def __init__(self, uuid: str, index: int) -> None:
        self.handle = None
        self.query_id = uuid or str(index)
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml = pynvml
            self.handle = pynvml.nvmlDeviceGetHandleByUUID(uuid) if uuid else pynvml.nvmlDeviceGetHandleByIndex(index)
        except Exception:  # no bindings or no NVML: fall back to nvidia-smi
            self.handle = None

    def sample(self) -> tuple[float | None, float | None]:
        if self.handle is not None:
            temp = float(self.nvml.nvmlDeviceGetTemperature(self.handle, self.nvml.NVML_TEMPERATURE_GPU))
            power = self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1000.0
            return temp, power
        if shutil.which("nvidia-smi") is None:
            return None, None
        out = subprocess.run(
            [
                "nvidia-smi",
                f"--id={self.query_id}",
                "--query-gpu=temperature.gpu,power.draw",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout.strip()
        try:
            temp_text, power_text = (v.strip() for v in out.splitlines()[0].split(","))
            return float(temp_text), float(power_text)
        except (IndexError, ValueError):
            return None, None


def timed(torch, fn, iters: int) -> float:  # noqa: ANN001 - torch is imported lazily
    """Seconds for ``iters`` calls of ``fn`` on the current device, by CUDA events."""
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    stop.record()
    stop.synchronize()
    return start.elapsed_time(stop) / 1000.0


DTYPES = {"bf16": "bfloat16", "fp16": "float16", "tf32": "float32", "fp32": "float32"}


def gemm(torch, labels: dict, out: list) -> None:  # noqa: ANN001
    n = env_int("BENCH_GEMM_N", 8192)
    iters, warmup = env_int("BENCH_ITERS", 50), env_int("BENCH_WARMUP", 10)
    for name in (d.strip() for d in os.environ.get("BENCH_DTYPES", "bf16,fp16,tf32,fp32").split(",")):
        torch.backends.cuda.matmul.allow_tf32 = name == "tf32"
        torch.backends.cudnn.allow_tf32 = name == "tf32"
        dtype = getattr(torch, DTYPES[name])
        a = torch.randn(n, n, dtype=dtype, device="cuda")
        b = torch.randn(n, n, dtype=dtype, device="cuda")
        c = torch.empty(n, n, dtype=dtype, device="cuda")
        timed(torch, lambda a=a, b=b, c=c: torch.matmul(a, b, out=c), warmup)
        seconds = timed(torch, lambda a=a, b=b, c=c: torch.matmul(a, b, out=c), iters)
        tflops = 2.0 * n**3 * iters / seconds / 1e12
        out.append(
            {"metric": "tflops", "value": tflops, "unit": "TFLOP/s", "labels": {**labels, "dtype": name, "n": n}}
        )
        del a, b, c
        torch.cuda.empty_cache()


def membw(torch, labels: dict, out: list) -> None:  # noqa: ANN001
    size = env_int("BENCH_MEMBW_MB", 2048) * 1024 * 1024
    iters, warmup = env_int("BENCH_ITERS", 50), env_int("BENCH_WARMUP", 10)
    src = torch.empty(size, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    timed(torch, lambda: dst.copy_(src), warmup)
    seconds = timed(torch, lambda: dst.copy_(src), iters)
    out.append(
        {
            "metric": "membw",
            "value": 2.0 * size * iters / seconds / 1e9,
            "unit": "GB/s",
            "labels": {**labels, "op": "d2d_copy", "bytes": size},
        }
    )


def pcie(torch, labels: dict, out: list) -> None:  # noqa: ANN001
    size = env_int("BENCH_PCIE_MB", 1024) * 1024 * 1024
    iters, warmup = env_int("BENCH_PCIE_ITERS", 20), env_int("BENCH_WARMUP", 10)
    host = torch.empty(size, dtype=torch.uint8, pin_memory=True)
    device = torch.empty(size, dtype=torch.uint8, device="cuda")
    for metric, fn in (
        ("h2d_bw", lambda: device.copy_(host, non_blocking=True)),
        ("d2h_bw", lambda: host.copy_(device, non_blocking=True)),
    ):
        timed(torch, fn, warmup)
        seconds = timed(torch, fn, iters)
        out.append(
            {
                "metric": metric,
                "value": size * iters / seconds / 1e9,
                "unit": "GB/s",
                "labels": {**labels, "memory": "pinned", "bytes": size},
            }
        )


def burn(torch, labels: dict, out: list, telemetry: Telemetry) -> None:  # noqa: ANN001
    n = env_int("BENCH_GEMM_N", 8192)
    seconds = env_int("BENCH_BURN_S", 20)
    a = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
    b = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
    c = torch.empty(n, n, dtype=torch.bfloat16, device="cuda")
    timed(torch, lambda: torch.matmul(a, b, out=c), 5)  # warm-up
    # about one second of matmuls per window, so each throughput sample pairs with one telemetry sample
    per_product = timed(torch, lambda: torch.matmul(a, b, out=c), 5) / 5
    per_window = max(1, int(float(os.environ.get("BENCH_BURN_WINDOW_S", "1.0")) / max(per_product, 1e-6)))
    rates, temps, powers = [], [], []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        window = timed(torch, lambda: torch.matmul(a, b, out=c), per_window)
        rates.append(2.0 * n**3 * per_window / window / 1e12)
        temp, power = telemetry.sample()
        if temp is not None:
            temps.append(temp)
        if power is not None:
            powers.append(power)
    mean = statistics.fmean(rates)
    cv = 100.0 * statistics.pstdev(rates) / mean if len(rates) > 1 else 0.0
    out.append(
        {"metric": "tflops", "value": mean, "unit": "TFLOP/s", "labels": {**labels, "dtype": "bf16", "stat": "mean"}}
    )
    out.append({"metric": "tflops_cv", "value": cv, "unit": "%", "labels": {**labels, "windows": len(rates)}})
    out.append(
        {
            "metric": "tflops",
            "value": min(rates),
            "unit": "TFLOP/s",
            "labels": {**labels, "dtype": "bf16", "stat": "min"},
        }
    )
    if temps:
        out.append({"metric": "temperature_max", "value": max(temps), "unit": "C", "labels": dict(labels)})
    if powers:
        out.append({"metric": "power_max", "value": max(powers), "unit": "W", "labels": dict(labels)})


def main() -> int:
    mode = os.environ.get("BENCH_MODE", "gemm")
    try:
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("No CUDA GPUs are available")
        count = torch.cuda.device_count()
        results: list = []
        products = []
        for index in range(count):
            torch.cuda.set_device(index)
            props = torch.cuda.get_device_properties(index)
            uuid = str(getattr(props, "uuid", "") or "")
            uuid = uuid if not uuid or uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}"
            labels = {"gpu": str(index), "product": props.name}
            if uuid:
                labels["uuid"] = uuid
            products.append(props.name)
            print(f"aibench: {mode} on GPU {index} {props.name} {uuid}", flush=True)
            if mode == "gemm":
                gemm(torch, labels, results)
            elif mode == "membw":
                membw(torch, labels, results)
            elif mode == "pcie":
                pcie(torch, labels, results)
            elif mode == "burn":
                burn(torch, labels, results, Telemetry(uuid, index))
            else:
                raise ValueError(f"unknown BENCH_MODE {mode!r}")
        info = {
            "mode": mode,
            "gpus": count,
            "products": products,
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "driver": driver_version(),
        }
    except Exception as exc:  # report the CUDA error with the driver version; the harness reads both
        traceback.print_exc()
        print(f"aibench: error: {type(exc).__name__}: {exc}", flush=True)
        print(f"aibench: driver_version={driver_version() or 'unknown'}", flush=True)
        return 1
    print(BEGIN)
    print(json.dumps({"measurements": results, "info": info}))
    print(END, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
