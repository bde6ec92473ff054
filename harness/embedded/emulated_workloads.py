"""What the catalog's workloads print on the embedded target's emulated nodes: their real output format, emulated
numbers, for exactly the devices the emulated device plugin gave each pod.

Why this is part of the product: an emulated node has no hardware and no processes, so without a script its pods
stay Running forever and every GPU test of ``k8s-ai-bench run --cluster-spec`` waits out its timeout. With these
emulations a suite run against emulated GPU/TPU pools completes, and what it judges is the real thing wherever it
can be: the scheduler's placement, the device plugin's allocation (``nvidia-smi -L`` lists exactly the devices the
pod got), the parsers (the real tools' formats), thresholds and reports.

Every number here is invented, plausible for the product, and flagged so: result blocks carry ``"emulated": true``
on each measurement, every pod on an emulated node is annotated ``aibench.io/emulated`` (runs from such pods are
``emulated``, and ``harness.measurement.marked_emulated`` flags what a tool table such as nccl-tests yields), and
reports label them. They exercise the suite; they say nothing about a cluster.

Selection: a workload pod carries ``aibench.io/workload`` (the harness labels every object it applies, pod
templates included; the workload's own ``app.kubernetes.io/name`` is the fallback). :func:`script_for` returns the
emulation for that workload; a workload with none ends at once, failed, with a log line and a Warning event that say
so (a clear reason instead of a timeout). Pods that belong to no workload keep the emulated node's default (Running
and Ready, as kwok's are). Tests layer their own scripts (fault scenarios) on top by pod-name prefix
(:meth:`harness.node.emulated.ScriptedRuntime.script`), which take precedence.
"""

from __future__ import annotations

import functools
import json
import re
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.embedded.deviceplugin import ScriptContext
from harness.errors import ConfigError
from harness.node.emulated import Script
from harness.yamlfile import display_path, read_yaml

__all__ = [
    "APP_NAME_LABEL",
    "NO_EMULATION_REASON",
    "PROBE_HOLD_S",
    "WORKLOAD_LABEL",
    "emulated_workloads",
    "gpu_bench_log",
    "gpu_probe_log",
    "nccl_tests_log",
    "script_for",
    "tpu_bench_log",
    "tpu_placement_log",
]

# The label harness.cluster.namespaces.run_labels(workload=...) puts on every object (and pod template) of a
# workload run; the embedded target reads it off the wire (it does not import the client side).
WORKLOAD_LABEL = "aibench.io/workload"
APP_NAME_LABEL = "app.kubernetes.io/name"
NO_EMULATION_REASON = "NoEmulatedOutput"
BEGIN, END = "===AIBENCH-RESULT-BEGIN===", "===AIBENCH-RESULT-END==="
# Emulated probes hold their devices this long whatever HOLD_S says: pods started together still overlap (the
# window line reports the real hold), and a suite run on emulated nodes does not sit out real hold times.
PROBE_HOLD_S = 1.0
DEFAULT_DRIVER = "550.54.15"


FIGURES_PATH = Path(__file__).with_name("data") / "emulated_figures.yaml"
"""The invented per-product figures (a data file: numbers to tune without reading code)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuFigures:
    """Emulated per-GPU results of one product class: plausible values above the matching profile's bars."""

    tflops: Mapping[str, float]  # dtype -> dense TFLOP/s (gpu_bench.py gemm); bf16 always present (burn reads it)
    membw: float  # GB/s, device-to-device copy
    h2d: float  # GB/s pinned
    d2h: float
    power_max: float  # W under burn
    nccl_busbw: float  # GB/s, large-message intra-node all_reduce busbw over NVLink/PCIe


@dataclass(frozen=True, slots=True, kw_only=True)
class TpuFigures:
    """Emulated per-chip results of one TPU generation."""

    kind: str  # the device kind as JAX reports it
    tflops_bf16: float  # matmul TFLOP/s
    hbm: float  # GB/s


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatedFigures:
    """The figures file, loaded: lookups by GPU product name and by GKE TPU accelerator label."""

    gpus: Mapping[str, GpuFigures]  # key contained in the upper-cased product name -> figures; first match wins
    generic_gpu: GpuFigures
    tpus: Mapping[str, TpuFigures]
    generic_tpu: TpuFigures

    def gpu(self, product: str) -> GpuFigures:
        """Figures for a product name as NVML reports it; an unknown product gets the generic ones."""
        upper = product.upper()
        return next((figures for key, figures in self.gpus.items() if key in upper), self.generic_gpu)

    def tpu(self, accelerator: str) -> TpuFigures:
        """Figures for a ``cloud.google.com/gke-tpu-accelerator`` value; an unknown one gets the generic ones."""
        return self.tpus.get(accelerator, self.generic_tpu)


