"""The run record on disk: ``run.json`` and one ``results.jsonl`` line per test (DESIGN.md section 7).

Results are appended as each test ends, so an interrupted run still leaves every finished result readable, and
every report can be rebuilt offline from the directory alone. What is written is always the schema's own
serialisation (:mod:`harness.reporting.schema`, the classes the reader builds back): a caller may hand a typed
:class:`~harness.reporting.schema.TestResult` / :class:`~harness.reporting.schema.RunInfo` or the same fields as a
mapping, which goes through the schema first, so a field the schema does not know cannot be written by accident in
a shape no reader expects.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from harness.config import RESERVED_RUN_IDS
from harness.errors import ConfigError, RecordWriteError
from harness.measurement import Measurement
from harness.redact import redact
from harness.reporting.atomic import append_line, write_atomic, write_error
from harness.reporting.schema import RunInfo, TestResult

RESULTS = "results.jsonl"
RUN_INFO = "run.json"


class JudgedCheck(Protocol):
    """A check as tests record it (:class:`harness.thresholds.model.Check`): it serialises itself."""

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(slots=True, kw_only=True)
class TestRecord:
    """What a test recorded while it ran; the plugin adds status and duration when it ends."""

    __test__: ClassVar[bool] = False  # suites import it by name for their annotations: not a test class to collect

    workload: str = ""
    params: dict[str, str] = field(default_factory=dict)
    measurements: list[Measurement] = field(default_factory=list)
    checks: list[JudgedCheck] = field(default_factory=list)
    artifacts: str = ""

    def add(
        self,
        *,
        workload: str | None = None,
        params: Mapping[str, Any] | None = None,
        measurements: Sequence[Measurement] = (),
        checks: Sequence[JudgedCheck] = (),
    ) -> None:
        if workload:
            self.workload = workload
        if params:
            self.params.update({k: str(v) for k, v in params.items()})
        self.measurements.extend(measurements)
        self.checks.extend(checks)

    @property
    def emulated(self) -> bool:
        return any(m.emulated for m in self.measurements)


class RunRecord:
    """Writer of one ``reports/<run-id>/`` directory; thread-safe appends.

    The directory is made here and must not exist yet: a run id names one run, so a second run with the same id is
    refused (:class:`ConfigError`) instead of appending to the first one's results. Every write is whole or absent
    (:mod:`harness.reporting.atomic`); a failed one raises :class:`RecordWriteError`."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir
        if run_dir.name in RESERVED_RUN_IDS:
            raise ConfigError(f"--run-id {run_dir.name}: reserved (reports/latest links to the newest run)")
        parent = run_dir.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise RecordWriteError(f"{parent}: a file is in the way, not a directory of run records") from None
        except OSError as exc:
            raise write_error(parent, exc, "cannot create the directory of run records") from None
        try:
            run_dir.mkdir()
        except FileExistsError:
            raise ConfigError(
                f"run record {run_dir}: exists already; run ids are never reused (choose another --run-id)"
            ) from None
        except OSError as exc:
            raise write_error(run_dir, exc, "cannot create the run directory") from None
        try:
            (self.dir / "artifacts").mkdir()
        except OSError as exc:
            raise write_error(run_dir / "artifacts", exc, "cannot create") from None
        self._lock = threading.Lock()

    def write_info(self, info: RunInfo | Mapping[str, Any]) -> None:
        """Write (or rewrite) ``run.json``."""
        typed = info if isinstance(info, RunInfo) else RunInfo.from_json(info)
        data = typed.to_json()
        if not isinstance(info, RunInfo):
            lost = sorted(k for k, v in info.items() if k not in data and v not in (None, "", [], {}))
            if lost:  # a known field of the wrong type: refuse rather than write a run.json without it
                raise ConfigError(f"run info not recorded: {', '.join(lost)} of a type the record schema does not hold")
        text = json.dumps(redact(data), indent=2, sort_keys=True, default=str)
        write_atomic(self.dir / RUN_INFO, text)

    def add_result(self, result: TestResult | Mapping[str, Any]) -> None:
        """Append one result line; a result the schema cannot hold whole (a mapping with parts the reader would
        drop, a measurement without a finite number) is refused (:class:`ConfigError`), never written with parts
        silently dropped or as a line no JSON reader accepts."""
        problems: list[str] = []
        typed = result if isinstance(result, TestResult) else TestResult.from_json(result, problems=problems)
        problems += typed.unwritable()
        if problems:
            raise ConfigError(f"result {typed.id or '(no id)'} not recorded: " + "; ".join(problems))
        line = json.dumps(redact(typed.to_json()), sort_keys=True, default=str)
        with self._lock:
            append_line(self.dir / RESULTS, line)

    def point_latest(self) -> None:
        """``reports/latest`` -> this run (a relative symlink, replaced atomically)."""
        link = self.dir.parent / "latest"
        tmp = self.dir.parent / f".latest-{os.getpid()}"
        try:
            if tmp.is_symlink() or tmp.exists():
                tmp.unlink()
            tmp.symlink_to(self.dir.name)
            os.replace(tmp, link)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise write_error(link, exc, f"cannot point it at {self.dir.name}") from None
