"""fio ``--output-format=json`` and ``json+`` (fio 2.x to 3.x).

Why a parser of our own: fio's JSON changed across versions and is not always strict JSON. This parser handles:

- **Latency units.** fio 2.x reports ``clat``/``slat``/``lat`` in microseconds; fio 3.x reports ``clat_ns`` etc. in
  nanoseconds. Everything is normalised to **microseconds** (``us``).
- **Sizes.** fio 2.x ``io_bytes`` is in KiB (despite its name); fio 3.x has ``io_bytes`` in bytes plus ``io_kbytes``.
  The presence of ``io_kbytes`` tells the two apart. ``bw`` is KiB/s in every version; newer fio adds ``bw_bytes``
  (B/s), which is used when present because it is not rounded to whole KiB/s.
- **Duplicate keys.** fio writes the same key twice (``"0.00"`` three times in every percentile object for unused
  ``percentile_list`` slots; ``filename`` twice in ``global options``). Duplicates are resolved **last one wins**,
  consistently (that is also how fio applies a repeated option), and the ``"0.00"`` placeholders are dropped.
- **Preamble and trailers.** fio may print warnings before the JSON (``fio: ...``) and, with ``--status-interval``,
  several JSON documents; the parser skips to the first line starting with ``{`` and uses the **last** complete
  document that has ``jobs``.

Metric scheme (identity in labels, DESIGN.md section 1). One set per job and per direction that did I/O:

- ``bw`` in **MiB/s** (fio's own human output uses MiB/s; convert with :func:`harness.units.convert` as needed);
- ``iops`` in IOPS;
- ``clat`` in us, with ``stat=mean|min|max`` or ``stat=percentile`` + ``percentile=99.9`` (the percentile as fio
  lists it, trailing zeros removed: ``"99.900000"`` -> ``"99.9"``);
- ``lat`` (total latency: submission + completion) in us, same labels; its percentiles exist with
  ``lat_percentiles=1``. No latency metric at all when fio measured none (``N: 0`` under ``gtod_reduce=1``);
- ``runtime`` in ms;
- ``disk_util`` in % per device (label ``device``).

Labels: ``job`` (jobname), ``direction`` (read/write/trim), and ``rw``, ``ioengine``, ``direct``, ``bs``, ``iodepth``,
``numjobs`` where the job options or the global options state them (job options override global ones).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.measurement import Measurement
from harness.parsers._lines import json_error, line_at, parse_error
from harness.statistics import percentile_text, stat_measurements

__all__ = [
    "DIRECTIONS",
    "LABEL_OPTIONS",
    "DiskUtil",
    "FioDirection",
    "FioJob",
    "FioLatency",
    "FioResult",
    "fio_measurements",
    "parse_fio",
]

Direction = Literal["read", "write", "trim"]
DIRECTIONS: tuple[Direction, ...] = ("read", "write", "trim")
LABEL_OPTIONS: tuple[str, ...] = ("rw", "ioengine", "direct", "bs", "iodepth", "numjobs")
_TOOL = "fio json"


@dataclass(frozen=True, slots=True, kw_only=True)
class FioLatency:
    """One latency distribution (clat, slat or lat), in microseconds whatever fio version wrote it."""

    min_us: float
    max_us: float
    mean_us: float
    stddev_us: float
    percentiles_us: Mapping[str, float] = field(default_factory=dict)  # "99.9" -> value


@dataclass(frozen=True, slots=True, kw_only=True)
class FioDirection:
    """The numbers of one job in one direction; ``bw_bytes_per_s`` in B/s, ``runtime_ms`` as fio reports it."""

    direction: Direction
    io_bytes: int
    bw_bytes_per_s: float
    iops: float
    runtime_ms: float
    total_ios: int | None
    clat: FioLatency | None
    slat: FioLatency | None
    lat: FioLatency | None

    @property
    def did_io(self) -> bool:
        return self.io_bytes > 0 or self.iops > 0


@dataclass(frozen=True, slots=True, kw_only=True)
class FioJob:
    """One job (or one reported group with ``group_reporting``): its options and the directions that did I/O."""

    name: str
    groupid: int
    error: int
    job_options: Mapping[str, str]
    options: Mapping[str, str]  # global options overlaid by job options
    directions: tuple[FioDirection, ...]

    def direction(self, name: Direction) -> FioDirection | None:
        return next((d for d in self.directions if d.direction == name), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class DiskUtil:
    """fio's ``disk_util`` entry for one block device."""

    name: str
    util_percent: float
    read_ios: int
    write_ios: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FioResult:
    """A whole fio JSON document."""

    fio_version: str
    timestamp: int | None
    global_options: Mapping[str, str]
    jobs: tuple[FioJob, ...]
    disk_util: tuple[DiskUtil, ...] = ()

    def job(self, name: str) -> FioJob:
        for job in self.jobs:
            if job.name == name:
                return job
        raise KeyError(f"no fio job {name!r} (jobs: {[j.name for j in self.jobs]})")


