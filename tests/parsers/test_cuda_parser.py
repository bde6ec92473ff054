"""GPU workload outputs: the device probe (real nvidia-smi -L inside marker lines), the benchmarks' result blocks
(complete per GPU or a parse error), and the CUDA/driver errors a failure message must carry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import ParseError
from harness.parsers.cuda import cuda_failure, cuda_measurements, parse_device_probe

DATA = Path(__file__).resolve().parent.parent / "data"


def read(name: str) -> str:
    return (DATA / name).read_text()


def test_probe_with_four_gpus_lists_them_with_env_devices_driver_and_window():
    probe = parse_device_probe(read("gpu-probe_4xP100_constructed.txt"))
    assert probe.smi_rc == 0 and probe.device_count == 4
    assert probe.uuids[0] == "GPU-9c15c693-71ea-a2f0-e0c9-4e85e7bbc039"
    assert probe.products == ("Tesla P100-PCIE-16GB",)
    assert probe.dev_nodes == ("/dev/nvidia0", "/dev/nvidia1", "/dev/nvidia2", "/dev/nvidia3")
    assert probe.driver_version == "375.66" and probe.window == (1764340000.0, 1764340015.0)
    assert probe.env["CUDA_VISIBLE_DEVICES"] == "" and probe.env["NVIDIA_VISIBLE_DEVICES"].count("GPU-") == 4


def test_probe_without_nvidia_smi_sees_nothing_and_says_why():
    probe = parse_device_probe(read("gpu-probe_no-gpu_constructed.txt"))
    assert probe.device_count == 0 and probe.smi_rc == 127 and probe.dev_nodes == ()
    assert probe.env["NVIDIA_VISIBLE_DEVICES"] == "all"  # the CUDA image's default, not honoured: secure
    assert probe.describe() == "no nvidia-smi in the container (no GPU driver libraries injected)"


def test_probe_where_nvidia_smi_fails_reports_its_message():
    probe = parse_device_probe(read("gpu-probe_smi-failed_constructed.txt"))
    assert probe.device_count == 0 and probe.smi_rc == 9 and probe.window is None
    assert probe.describe().startswith("nvidia-smi exited 9: NVIDIA-SMI has failed because it couldn't communicate")


def test_probe_with_a_mig_instance_counts_the_instance_not_the_parent():
    probe = parse_device_probe(read("gpu-probe_mig-1g.5gb_constructed.txt"))
    assert probe.uuids == ("MIG-c6d4f1ef-42e4-5de3-91c7-45d71c87eb3f",)
    assert probe.gpu_uuids == ("GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77",)
    assert probe.gpus[0].mig_devices[0].profile == "1g.5gb"


def test_probe_ignores_other_log_lines_but_needs_its_sections():
    text = "image banner\n" + read("gpu-probe_4xP100_constructed.txt") + "trailing noise\n"
    assert parse_device_probe(text).device_count == 4
    with pytest.raises(ParseError, match=r"no 'aibench-probe: begin nvidia-smi -L' line"):
        parse_device_probe("hello\n")
    truncated = "\n".join(read("gpu-probe_4xP100_constructed.txt").splitlines()[:3])
    with pytest.raises(ParseError, match=r"not terminated \(probe killed\?\) at line 1"):
        parse_device_probe(truncated)
    no_dev = "aibench-probe: begin nvidia-smi -L\naibench-probe: end nvidia-smi -L rc=127\n"
    with pytest.raises(ParseError, match=r"no 'aibench-probe: dev' line"):
        parse_device_probe(no_dev)


def test_probe_with_a_garbled_listing_is_a_parse_error_naming_the_line():
    text = read("gpu-probe_4xP100_constructed.txt").replace("GPU 2: Tesla", "GPU two: Tesla")
    with pytest.raises(ParseError, match=r"at line 3: 'GPU two: Tesla"):
        parse_device_probe(text)


# ------------------------------------------------------------------------------------------------- benchmark blocks
def block(measurements: list[dict], mode: str = "gemm") -> str:
    return (
        "aibench: gemm on GPU 0\n===AIBENCH-RESULT-BEGIN===\n"
        + json.dumps({"measurements": measurements, "info": {"mode": mode}})
        + "\n===AIBENCH-RESULT-END===\n"
    )


def gemm_rows(gpus: int, dtypes: tuple[str, ...] = ("bf16", "fp16")) -> list[dict]:
    return [
        {"metric": "tflops", "value": 700.0, "unit": "TFLOP/s", "labels": {"gpu": str(g), "dtype": d}}
        for g in range(gpus)
        for d in dtypes
    ]


def test_gemm_block_complete_for_every_gpu_and_dtype():
    out = cuda_measurements(
        block(gemm_rows(2)), mode="gemm", expect_gpus=2, dtypes=("bf16", "fp16"), extra_labels={"node": "n1"}
    )
    assert len(out) == 4 and all(m.labels["node"] == "n1" and m.unit == "TFLOP/s" for m in out)


@pytest.mark.parametrize(
    ("rows", "kwargs", "message"),
    [
        (gemm_rows(1), {"expect_gpus": 2}, r"1 GPU\(s\) reported \(0\), the pod was given 2"),
        (gemm_rows(2, ("bf16",)), {"expect_gpus": 2}, r"GPU 0 reported no tflops for dtype fp16"),
        (
            [{"metric": "tflops", "value": 0.0, "unit": "TFLOP/s", "labels": {"gpu": "0", "dtype": "bf16"}}],
            {"expect_gpus": 1, "dtypes": ("bf16",)},
            r"GPU 0 tflops is 0: not a measurement",
        ),
        (
            [{"metric": "tflops", "value": 5.0, "unit": "GFLOP/s", "labels": {"gpu": "0", "dtype": "bf16"}}],
            {"expect_gpus": 1, "dtypes": ("bf16",)},
            r"GPU 0 tflops in GFLOP/s, expected TFLOP/s",
        ),
    ],
)
def test_incomplete_gemm_block_is_a_parse_error(rows, kwargs, message):
    kwargs = {"dtypes": ("bf16", "fp16"), **kwargs}
    with pytest.raises(ParseError, match=message):
        cuda_measurements(block(rows), mode="gemm", **kwargs)


def test_a_block_of_another_mode_or_missing_metrics_fails():
    with pytest.raises(ParseError, match=r"info.mode is 'gemm', expected 'pcie'"):
        cuda_measurements(block(gemm_rows(1)), mode="pcie", expect_gpus=1)
    h2d = [{"metric": "h2d_bw", "value": 50.0, "unit": "GB/s", "labels": {"gpu": "0"}}]
    with pytest.raises(ParseError, match=r"GPU 0 reported no d2h_bw"):
        cuda_measurements(block(h2d, mode="pcie"), mode="pcie", expect_gpus=1)
    with pytest.raises(ValueError, match="unknown CUDA benchmark mode"):
        cuda_measurements(block(h2d), mode="nbody", expect_gpus=1)


def test_burn_block_needs_stability_temperature_and_power():
    rows = [
        {"metric": "tflops", "value": 650.0, "unit": "TFLOP/s", "labels": {"gpu": "0", "stat": "mean"}},
        {"metric": "tflops_cv", "value": 0.0, "unit": "%", "labels": {"gpu": "0"}},
        {"metric": "temperature_max", "value": 74.0, "unit": "C", "labels": {"gpu": "0"}},
    ]
    with pytest.raises(ParseError, match=r"GPU 0 reported no power_max"):
        cuda_measurements(block(rows, mode="burn"), mode="burn", expect_gpus=1)
    rows.append({"metric": "power_max", "value": 690.0, "unit": "W", "labels": {"gpu": "0"}})
    out = cuda_measurements(block(rows, mode="burn"), mode="burn", expect_gpus=1)
    assert {m.metric for m in out} == {"tflops", "tflops_cv", "temperature_max", "power_max"}  # a CV of 0 is valid


# ---------------------------------------------------------------------------------------------------- CUDA failures
def test_ngc_entrypoint_driver_message_gives_required_and_found_driver():
    failure = cuda_failure(read("ngc-entrypoint_driver-too-old_440.33-vs-418.67.txt"))
    assert failure is not None and failure.kind == "driver too old for the image"
    assert failure.driver_version == "418.67" and failure.required == "440.33"
    assert failure.describe() == (
        "driver too old for the image: This container was built for NVIDIA Driver Release 440.33 or later, but "
        "version 418.67 was detected; node driver 418.67; image needs 440.33"
    )


def test_pytorch_driver_message_gives_the_cuda_version_the_driver_supports():
    failure = cuda_failure(read("pytorch_driver-too-old_found-12080.txt"))
    assert failure is not None and failure.driver_version == "supports up to CUDA 12.8"
    with_version = read("pytorch_driver-too-old_found-12080.txt") + "aibench: driver_version=570.153.02\n"
    assert cuda_failure(with_version).driver_version == "570.153.02 (supports up to CUDA 12.8)"


def test_container_toolkit_requirement_error_is_a_driver_mismatch():
    text = (
        "Error: failed to create containerd task: ... nvidia-container-cli: requirement error: unsatisfied "
        "condition: cuda>=12.4, please update your driver to a newer version, or use an earlier cuda container"
    )
    failure = cuda_failure(text)
    assert failure is not None and failure.kind == "driver too old for the image" and failure.required == "cuda>=12.4"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("RuntimeError: No CUDA GPUs are available", "no CUDA device"),
        ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", "out of GPU memory"),
        ("RuntimeError: CUDA error: no kernel image is available for execution on the device", "unsupported GPU"),
        ("RuntimeError: CUDA error: an illegal memory access was encountered", "CUDA error"),
        ("cudaGetDeviceCount returned 35\n-> CUDA driver version is insufficient for CUDA runtime version", "driver"),
    ],
)
def test_other_cuda_failures_are_named(text, kind):
    failure = cuda_failure(text)
    assert failure is not None and failure.kind.startswith(kind), failure


def test_a_clean_log_has_no_cuda_failure():
    assert cuda_failure(read("gpu-probe_4xP100_constructed.txt")) is None
