"""Stand-in for the few jax calls tpu_bench.py makes (see ../README.md): FAKE_CHIPS global chips, FAKE_LOCAL local,
FAKE_PLATFORM (default tpu)."""

from __future__ import annotations

import os
from types import SimpleNamespace

from jax import numpy  # noqa: F401 - jax.numpy as a submodule

__version__ = "0.0-fake"


class _Device:
    def __init__(self, index: int) -> None:
        self.id = index
        self.platform = os.environ.get("FAKE_PLATFORM", "tpu")
        self.device_kind = "TPU v5 lite" if self.platform == "tpu" else "cpu"


def _total() -> int:
    return int(os.environ.get("FAKE_CHIPS", "4"))


def _local() -> int:
    return int(os.environ.get("FAKE_LOCAL", str(_total())))


def devices() -> list[_Device]:
    return [_Device(i) for i in range(_total())]


def local_devices() -> list[_Device]:
    start = int(os.environ.get("FAKE_PROCESS", "0")) * _local()
    return [_Device(start + i) for i in range(_local())]


def device_count() -> int:
    return _total()


def local_device_count() -> int:
    return _local()


def process_count() -> int:
    return _total() // _local()


def process_index() -> int:
    return int(os.environ.get("FAKE_PROCESS", "0"))


def device_put(array: object, device: _Device) -> object:
    return array


def jit(fn):
    return fn


def pmap(fn, axis_name: str = ""):
    return fn


distributed = SimpleNamespace(initialize=lambda: None)
lax = SimpleNamespace(psum=lambda value, axis: value)
