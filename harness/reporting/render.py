"""Every file rendered from a run record, from its files alone (``run`` and ``report render`` share this)."""

from __future__ import annotations

import logging
from pathlib import Path

from harness.reporting.html import render_html
from harness.reporting.junit import write_junit
from harness.reporting.load import load_record
from harness.reporting.tables import write_csv

log = logging.getLogger(__name__)


def render_all(run_dir: Path) -> list[Path]:
    """report.html, junit.xml and results.csv in ``run_dir``; returns their paths (report first)."""
    record = load_record(run_dir)
    paths = [render_html(run_dir, record=record), write_junit(record, run_dir / "junit.xml")]
    paths.append(write_csv(record, run_dir / "results.csv"))
    if record.problems:  # one line: the report itself lists them one by one
        log.warning("%s: %s", run_dir, "; ".join(record.problems))
    return paths