def _last_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """object_pairs_hook: duplicate keys keep the last value (explicit, so the choice is documented and tested)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        out[key] = value
    return out


def _decode(text: str) -> dict[str, Any]:
    decoder = json.JSONDecoder(object_pairs_hook=_last_wins)
    starts = [i for i, line in _line_offsets(text) if line.lstrip().startswith("{")]
    if not starts:
        no, line = line_at(text, 0)
        raise parse_error(_TOOL, "no JSON object in the output (no line starts with '{')", no, line)
    documents: list[dict[str, Any]] = []
    position = starts[0]
    while position < len(text):
        try:
            document, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            if documents:  # a trailing partial document after a complete one (killed mid --status-interval)
                break
            raise json_error(_TOOL, text, exc) from None
        if isinstance(document, dict):
            documents.append(document)
        following = [s for s in starts if s >= end]
        if not following:
            break
        position = following[0]
    with_jobs = [d for d in documents if isinstance(d.get("jobs"), list)]
    if not with_jobs:
        no, line = line_at(text, starts[0])
        raise parse_error(_TOOL, "the JSON has no 'jobs' list", no, line)
    return with_jobs[-1]


def _line_offsets(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    offset = 0
    for line in text.splitlines(keepends=True):
        out.append((offset, line))
        offset += len(line)
    return out


def _number(obj: Mapping[str, Any], key: str, where: str, default: float | None = None) -> float:
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise parse_error(_TOOL, f"{where}.{key} must be a number, got {value!r}", None, json.dumps(obj)[:200])
    return float(value)


def _percentile_key(key: str) -> str | None:
    try:
        q = float(key)
    except ValueError:
        return None
    if q <= 0.0:  # fio's placeholders for unused percentile_list slots
        return None
    return percentile_text(q)


def _latency(obj: Any, scale: float, where: str) -> FioLatency | None:
    """None when fio measured no latency: ``N: 0`` (fio 3.x with ``gtod_reduce=1``, kubestr's default job, or
    ``disable_clat``), or an all-zero block without ``N`` (fio 2.x writes zeros then). Exporting those zeros would
    give "0 us" and pass every latency bar with numbers nobody measured."""
    if not isinstance(obj, dict):
        return None
    if obj.get("N") == 0 or ("N" not in obj and not obj.get("max") and not obj.get("mean")):
        return None
    percentiles: dict[str, float] = {}
    raw = obj.get("percentile")
    if isinstance(raw, dict):
        for key, value in raw.items():
            name = _percentile_key(key)
            if name is not None and isinstance(value, int | float):
                percentiles[name] = float(value) * scale
    return FioLatency(
        min_us=_number(obj, "min", where, 0) * scale,
        max_us=_number(obj, "max", where, 0) * scale,
        mean_us=_number(obj, "mean", where, 0) * scale,
        stddev_us=_number(obj, "stddev", where, 0) * scale,
        percentiles_us=percentiles,
    )


def _pick_latency(obj: Mapping[str, Any], name: str, where: str) -> FioLatency | None:
    if f"{name}_ns" in obj:
        return _latency(obj[f"{name}_ns"], 1e-3, f"{where}.{name}_ns")
    if name in obj:
        return _latency(obj[name], 1.0, f"{where}.{name}")
    return None


def _direction(job: Mapping[str, Any], name: Direction, where: str) -> FioDirection | None:
    obj = job.get(name)
    if obj is None:
        return None
    if not isinstance(obj, dict):
        raise parse_error(_TOOL, f"{where}.{name} must be an object", None, repr(obj)[:200])
    here = f"{where}.{name}"
    if "io_kbytes" in obj:  # fio >= 3: io_bytes is bytes
        io_bytes = int(_number(obj, "io_bytes", here))
    else:  # fio 2.x: io_bytes is KiB
        io_bytes = int(_number(obj, "io_bytes", here, 0) * 1024)
    bw = _number(obj, "bw_bytes", here) if "bw_bytes" in obj else _number(obj, "bw", here) * 1024.0
    total = obj.get("total_ios")
    return FioDirection(
        direction=name,
        io_bytes=io_bytes,
        bw_bytes_per_s=bw,
        iops=_number(obj, "iops", here),
        runtime_ms=_number(obj, "runtime", here, 0),
        total_ios=int(total) if isinstance(total, int | float) and not isinstance(total, bool) else None,
        clat=_pick_latency(obj, "clat", here),
        slat=_pick_latency(obj, "slat", here),
        lat=_pick_latency(obj, "lat", here),
    )


def _options(obj: Any) -> dict[str, str]:
    if not isinstance(obj, dict):
        return {}
    return {str(k): str(v) for k, v in obj.items()}


def parse_fio(text: str) -> FioResult:
    """Parse fio JSON output (stdout of ``fio --output-format=json``, warnings before it allowed)."""
    data = _decode(text)
    global_options = _options(data.get("global options"))
    jobs: list[FioJob] = []
    for index, raw in enumerate(data["jobs"]):
        where = f"jobs[{index}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("jobname"), str):
            raise parse_error(_TOOL, f"{where} has no 'jobname'", None, json.dumps(raw)[:200])
        job_options = _options(raw.get("job options"))
        directions = tuple(d for name in DIRECTIONS if (d := _direction(raw, name, where)) is not None)
        if not directions:
            raise parse_error(
                _TOOL, f"{where} ({raw['jobname']}) has no read/write/trim section", None, json.dumps(raw)[:200]
            )
        jobs.append(
            FioJob(
                name=raw["jobname"],
                groupid=int(raw.get("groupid", 0)),
                error=int(raw.get("error", 0)),
                job_options=job_options,
                options={**global_options, **job_options},
                directions=tuple(d for d in directions if d.did_io),
            )
        )
    disks = tuple(
        DiskUtil(
            name=str(d.get("name", "")),
            util_percent=float(d.get("util", 0.0)),
            read_ios=int(d.get("read_ios", 0)),
            write_ios=int(d.get("write_ios", 0)),
        )
        for d in data.get("disk_util") or []
        if isinstance(d, dict)
    )
    timestamp = data.get("timestamp")
    return FioResult(
        fio_version=str(data.get("fio version", "")),
        timestamp=int(timestamp) if isinstance(timestamp, int) else None,
        global_options=global_options,
        jobs=tuple(jobs),
        disk_util=disks,
    )


_MIB = 1024.0 * 1024.0


def fio_measurements(result: FioResult, *, extra_labels: Mapping[str, str] | None = None) -> list[Measurement]:
    """Measurements of every job and direction that did I/O (see the module docstring for the scheme)."""
    out: list[Measurement] = []
    extra = dict(extra_labels or {})
    for job in result.jobs:
        base = {**extra, "job": job.name}
        base.update({key: job.options[key] for key in LABEL_OPTIONS if key in job.options})
        for d in job.directions:
            labels = {**base, "direction": d.direction}
            out.append(Measurement(metric="bw", value=d.bw_bytes_per_s / _MIB, unit="MiB/s", labels=labels))
            out.append(Measurement(metric="iops", value=d.iops, unit="IOPS", labels=labels))
            out.append(Measurement(metric="runtime", value=d.runtime_ms, unit="ms", labels=labels))
            for metric, latency in (("clat", d.clat), ("lat", d.lat)):
                if latency is None:
                    continue
                stats = (("mean", latency.mean_us), ("min", latency.min_us), ("max", latency.max_us))
                percentiles = latency.percentiles_us.items()
                out += stat_measurements(metric, "us", stats=stats, percentiles=percentiles, labels=labels)
    for disk in result.disk_util:
        out.append(
            Measurement(metric="disk_util", value=disk.util_percent, unit="%", labels={**extra, "device": disk.name})
        )
    return out
