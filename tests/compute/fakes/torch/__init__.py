"""Stand-in for the few torch calls gpu_bench.py makes (see ../README.md); FAKE_GPUS GPUs, FAKE_CUDA_ERROR fails."""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

__version__ = "0.0-fake"
version = SimpleNamespace(cuda="12.4")
bfloat16, float16, float32, uint8 = "bfloat16", "float16", "float32", "uint8"
backends = SimpleNamespace(
    cuda=SimpleNamespace(matmul=SimpleNamespace(allow_tf32=False)), cudnn=SimpleNamespace(allow_tf32=False)
)


class Tensor:
    def copy_(self, other: Tensor, non_blocking: bool = False) -> Tensor:
        return self


def randn(*shape: int, dtype: str = "", device: str = "") -> Tensor:
    return Tensor()


def empty(*shape: int, dtype: str = "", device: str = "", pin_memory: bool = False) -> Tensor:
    return Tensor()


def empty_like(tensor: Tensor) -> Tensor:
    return Tensor()


def matmul(a: Tensor, b: Tensor, out: Tensor | None = None) -> Tensor:
    return out or Tensor()


class _Event:
    def __init__(self, enable_timing: bool = False) -> None:
        self.at = 0.0

    def record(self) -> None:
        self.at = time.perf_counter()

    def synchronize(self) -> None:
        time.sleep(0.001)

    def elapsed_time(self, end: _Event) -> float:
        return max(end.at - self.at, 1e-6) * 1000.0


def _available() -> bool:
    if os.environ.get("FAKE_CUDA_ERROR"):
        raise RuntimeError(os.environ["FAKE_CUDA_ERROR"])
    return True


cuda = SimpleNamespace(
    is_available=_available,
    device_count=lambda: int(os.environ.get("FAKE_GPUS", "2")),
    set_device=lambda index: None,
    get_device_properties=lambda index: SimpleNamespace(
        name="NVIDIA H100 80GB HBM3", uuid=f"00000000-0000-0000-0000-00000000000{index}"
    ),
    Event=_Event,
    empty_cache=lambda: None,
)
