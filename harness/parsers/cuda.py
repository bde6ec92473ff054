"""GPU workloads' outputs: the device probe (``nvidia-smi -L`` as the container sees it), the CUDA benchmarks'
result blocks, and the CUDA/driver errors that explain a failed run.

Why one module: all three read the logs of pods that asked for ``nvidia.com/gpu``, and a failed benchmark is only
useful when its message carries the CUDA error and the node's driver version (a CUDA 12.4 image on a 470 driver
fails in four different wordings depending on who notices first: the NGC entrypoint, PyTorch, the CUDA runtime,
or the container toolkit).

**Device probe** (``workloads/gpu-device-probe/probe.sh``) prints the real tools' output between marker lines::

    aibench-probe: begin nvidia-smi -L
    GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-...)
    aibench-probe: end nvidia-smi -L rc=0
    aibench-probe: env NVIDIA_VISIBLE_DEVICES=GPU-...
    aibench-probe: env CUDA_VISIBLE_DEVICES=
    aibench-probe: dev /dev/nvidia0
    aibench-probe: driver 550.54.15
    aibench-probe: window 1764340000 1764340015

The window line (start of the listing, end of the hold) tells whether two probe pods held their devices at the same
time: only then must their devices differ (a GPU freed by a finished pod is rightly handed to the next).

``rc=127`` means nvidia-smi is not in the container (no driver libraries were injected: the pod got no GPU).

**Benchmarks** (``workloads/cuda-*/gpu_bench.py``) print one sentinel block; :func:`cuda_measurements` checks that
every GPU reported every metric its mode must produce: a missing number is a parse failure, never a pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from harness.measurement import Measurement
from harness.parsers._lines import parse_error
from harness.parsers.nvidia_smi import GpuListEntry, parse_gpu_list
from harness.parsers.sentinel import parse_sentinel

__all__ = [
    "REQUIRED_METRICS",
    "CudaFailure",
    "DeviceProbe",
    "cuda_failure",
    "cuda_measurements",
    "parse_device_probe",
]

_TOOL = "gpu device probe"
_BEGIN = re.compile(r"^aibench-probe: begin nvidia-smi -L\s*$")
_END = re.compile(r"^aibench-probe: end nvidia-smi -L rc=(?P<rc>\d+)\s*$")
_ENV = re.compile(r"^aibench-probe: env (?P<name>[A-Z_]+)=(?P<value>.*)$")
_DEV = re.compile(r"^aibench-probe: dev(?P<nodes>(?: \S+)*)\s*$")
_DRIVER = re.compile(r"^aibench-probe: driver ?(?P<version>\S*)\s*$")
_WINDOW = re.compile(r"^aibench-probe: window (?P<start>\d+(?:\.\d+)?) (?P<end>\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceProbe:
    """What one container could see. ``smi_rc`` 127: no nvidia-smi (no GPU injected); other non-zero: it failed."""

    gpus: tuple[GpuListEntry, ...]
    smi_rc: int
    smi_output: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    dev_nodes: tuple[str, ...] = ()
    driver_version: str = ""
    window: tuple[float, float] | None = None  # epoch seconds the container held its devices (listing to exit)

    @property
    def uuids(self) -> tuple[str, ...]:
        """Every device the container can use: MIG instance UUIDs where the GPU is partitioned, else GPU UUIDs."""
        out: list[str] = []
        for gpu in self.gpus:
            if gpu.mig_devices:
                out.extend(m.uuid for m in gpu.mig_devices)
            else:
                out.append(gpu.uuid)
        return tuple(out)

    @property
    def device_count(self) -> int:
        return len(self.uuids)

    @property
    def gpu_uuids(self) -> tuple[str, ...]:
        """Physical GPU UUIDs (a MIG instance's parent counts once)."""
        return tuple(g.uuid for g in self.gpus)

    @property
    def products(self) -> tuple[str, ...]:
        return tuple(sorted({g.name for g in self.gpus}))

    def describe(self) -> str:
        """One line for failure messages: the devices listed, or why none were."""
        if self.gpus:
            return "; ".join(f"GPU {g.index}: {g.name} ({g.uuid})" for g in self.gpus)
        if self.smi_rc == 127:
            return "no nvidia-smi in the container (no GPU driver libraries injected)"
        first = next((line for line in self.smi_output.splitlines() if line.strip()), "")
        return f"nvidia-smi exited {self.smi_rc}" + (f": {first.strip()}" if first else " listing no GPU")


def parse_device_probe(text: str) -> DeviceProbe:
    """The probe section of a pod log (other lines are ignored; the section must be there and complete)."""
    lines = text.splitlines()
    begin = next((i for i, line in enumerate(lines) if _BEGIN.match(line)), None)
    if begin is None:
        raise parse_error(_TOOL, "no 'aibench-probe: begin nvidia-smi -L' line in the log", None, _last(text))
    end = next((i for i in range(begin + 1, len(lines)) if _END.match(lines[i])), None)
    if end is None:
        raise parse_error(_TOOL, "the nvidia-smi -L section is not terminated (probe killed?)", begin + 1, lines[begin])
    rc = int(_END.match(lines[end])["rc"])  # type: ignore[index]
    body = "\n".join(lines[begin + 1 : end])
    gpus: tuple[GpuListEntry, ...] = ()
    if rc == 0 and body.strip():
        gpus = parse_gpu_list(body)
    env: dict[str, str] = {}
    dev: tuple[str, ...] = ()
    driver = ""
    window: tuple[float, float] | None = None
    seen_dev = False
    for line in lines[end + 1 :]:
        if m := _ENV.match(line):
            env[m["name"]] = m["value"]
        elif m := _DEV.match(line):
            dev, seen_dev = tuple(m["nodes"].split()), True
        elif m := _DRIVER.match(line):
            driver = m["version"]
        elif m := _WINDOW.match(line):
            window = (float(m["start"]), float(m["end"]))
    if not seen_dev:
        raise parse_error(_TOOL, "no 'aibench-probe: dev' line after the nvidia-smi section", end + 1, lines[end])
    return DeviceProbe(
        gpus=gpus, smi_rc=rc, smi_output=body, env=env, dev_nodes=dev, driver_version=driver, window=window
    )


def _last(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "<empty log>"


# --------------------------------------------------------------------------------------------------------- benchmarks
#: metric -> (unit, label that must vary) per benchmark mode; every GPU must report each of them.
REQUIRED_METRICS: Mapping[str, Mapping[str, str]] = {
    "gemm": {"tflops": "TFLOP/s"},
    "membw": {"membw": "GB/s"},
    "pcie": {"h2d_bw": "GB/s", "d2h_bw": "GB/s"},
    "burn": {
        "tflops": "TFLOP/s",
        "tflops_cv": "%",
        "temperature_max": "C",
        "power_max": "W",
    },
}
GEMM_DTYPES = ("bf16", "fp16", "tf32", "fp32")


def cuda_measurements(
    text: str,
    *,
    mode: str,
    expect_gpus: int,
    dtypes: Iterable[str] = (),
    extra_labels: Mapping[str, str] | None = None,
) -> list[Measurement]:
    """The measurements of one benchmark pod, checked complete: each of ``expect_gpus`` GPUs (label ``gpu``)
    reports every metric of ``mode`` (for gemm: each of ``dtypes``). Raises ParseError naming what is missing."""
    if mode not in REQUIRED_METRICS:
        raise ValueError(f"unknown CUDA benchmark mode {mode!r} (known: {', '.join(REQUIRED_METRICS)})")
    result = parse_sentinel(text)
    where = f"{mode} result block"
    reported_mode = str(result.info.get("mode", ""))
    if reported_mode != mode:
        raise parse_error(where, f"info.mode is {reported_mode!r}, expected {mode!r}", result.begin_line, "")
    measurements = [m.with_labels(extra_labels) for m in result.measurements]
    gpus = sorted({m.label("gpu") for m in measurements if m.label("gpu")})
    if len(gpus) != expect_gpus:
        raise parse_error(
            where,
            f"{len(gpus)} GPU(s) reported ({', '.join(gpus) or 'none'}), the pod was given {expect_gpus}",
            result.begin_line,
            "",
        )
    wanted_dtypes = tuple(dtypes) if mode == "gemm" else ()
    for gpu in gpus:
        for metric, symbol in REQUIRED_METRICS[mode].items():
            found = [m for m in measurements if m.metric == metric and m.label("gpu") == gpu]
            if not found:
                raise parse_error(where, f"GPU {gpu} reported no {metric}", result.begin_line, "")
            wrong = next((m for m in found if m.unit != symbol), None)
            if wrong is not None:
                raise parse_error(where, f"GPU {gpu} {metric} in {wrong.unit}, expected {symbol}", None, str(wrong))
            for dtype in wanted_dtypes:
                if not any(m.label("dtype") == dtype for m in found):
                    raise parse_error(where, f"GPU {gpu} reported no {metric} for dtype {dtype}", None, "")
            bad = next((m for m in found if m.value <= 0 and metric not in ("tflops_cv",)), None)
            if bad is not None:
                raise parse_error(where, f"GPU {gpu} {metric} is {bad.value:g}: not a measurement", None, str(bad))
    return measurements


# ------------------------------------------------------------------------------------------------------ CUDA failures
@dataclass(frozen=True, slots=True, kw_only=True)
class CudaFailure:
    """A known CUDA/driver failure found in a log: what it is, the line saying so, the driver version if stated."""

    kind: str
    line: str
    driver_version: str = ""
    required: str = ""

    def describe(self) -> str:
        parts = [f"{self.kind}: {self.line.strip()}"]
        if self.driver_version:
            parts.append(f"node driver {self.driver_version}")
        if self.required:
            parts.append(f"image needs {self.required}")
        return "; ".join(parts)


# (kind, pattern) in order of precedence: the most specific diagnosis first.
_FAILURES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "driver too old for the image",
        re.compile(
            r"This container was built for NVIDIA Driver Release (?P<required>[\d.]+) or later, but\s*"
            r"(?:\n\s*)?version (?P<driver>[\d.]*) was detected",
            re.IGNORECASE,
        ),
    ),
    (
        "driver too old for the image",
        re.compile(r"unsatisfied condition: (?P<required>cuda\s*>=\s*[\d.]+)[^\n]*please update your driver"),
    ),
    (
        "driver too old for the image",
        re.compile(r"The NVIDIA driver on your system is too old \(found version (?P<cuda_api>\d+)\)"),
    ),
    ("driver too old for the image", re.compile(r"CUDA driver version is insufficient for CUDA runtime version")),
    ("no CUDA device", re.compile(r"No CUDA GPUs are available|no CUDA-capable device is detected")),
    ("no driver", re.compile(r"Found no NVIDIA driver on your system|couldn't communicate with the NVIDIA driver")),
    ("unsupported GPU architecture", re.compile(r"no kernel image is available for execution on the device")),
    ("out of GPU memory", re.compile(r"CUDA out of memory|CUDA error: out of memory")),
    ("CUDA error", re.compile(r"CUDA error: [^\n]+|cudaError\w* = \d+")),
)
_DRIVER_LINE = re.compile(r"(?:aibench-probe: driver |aibench: driver_version=)(?P<v>\d[\d.]+)")
_SMI_DRIVER = re.compile(r"Driver Version: (?P<v>\d[\d.]+)")


def _cuda_api_version(number: str) -> str:
    """CUDA driver API version as PyTorch prints it (12080) -> ``CUDA 12.8``."""
    value = int(number)
    return f"CUDA {value // 1000}.{(value % 1000) // 10}"


def cuda_failure(text: str) -> CudaFailure | None:
    """The first known CUDA/driver failure in ``text`` (a log, or a log plus events), or None."""
    driver = ""
    if m := _DRIVER_LINE.search(text) or _SMI_DRIVER.search(text):
        driver = m["v"]
    for kind, pattern in _FAILURES:
        match = pattern.search(text)
        if match is None:
            continue
        groups = match.groupdict()
        found_driver = groups.get("driver") or driver
        required = groups.get("required") or ""
        if groups.get("cuda_api"):
            supports = f"supports up to {_cuda_api_version(groups['cuda_api'])}"
            found_driver = f"{found_driver} ({supports})" if found_driver else supports
        return CudaFailure(
            kind=kind, line=" ".join(match.group(0).split()), driver_version=found_driver, required=required
        )
    return None
