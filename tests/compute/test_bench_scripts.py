"""The in-pod scripts (gpu_bench.py, tpu_bench.py, probe.sh, gpu-check.sh) run here for their control flow and
output format: torch, pynvml and jax are stand-ins (tests/compute/fakes), so the numbers are meaningless and only
parsed, never judged. What is checked is what a real GPU/TPU run depends on: each mode prints one block the
harness's parser accepts as complete, errors print the CUDA error and the driver version, the probe's format."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.parsers.cuda import GEMM_DTYPES, cuda_failure, cuda_measurements, parse_device_probe
from harness.parsers.jax_tpu import parse_tpu_result

REPO = Path(__file__).resolve().parents[2]
FAKES = Path(__file__).with_name("fakes")
GPU_BENCH = REPO / "workloads" / "cuda-gemm" / "gpu_bench.py"
TPU_BENCH = REPO / "workloads" / "tpu-jax" / "tpu_bench.py"


def _run(script: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(FAKES), "HOME": "/tmp", **env}
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=environ, timeout=60, check=False
    )


@pytest.mark.parametrize("mode", ["gemm", "membw", "pcie", "burn"])
def test_gpu_bench_prints_a_complete_block_per_mode(mode: str) -> None:
    done = _run(GPU_BENCH, BENCH_MODE=mode, FAKE_GPUS="2", BENCH_BURN_S="1", BENCH_ITERS="3", BENCH_WARMUP="1")
    assert done.returncode == 0, done.stdout + done.stderr
    measurements = cuda_measurements(done.stdout, mode=mode, expect_gpus=2, dtypes=GEMM_DTYPES)
    assert {m.label("gpu") for m in measurements} == {"0", "1"}
    assert {m.label("uuid") for m in measurements} == {
        "GPU-00000000-0000-0000-0000-000000000000",
        "GPU-00000000-0000-0000-0000-000000000001",
    }
    if mode == "burn":
        temps = [m.value for m in measurements if m.metric == "temperature_max"]
        powers = [m.value for m in measurements if m.metric == "power_max"]
        assert temps == [64.0, 64.0] and powers == [612.0, 612.0]  # NVML's milliwatts converted


def test_gpu_bench_on_a_cuda_error_prints_the_error_and_the_driver_version() -> None:
    message = "The NVIDIA driver on your system is too old (found version 11040)."
    done = _run(GPU_BENCH, BENCH_MODE="gemm", FAKE_CUDA_ERROR=message)
    assert done.returncode == 1
    assert f"aibench: error: RuntimeError: {message}" in done.stdout
    assert "aibench: driver_version=unknown" in done.stdout  # no nvidia-smi here
    failure = cuda_failure(done.stdout + done.stderr)
    assert failure is not None and failure.kind == "driver too old for the image"


def test_gpu_bench_rejects_an_unknown_mode() -> None:
    done = _run(GPU_BENCH, BENCH_MODE="nbody", FAKE_GPUS="1")
    assert done.returncode == 1 and "unknown BENCH_MODE 'nbody'" in done.stdout


def test_tpu_bench_on_one_host_of_a_two_host_slice() -> None:
    done = _run(
        TPU_BENCH, EXPECTED_CHIPS="8", FAKE_CHIPS="8", FAKE_LOCAL="4", FAKE_PROCESS="1", BENCH_ITERS="2",
        TPU_WORKER_HOSTNAMES="tpu-jax-0.tpu-jax-workers,tpu-jax-1.tpu-jax-workers",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    result = parse_tpu_result(done.stdout)
    assert result.slice_matches and result.process_index == 1 and result.process_count == 2
    assert sorted(m.label("chip") for m in result.measurements if m.metric == "tflops") == ["4", "5", "6", "7"]
    busbw = next(m for m in result.measurements if m.metric == "allreduce_busbw")
    algbw = next(m for m in result.measurements if m.metric == "allreduce_algbw")
    assert busbw.value == pytest.approx(algbw.value * 2 * 7 / 8) and busbw.label("chips") == "8"


def test_tpu_bench_without_tpus_reports_the_backend_and_measures_nothing() -> None:
    done = _run(TPU_BENCH, EXPECTED_CHIPS="4", FAKE_CHIPS="1", FAKE_PLATFORM="cpu")
    result = parse_tpu_result(done.stdout)
    assert not result.slice_matches and result.platform == "cpu" and result.measurements == ()


def test_probe_script_without_nvidia_smi(tmp_path: Path) -> None:
    done = subprocess.run(
        ["sh", str(REPO / "workloads" / "gpu-device-probe" / "probe.sh")],
        capture_output=True, text=True, timeout=30, check=False,
        env={"PATH": "/usr/bin:/bin", "NVIDIA_VISIBLE_DEVICES": "all", "HOLD_S": "0"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    if any((Path(d) / "nvidia-smi").exists() for d in ("/usr/bin", "/bin")):
        pytest.skip("this machine has nvidia-smi: the no-driver path cannot be exercised")
    probe = parse_device_probe(done.stdout)
    assert probe.smi_rc == 127 and probe.device_count == 0 and probe.env["NVIDIA_VISIBLE_DEVICES"] == "all"
    assert probe.window is not None and probe.window[1] >= probe.window[0]


@pytest.mark.skipif(os.geteuid() != 0, reason="gpu-check.sh checks for root first")
def test_gpu_check_script_stops_with_a_clear_message_without_a_gpu(tmp_path: Path) -> None:
    for tool in ("dirname", "id"):  # a PATH with the script's helpers but no nvidia-smi
        (tmp_path / tool).symlink_to(next(Path(d) / tool for d in ("/usr/bin", "/bin") if (Path(d) / tool).exists()))
    done = subprocess.run(
        ["/bin/sh", str(REPO / "workloads" / "cuda-gemm" / "gpu-check.sh")],
        capture_output=True, text=True, timeout=30, check=False, env={"PATH": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 2
    assert "gpu-check: nvidia-smi is missing or lists no GPU: install the NVIDIA driver first" in done.stderr
