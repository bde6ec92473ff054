"""Plugin for suite runs against emulated GPU/TPU nodes: what the scripted runtime prints for each workload.

``tests/compute/test_compute_suite.py`` copies this file into a pytester directory next to the compute suite's
modules and loads it with ``-p emulated_scripts``. It scripts the embedded target's emulated pods by name prefix,
rendering each log from the devices the emulated device plugin gave the pod, in the real formats: the device
probe's marker lines around ``nvidia-smi -L`` output, gpu_bench.py's and tpu_bench.py's result blocks (numbers
flagged emulated), PyTorch's driver error, a sandbox failure event. ``AIBENCH_TEST_SCENARIO`` (comma-separated)
breaks one thing at a time so the suite's checks are seen to fail: ``leak`` (a no-request pod reaches a GPU),
``overlap`` (every pod lists the same GPU), ``wrong-product`` (the device is not what the label says),
``driver-too-old`` (cuda-gemm fails as PyTorch does on an old driver), ``stuck`` (cuda-membw stays
ContainerCreating with the container toolkit's sandbox error).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from harness.embedded.deviceplugin import ScriptContext
from harness.embedded.kubelet import Script

SCENARIO = set(filter(None, os.environ.get("AIBENCH_TEST_SCENARIO", "").split(",")))
DRIVER = "550.54.15"
PROBE_HOLD_S = 1.0  # emulated probe pods keep their devices this long (the device plugin frees them on exit)
BEGIN, END = "===AIBENCH-RESULT-BEGIN===", "===AIBENCH-RESULT-END==="
# per-GPU numbers of the emulated benchmarks: plausible H100 SXM values, above the h100 profile's bars
EMULATED_GPU = {"bf16": 720.0, "fp16": 730.0, "tf32": 370.0, "fp32": 51.0, "membw": 2950.0, "h2d": 53.5, "d2h": 53.1}


def _probe(ctx: ScriptContext) -> str:
    listing = ctx.nvidia_smi_list()
    devices = ctx.container_devices()
    if "leak" in SCENARIO and not devices:
        name = ctx.node_labels.get("nvidia.com/gpu.product", "NVIDIA GPU").replace("-", " ")
        listing = f"GPU 0: {name} (UUID: GPU-00000000-0000-0000-0000-000000000000)\n"
    if "overlap" in SCENARIO and devices:
        first = devices[0]
        listing = f"GPU 0: {first.name} (UUID: GPU-11111111-2222-3333-4444-555555555555)\n"
    if "wrong-product" in SCENARIO and devices:
        listing = "".join(
            line.split(": ", 1)[0] + ": NVIDIA A100-SXM4-80GB (UUID: " + line.split("(UUID: ", 1)[1] + "\n"
            if line.startswith("GPU ")
            else line + "\n"
            for line in listing.splitlines()
        )
    rc = 0 if listing else 127
    nodes = sorted({f"/dev/nvidia{d.index}" for d in devices})
    if "leak" in SCENARIO and not devices:
        nodes = ["/dev/nvidia0"]
    return (
        "aibench-probe: begin nvidia-smi -L\n"
        + listing
        + f"aibench-probe: end nvidia-smi -L rc={rc}\n"
        + f"aibench-probe: env NVIDIA_VISIBLE_DEVICES={','.join(d.uuid for d in devices) or 'void'}\n"
        + "aibench-probe: env CUDA_VISIBLE_DEVICES=\n"
        + f"aibench-probe: dev {' '.join(nodes)}\n"
        + f"aibench-probe: driver {DRIVER if rc == 0 else ''}\n"
        + f"aibench-probe: window {time.time():.0f} {time.time() + PROBE_HOLD_S:.0f}\n"
    )


def _block(measurements: list[dict[str, Any]], info: dict[str, Any]) -> str:
    return f"{BEGIN}\n{json.dumps({'measurements': measurements, 'info': info})}\n{END}\n"


def _gpu_bench(mode: str) -> Any:
    def render(ctx: ScriptContext) -> str:
        out: list[dict[str, Any]] = []
        for position, device in enumerate(ctx.container_devices()):
            labels = {"gpu": str(position), "uuid": device.uuid, "product": device.name}

            def add(metric: str, value: float, unit: str, labels: dict[str, str] = labels, **extra: str) -> None:
                item = {"metric": metric, "value": value, "unit": unit, "labels": {**labels, **extra}}
                out.append({**item, "emulated": True})

            if mode == "gemm":
                for dtype in ("bf16", "fp16", "tf32", "fp32"):
                    add("tflops", EMULATED_GPU[dtype], "TFLOP/s", dtype=dtype)
            elif mode == "membw":
                add("membw", EMULATED_GPU["membw"], "GB/s", op="d2d_copy")
            elif mode == "pcie":
                add("h2d_bw", EMULATED_GPU["h2d"], "GB/s", memory="pinned")
                add("d2h_bw", EMULATED_GPU["d2h"], "GB/s", memory="pinned")
            else:
                add("tflops", EMULATED_GPU["bf16"], "TFLOP/s", dtype="bf16", stat="mean")
                add("tflops_cv", 1.2, "%")
                add("temperature_max", 71.0, "C")
                add("power_max", 655.0, "W")
        info = {"mode": mode, "gpus": len(out) and len(ctx.container_devices()), "driver": DRIVER}
        return f"aibench: {mode} on {len(ctx.container_devices())} emulated GPU(s)\n" + _block(out, info)

    return render


def _driver_too_old(ctx: ScriptContext) -> str:
    return (
        "Traceback (most recent call last):\n"
        '  File "/opt/aibench/gpu_bench.py", line 236, in main\n'
        "RuntimeError: The NVIDIA driver on your system is too old (found version 11040). Please update your GPU "
        "driver by downloading and installing a new version from the URL: http://www.nvidia.com/Download/index.aspx "
        "Alternatively, go to: https://pytorch.org to install a PyTorch version that has been compiled with your "
        "version of the CUDA driver.\n"
        "aibench: error: RuntimeError: The NVIDIA driver on your system is too old (found version 11040).\n"
        "aibench: driver_version=470.57.02\n"
    )


def _tpu(ctx: ScriptContext) -> str:
    chips = ctx.container_devices()
    expected = int(ctx.env.get("EXPECTED_CHIPS", "0"))
    index = int(ctx.pod.rsplit("-", 2)[-2]) if ctx.pod.count("-") >= 2 and ctx.pod.rsplit("-", 2)[-2].isdigit() else 0
    hosts = max(1, expected // max(1, len(chips)))
    out = []
    for chip in chips:
        labels = {"chip": str(index * len(chips) + chip.index), "kind": "TPU v5 lite"}
        out.append({"metric": "tflops", "value": 160.0, "unit": "TFLOP/s", "labels": {**labels, "dtype": "bf16"}})
        out.append({"metric": "membw", "value": 700.0, "unit": "GB/s", "labels": labels})
    size = {"op": "psum", "size": str(256 * 1024 * 1024), "chips": str(expected)}
    out.append({"metric": "allreduce_algbw", "value": 40.0, "unit": "GB/s", "labels": size})
    busbw = 40.0 * 2 * (expected - 1) / expected
    out.append({"metric": "allreduce_busbw", "value": busbw, "unit": "GB/s", "labels": size})
    for item in out:
        item["emulated"] = True
    info = {
        "device_count": expected,
        "local_device_count": len(chips),
        "process_count": hosts,
        "process_index": index,
        "expected_chips": expected,
        "platform": "tpu",
        "device_kind": "TPU v5 lite",
    }
    return _block(out, info)


def _tpu_placement(ctx: ScriptContext) -> str:
    return "aibench-probe: tpu " + " ".join(d.uuid for d in ctx.container_devices()) + "\n"


@pytest.fixture(scope="session", autouse=True)
def scripted_accelerators(target: Any) -> Iterator[None]:
    """Script the emulated nodes' pods for this session (first matching prefix wins; later rules go first)."""
    scripted = target.embedded.kubelets.scripted
    scripted.script("trivial-job-", Script(exit_code=0, log="done\n"))
    scripted.script("gpu-device-probe-", Script(exit_code=0, after_s=PROBE_HOLD_S, render=_probe))
    scripted.script("gpu-no-request-", Script(exit_code=0, render=_probe))
    for mode in ("gemm", "membw", "pcie", "burn"):
        scripted.script(f"cuda-{mode}-", Script(exit_code=0, render=_gpu_bench(mode)))
    scripted.script("tpu-jax-", Script(exit_code=0, render=_tpu))
    scripted.script("tpu-placement-probe-", Script(exit_code=0, render=_tpu_placement))
    if "driver-too-old" in SCENARIO:
        scripted.script("cuda-gemm-", Script(exit_code=1, render=_driver_too_old))
    if "stuck" in SCENARIO:
        message = (
            "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to create containerd task: "
            "OCI runtime create failed: error running hook #0: error running hook: exit status 1, stdout: , "
            "stderr: nvidia-container-cli: initialization error: nvml error: driver not loaded: unknown"
        )
        stuck = Script(waiting=("ContainerCreating", ""), event=("FailedCreatePodSandBox", message))
        scripted.script("cuda-membw-", stuck)
    yield
    scripted.clear()
