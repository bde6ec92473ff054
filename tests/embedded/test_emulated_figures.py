"""The emulated benchmarks' figures file (harness/embedded/data/emulated_figures.yaml): the shipped file loads and
answers by product, and a broken one is one ConfigError line naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.embedded.emulated_workloads import FIGURES_PATH, load_figures
from harness.errors import ConfigError


def test_shipped_figures_load_and_match_products_by_name() -> None:
    figures = load_figures()
    hopper = figures.gpu("NVIDIA H100 80GB HBM3")
    assert figures.gpu("NVIDIA H200") == hopper and hopper.tflops["bf16"] == 720.0 and hopper.nccl_busbw == 480.0
    assert figures.gpu("NVIDIA A100-SXM4-80GB").membw == 1750.0
    assert figures.gpu("NVIDIA L4").power_max == 72.0
    assert figures.gpu("Tesla T4") == figures.generic_gpu == figures.gpu("NVIDIA A100-SXM4-80GB")
    assert all("bf16" in gpu.tflops for gpu in figures.gpus.values())
    assert figures.tpu("tpu-v5p-slice").kind == "TPU v5"
    assert figures.tpu("tpu-v5-lite-device") == figures.tpu("tpu-v5-lite-podslice")
    assert figures.tpu("tpu-v9-unknown") == figures.generic_tpu and figures.generic_tpu.kind == "TPU"


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    text = FIGURES_PATH.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "figures.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("membw: 250.0", "membw: -250.0", "gpus.L4.membw: must be a positive number (got -250.0)"),
        ("membw: 250.0", "membw: fast", "gpus.L4.membw: must be a positive number (got 'fast')"),
        ("    power_max: 72.0\n", "", "gpus.L4: must be a mapping with the keys"),
        ("{bf16: 110.0, ", "{", "gpus.L4.tflops: must map dtypes to TFLOP/s, bf16 included"),
        ("{kind: TPU v4, ", "{kind: '', ", "tpus.tpu-v4-podslice.kind: must be a non-empty string"),
        ("hbm: 500.0}", "hbm: 500.0, extra: 1}", "generic_tpu: must be a mapping with the keys"),
    ],
)
def test_a_broken_figures_file_is_one_line_naming_the_key(tmp_path: Path, old: str, new: str, message: str) -> None:
    path = _broken(tmp_path, old, new)
    with pytest.raises(ConfigError) as info:
        load_figures(path)
    assert str(path.name) in str(info.value) and message in str(info.value)
    assert "\n" not in str(info.value)
