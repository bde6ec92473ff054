"""Storage classes as tiers: how fio is run on each, the headline numbers and the ranking (the evidence).

The "storage tiering" practice asks for at least two classes whose speeds differ enough to matter (a fast tier
for model caches and checkpoints, a capacity tier for datasets). "Faster" is judged on the two numbers that
decide model-loading time and random-access time: 1 MiB sequential read bandwidth and 4 KiB random-read IOPS.
The ranking's ``tier_*`` measurements are what the ``faster-tier-faster`` verdict rule
(:mod:`harness.thresholds.verdicts`) judges; the factor lives with that rule, not here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.cluster.capabilities import Capabilities, StorageClassInfo
from harness.errors import ConfigError
from harness.measurement import Measurement
from harness.quantity import parse_quantity


def class_info(capabilities: Capabilities, name: str) -> StorageClassInfo:
    for sc in capabilities.storage_classes:
        if sc.name == name:
            return sc
    raise ConfigError(
        f"StorageClass {name!r} does not exist (classes: "
        f"{', '.join(s.name for s in capabilities.storage_classes) or 'none'})"
    )


def fio_params(info: StorageClassInfo, *, block: bool = False) -> dict[str, str]:
    """Workload parameters for a class: tmpfs-backed classes (``medium: Memory``) have no O_DIRECT, so fio runs
    buffered there (the page cache *is* that medium)."""
    params = {"storage_class": info.name}
    if not block and info.parameters.get("medium") == "Memory":
        params["direct"] = "0"
    return params


_FIO_SUFFIX = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def fio_size_bytes(text: str) -> int:
    """fio's size syntax (``256m``, ``1g``, ``512k``, plain bytes; binary multiples as fio uses by default)."""
    match = re.fullmatch(r"(\d+)([kmgt]?)i?b?", text.strip().lower())
    if not match:
        raise ConfigError(f"fio size {text!r}: expected a number with an optional k/m/g/t suffix")
    return int(match.group(1)) * _FIO_SUFFIX[match.group(2)]


def check_fio_fits(params: Mapping[str, str]) -> None:
    """The fio working set must fit the claim, checked before anything is created (a full volume mid-run would
    measure the error path, not the storage)."""
    need = fio_size_bytes(params["file_size"])
    have = int(parse_quantity(params["pvc_size"]))
    if need > have:
        raise ConfigError(
            f"fio working set file_size={params['file_size']} ({need} bytes) does not fit the claim "
            f"pvc_size={params['pvc_size']} ({have} bytes): raise pvc_size or lower file_size"
        )


def headline(measurements: list[Measurement]) -> dict[str, Any]:
    """Sequential-read MiB/s and random-read IOPS of one class's matrix (None when the job is missing)."""

    def pick(metric: str, job: str) -> float | None:
        return next(
            (
                m.value
                for m in measurements
                if m.metric == metric and m.label("job") == job and m.label("direction") == "read"
            ),
            None,
        )

    return {
        "seqread_bw": pick("bw", "seqread"),
        "randread_iops": pick("iops", "randread"),
        "emulated": any(m.emulated for m in measurements),
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class Tier:
    storage_class: str
    rank: int
    seqread_bw: float
    randread_iops: float
    measurements: tuple[Measurement, ...]


def rank_tiers(by_class: Mapping[str, Mapping[str, Any]]) -> list[Tier]:
    """Classes ordered fastest first (sequential read bandwidth, then random-read IOPS)."""
    usable = {
        name: h
        for name, h in by_class.items()
        if h.get("seqread_bw") is not None and h.get("randread_iops") is not None
    }
    ordered = sorted(usable.items(), key=lambda kv: (-kv[1]["seqread_bw"], -kv[1]["randread_iops"], kv[0]))
    tiers = []
    for rank, (name, h) in enumerate(ordered, 1):
        labels = {"storage_class": name, "rank": str(rank)}
        emulated = bool(h.get("emulated"))
        tiers.append(
            Tier(
                storage_class=name,
                rank=rank,
                seqread_bw=h["seqread_bw"],
                randread_iops=h["randread_iops"],
                measurements=(
                    Measurement(
                        metric="tier_seqread_bw", value=h["seqread_bw"], unit="MiB/s", labels=labels, emulated=emulated
                    ),
                    Measurement(
                        metric="tier_randread_iops",
                        value=h["randread_iops"],
                        unit="IOPS",
                        labels=labels,
                        emulated=emulated,
                    ),
                ),
            )
        )
    return tiers
