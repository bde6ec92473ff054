"""Plugin for suite runs against emulated GPU/TPU nodes: faults layered on the product's workload emulations.

What emulated pods print is the product's (:mod:`harness.embedded.emulated_workloads`, installed by the embedded
target whenever it has emulated nodes). ``tests/compute/test_compute_suite.py`` copies this file into a pytester
directory next to the compute suite's modules and loads it with ``-p emulated_scripts``; ``AIBENCH_TEST_SCENARIO``
(comma-separated) then breaks one thing at a time, by pod-name prefix rules that take precedence, so the suite's
checks are seen to fail: ``leak`` (a no-request pod reaches a GPU), ``overlap`` (every pod lists the same GPU),
``wrong-product`` (the device is not what the label says), ``driver-too-old`` (cuda-gemm fails as PyTorch does on
an old driver), ``stuck`` (cuda-membw stays ContainerCreating with the container toolkit's sandbox error).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from harness.embedded.deviceplugin import ScriptContext
from harness.embedded.emulated_workloads import PROBE_HOLD_S, gpu_probe_log
from harness.node.emulated import Script

SCENARIO = set(filter(None, os.environ.get("AIBENCH_TEST_SCENARIO", "").split(",")))


def _broken_probe(ctx: ScriptContext) -> str:
    """The device probe's output with the scenario's isolation fault."""
    devices = ctx.container_devices()
    listing = ctx.nvidia_smi_list()
    if "leak" in SCENARIO and not devices:
        name = ctx.node_labels.get("nvidia.com/gpu.product", "NVIDIA GPU").replace("-", " ")
        text = gpu_probe_log(ctx, f"GPU 0: {name} (UUID: GPU-00000000-0000-0000-0000-000000000000)\n")
        return text.replace("aibench-probe: dev \n", "aibench-probe: dev /dev/nvidia0\n")
    if "overlap" in SCENARIO and devices:
        listing = f"GPU 0: {devices[0].name} (UUID: GPU-11111111-2222-3333-4444-555555555555)\n"
    if "wrong-product" in SCENARIO and devices:
        listing = "".join(
            line.split(": ", 1)[0] + ": NVIDIA A100-SXM4-80GB (UUID: " + line.split("(UUID: ", 1)[1] + "\n"
            if line.startswith("GPU ")
            else line + "\n"
            for line in listing.splitlines()
        )
    return gpu_probe_log(ctx, listing)


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


@pytest.fixture(scope="session", autouse=True)
def scripted_accelerators(target: Any) -> Iterator[None]:
    """Layer this session's faults over the product's emulations (prefix rules go first)."""
    scripted = target.embedded.kubelets.scripted
    if SCENARIO & {"leak", "overlap", "wrong-product"}:
        scripted.script("gpu-device-probe-", Script(exit_code=0, after_s=PROBE_HOLD_S, render=_broken_probe))
        scripted.script("gpu-no-request-", Script(exit_code=0, render=_broken_probe))
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
