"""Stand-in for nvidia-ml-py's pynvml as gpu_bench.py's Telemetry uses it (see README.md)."""

from __future__ import annotations

NVML_TEMPERATURE_GPU = 0


def nvmlInit() -> None:
    return None


def nvmlDeviceGetHandleByUUID(uuid: str) -> str:
    return uuid


def nvmlDeviceGetHandleByIndex(index: int) -> str:
    return str(index)


def nvmlDeviceGetTemperature(handle: str, sensor: int) -> int:
    return 64


def nvmlDeviceGetPowerUsage(handle: str) -> int:
    return 612000  # milliwatts