def _entry(raw: object, key: str, names: tuple[str, ...]) -> Mapping[str, object]:
    if not isinstance(raw, dict) or set(raw) != set(names):
        got = sorted(map(str, raw)) if isinstance(raw, dict) else type(raw).__name__
        raise ValueError(f"{key}: must be a mapping with the keys {', '.join(names)} (got {got})")
    return raw


def _positive(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{key}: must be a positive number (got {value!r})")
    return float(value)


def _gpu_figures(raw: object, key: str) -> GpuFigures:
    entry = _entry(raw, key, ("tflops", "membw", "h2d", "d2h", "power_max", "nccl_busbw"))
    tflops = entry["tflops"]
    if not isinstance(tflops, dict) or "bf16" not in tflops:
        raise ValueError(f"{key}.tflops: must map dtypes to TFLOP/s, bf16 included")
    return GpuFigures(
        tflops={str(dtype): _positive(value, f"{key}.tflops.{dtype}") for dtype, value in tflops.items()},
        membw=_positive(entry["membw"], f"{key}.membw"),
        h2d=_positive(entry["h2d"], f"{key}.h2d"),
        d2h=_positive(entry["d2h"], f"{key}.d2h"),
        power_max=_positive(entry["power_max"], f"{key}.power_max"),
        nccl_busbw=_positive(entry["nccl_busbw"], f"{key}.nccl_busbw"),
    )


def _tpu_figures(raw: object, key: str) -> TpuFigures:
    entry = _entry(raw, key, ("kind", "tflops_bf16", "hbm"))
    if not isinstance(entry["kind"], str) or not entry["kind"]:
        raise ValueError(f"{key}.kind: must be a non-empty string (got {entry['kind']!r})")
    return TpuFigures(
        kind=entry["kind"],
        tflops_bf16=_positive(entry["tflops_bf16"], f"{key}.tflops_bf16"),
        hbm=_positive(entry["hbm"], f"{key}.hbm"),
    )


def load_figures(path: Path = FIGURES_PATH) -> EmulatedFigures:
    """Read and check the figures file; every problem is one :class:`ConfigError` naming the file and the key."""
    raw = read_yaml(path, "emulated figures")
    try:
        top = _entry(raw, "(top level)", ("gpus", "generic_gpu", "tpus", "generic_tpu"))
        gpus, tpus = top["gpus"], top["tpus"]
        if not isinstance(gpus, dict) or not isinstance(tpus, dict):
            raise ValueError("gpus, tpus: must be mappings")
        return EmulatedFigures(
            gpus={str(product).upper(): _gpu_figures(item, f"gpus.{product}") for product, item in gpus.items()},
            generic_gpu=_gpu_figures(top["generic_gpu"], "generic_gpu"),
            tpus={str(label): _tpu_figures(item, f"tpus.{label}") for label, item in tpus.items()},
            generic_tpu=_tpu_figures(top["generic_tpu"], "generic_tpu"),
        )
    except ValueError as exc:
        raise ConfigError(f"emulated figures {display_path(path)}: {exc}") from None


@functools.cache
def _figures() -> EmulatedFigures:
    """The shipped figures, read once (on the first emulated benchmark, not at import)."""
    return load_figures()


def _driver(ctx: ScriptContext) -> str:
    """The driver the node's GFD label names, else a current one."""
    return ctx.node_labels.get("nvidia.com/cuda.driver-version.full", DEFAULT_DRIVER)


def _pid(ctx: ScriptContext) -> int:
    """A stable, plausible process id for the pod (logs read like real ones and diff cleanly)."""
    return 1000 + zlib.crc32(ctx.pod.encode()) % 60000


def _result_block(measurements: list[dict[str, Any]], info: Mapping[str, Any]) -> str:
    for item in measurements:
        item["emulated"] = True
    return f"{BEGIN}\n{json.dumps({'measurements': measurements, 'info': dict(info)})}\n{END}\n"


# ----------------------------------------------------------------------------- device probes
def gpu_probe_log(ctx: ScriptContext, listing: str | None = None) -> str:
    """workloads/gpu-device-probe/probe.sh: marker lines around ``nvidia-smi -L`` for the pod's devices.

    ``listing`` replaces what nvidia-smi prints (tests break isolation through it)."""
    devices = ctx.container_devices()
    text = ctx.nvidia_smi_list() if listing is None else listing
    rc = 0 if text else 127
    nodes = sorted({f"/dev/nvidia{d.index}" for d in devices})
    now = time.time()
    return (
        "aibench-probe: begin nvidia-smi -L\n"
        + text
        + f"aibench-probe: end nvidia-smi -L rc={rc}\n"
        + f"aibench-probe: env NVIDIA_VISIBLE_DEVICES={','.join(d.uuid for d in devices) or 'void'}\n"
        + "aibench-probe: env CUDA_VISIBLE_DEVICES=\n"
        + f"aibench-probe: dev {' '.join(nodes)}\n"
        + f"aibench-probe: driver {_driver(ctx) if rc == 0 else ''}\n"
        + f"aibench-probe: window {now:.0f} {now + PROBE_HOLD_S:.0f}\n"
    )


def tpu_placement_log(ctx: ScriptContext) -> str:
    """workloads/tpu-placement-probe: the ``/dev/accel*`` chips the pod can reach."""
    return "aibench-probe: tpu " + " ".join(d.uuid for d in ctx.container_devices()) + "\n"


# ----------------------------------------------------------------------------- benchmarks
def gpu_bench_log(ctx: ScriptContext) -> str:
    """workloads/cuda-gemm/gpu_bench.py in ``BENCH_MODE`` (gemm, membw, pcie, burn) on each GPU of the pod."""
    mode = ctx.env.get("BENCH_MODE", "gemm")
    devices = [d for d in ctx.container_devices() if not d.mig_profile]
    wanted = [d for d in ctx.env.get("BENCH_DTYPES", "").split(",") if d]
    lines: list[str] = []
    out: list[dict[str, Any]] = []
    for position, device in enumerate(devices):
        figures = _figures().gpu(device.name)
        labels = {"gpu": str(position), "uuid": device.uuid, "product": device.name}
        lines.append(f"aibench: {mode} on GPU {position} {device.name} {device.uuid} (emulated)\n")

        def add(metric: str, value: float, unit: str, labels: dict[str, str] = labels, **extra: str) -> None:
            out.append({"metric": metric, "value": value, "unit": unit, "labels": {**labels, **extra}})

        if mode == "gemm":
            for dtype, tflops in figures.tflops.items():
                if not wanted or dtype in wanted:
                    add("tflops", tflops, "TFLOP/s", dtype=dtype)
        elif mode == "membw":
            add("membw", figures.membw, "GB/s", op="d2d_copy")
        elif mode == "pcie":
            add("h2d_bw", figures.h2d, "GB/s", memory="pinned")
            add("d2h_bw", figures.d2h, "GB/s", memory="pinned")
        else:
            add("tflops", figures.tflops["bf16"], "TFLOP/s", dtype="bf16", stat="mean")
            add("tflops_cv", 1.2, "%")
            add("temperature_max", 71.0, "C")
            add("power_max", figures.power_max, "W")
    info = {"mode": mode, "gpus": len(devices), "products": [d.name for d in devices], "driver": _driver(ctx)}
    return "".join(lines) + _result_block(out, info)


def tpu_bench_log(ctx: ScriptContext) -> str:
    """workloads/tpu-jax/tpu_bench.py on one host of a slice: per-chip matmul and HBM numbers, the slice's psum."""
    chips = ctx.container_devices()
    expected = int(ctx.env.get("EXPECTED_CHIPS", "0") or 0) or len(chips)
    index = _host_index(ctx)
    hosts = max(1, expected // max(1, len(chips)))
    accelerator = ctx.node_labels.get("cloud.google.com/gke-tpu-accelerator", "")
    figures = _figures().tpu(accelerator)
    out: list[dict[str, Any]] = []
    for chip in chips:
        labels = {"chip": str(index * len(chips) + chip.index), "kind": figures.kind}
        bf16 = {**labels, "dtype": "bf16"}
        out.append({"metric": "tflops", "value": figures.tflops_bf16, "unit": "TFLOP/s", "labels": bf16})
        out.append({"metric": "membw", "value": figures.hbm, "unit": "GB/s", "labels": labels})
    size = int(ctx.env.get("BENCH_ALLREDUCE_MB", "256") or 256) * 1024 * 1024
    labels = {"op": "psum", "size": str(size), "chips": str(expected)}
    out.append({"metric": "allreduce_algbw", "value": 40.0, "unit": "GB/s", "labels": labels})
    busbw = 40.0 * 2 * (expected - 1) / expected if expected > 1 else 40.0
    out.append({"metric": "allreduce_busbw", "value": busbw, "unit": "GB/s", "labels": labels})
    info = {
        "device_count": expected,
        "local_device_count": len(chips),
        "process_count": hosts,
        "process_index": index,
        "expected_chips": expected,
        "platform": "tpu",
        "device_kind": figures.kind,
        "hostname": ctx.pod,
    }
    head = f"aibench: {expected} tpu device(s), {len(chips)} local (emulated)\n"
    return head + _result_block(out, info)


def _host_index(ctx: ScriptContext) -> int:
    """The pod's host index in the slice: the Indexed Job's completion index (JobSet pods too)."""
    text = ctx.annotations.get("batch.kubernetes.io/job-completion-index", "")
    if text.isdigit():
        return int(text)
    parts = ctx.pod.rsplit("-", 2)
    return int(parts[-2]) if len(parts) == 3 and parts[-2].isdigit() else 0


_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]?)\s*$", re.IGNORECASE)
_ALGO_FACTOR: dict[str, Callable[[int], float]] = {
    "all_reduce": lambda n: 2 * (n - 1) / n,
    "all_gather": lambda n: (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "alltoall": lambda n: (n - 1) / n,
}


def _bytes(text: str, default: int) -> int:
    m = _SIZE.match(text or "")
    if not m:
        return default
    shift = 10 * " KMGT".index((m.group(2) or " ").upper())
    return int(m.group(1)) << shift


def nccl_tests_log(ctx: ScriptContext) -> str:
    """workloads/nccl-allreduce/run-nccl.sh: nccl-tests ``<op>_perf -g N`` on the pod's GPUs, the 2023+ table with
    NCCL_DEBUG=INFO transport lines (NVLink P2P; NET/IB when P2P and SHM are disabled and the pod has an HCA)."""
    devices = [d for d in ctx.container_devices() if not d.mig_profile]
    ranks = max(1, len(devices))
    op = ctx.env.get("NCCL_OP", "all_reduce")
    factor = _ALGO_FACTOR.get(op, _ALGO_FACTOR["all_reduce"])(ranks) if ranks > 1 else 1.0
    low = _bytes(ctx.env.get("MIN_BYTES", "1M"), 1 << 20)
    high = _bytes(ctx.env.get("MAX_BYTES", "16G"), 16 << 30)
    step = max(2, int(ctx.env.get("STEP_FACTOR", "2") or 2))
    iters, warmup = ctx.env.get("ITERS", "20"), ctx.env.get("WARMUP", "5")
    check = ctx.env.get("CHECK", "1") != "0"
    network = ctx.env.get("NCCL_P2P_DISABLE") == "1" and ctx.env.get("NCCL_SHM_DISABLE") == "1"
    product = devices[0].name if devices else "NVIDIA GPU"
    peak = _figures().gpu(product).nccl_busbw * (0.8 if network else 1.0)
    host, pid = ctx.pod, _pid(ctx)
    redop = "sum" if op in ("all_reduce", "reduce_scatter") else "none"
    lines = [
        "# nccl-tests version 2.13.10 nccl-headers=22602 nccl-library=22602 (emulated)",
        f"# Collective test starting: {op}_perf",
        f"# nThread 1 nGpus {ranks} minBytes {low} maxBytes {high} step: {step}(factor) warmup iters: {warmup} "
        f"iters: {iters} agg iters: 1 validation: {int(check)} graph: 0",
        "#",
        "# Using devices",
    ]
    for rank, device in enumerate(devices):
        bus = f"[0000:{0x18 + 0x10 * device.index:02x}:00]"
        lines.append(f"#  Rank {rank:2d} Group  0 Pid {pid:6d} on {host:>10} device {rank:2d} {bus} {device.name}")
    via = "NET/IB/0/GDRDMA" if network else "P2P/CUMEM/read"
    for rank in range(ranks if ranks > 1 else 0):
        peer = (rank + 1) % ranks
        channel = f"Channel 00/0 : {rank}[{rank}] -> {peer}[{peer}] via {via}"
        lines.append(f"{host}:{pid}:{pid + 60} [{rank}] NCCL INFO {channel}")
    lines += [
        "#",
        "#                                                              out-of-place                       in-place",
        "#       size         count      type   redop    root"
        "     time   algbw   busbw #wrong     time   algbw   busbw #wrong",
        "#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)",
    ]
    wrong = "     0" if check else "   N/A"
    busbws: list[float] = []
    size = low
    while size <= high:
        count = size // 4 // (ranks if op in ("all_gather", "reduce_scatter") else 1)
        busbw = peak * size / (size + 64 * 1024 * 1024)  # latency-bound small messages, plateau at the peak
        algbw = busbw / factor if factor else busbw
        micros = size / (algbw * 1e9) * 1e6
        busbws.append(busbw)
        cells = f"{micros:8.1f} {algbw:7.2f} {busbw:7.2f} {wrong}"
        lines.append(f"{size:12d}  {count:12d}     float  {redop:>6}      -1 {cells} {cells}")
        size *= step
    average = sum(busbws) / len(busbws) if busbws else 0.0
    lines += [
        "# Out of bounds values : 0 OK",
        f"# Avg bus bandwidth    : {average:.4f} ",
        "#",
        f"# Collective test concluded: {op}_perf",
        "",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- selection
def emulated_workloads() -> dict[str, Script]:
    """Workload name -> what its pods do on an emulated node (fresh mapping; callers may extend it)."""
    bench = Script(exit_code=0, render=gpu_bench_log)
    tpu = Script(exit_code=0, render=tpu_bench_log)
    probe = Script(exit_code=0, after_s=PROBE_HOLD_S, render=gpu_probe_log)
    return {
        "trivial-job": Script(exit_code=0, log="done\n"),
        "gpu-device-probe": probe,
        "gpu-no-request": Script(exit_code=0, render=gpu_probe_log),
        "cuda-gemm": bench,
        "cuda-membw": bench,
        "cuda-pcie": bench,
        "cuda-burn": bench,
        "tpu-jax": tpu,
        "tpu-jax-jobset": tpu,
        "tpu-placement-probe": Script(exit_code=0, render=tpu_placement_log),
        "nccl-allreduce": Script(exit_code=0, render=nccl_tests_log),
        # Placement-only workloads (workload.yaml ``placement_only: true``) measure nothing: their real pods just
        # hold their place (``sleep 3600``), so their emulation is to stay Running and Ready, as on kwok nodes.
        "net-gang": Script(),
        "net-gang-volcano": Script(),
    }


def _no_emulation(workload: str) -> Script:
    message = (
        f"workload {workload} has no emulated output: its pods cannot run on an emulated node (no hardware, no "
        "process). Run it on a real node, or add an emulation in harness/embedded/emulated_workloads.py."
    )
    return Script(
        exit_code=1,
        log=f"aibench (emulated node): {message}\n",
        message=message,
        event=(NO_EMULATION_REASON, message),
    )


def script_for(labels: Mapping[str, str], table: Mapping[str, Script]) -> Script | None:
    """The emulation for a pod with these labels: its workload's, a failing one naming the workload when the
    catalog has none, or None for a pod that belongs to no workload (the node's default applies)."""
    workload = labels.get(WORKLOAD_LABEL, "")
    if workload:
        return table.get(workload) or table.get(labels.get(APP_NAME_LABEL, "")) or _no_emulation(workload)
    app = labels.get(APP_NAME_LABEL, "")
    return table.get(app) if app else None
