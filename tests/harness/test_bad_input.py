"""Every CLI option and every file a user hands over, given badly: one line on stderr naming the culprit, the
documented exit code, no traceback, nothing left running, no record changed (issue 18).

Each case runs ``k8s-ai-bench`` in this process (``harness.cli.main``) where the refusal happens before anything
starts, which keeps the table fast on CI's two cores; a case whose exit path needs a process of its own (a target
that refuses, a disk that fills during a run, a file only another user cannot read) runs as a subprocess.

Inputs are made per case in a scratch directory (the working directory of the case): an empty file, a binary one,
a directory, a file of mode 000, a sparse file far larger than any configuration, YAML of the wrong shape, with an
unknown key or a key given twice. Unwritable outputs are paths below a regular file (ENOTDIR, which even root
cannot write) and, where this process may mount, a read-only tmpfs; the full disk is a 64 KiB tmpfs filled up.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from harness import cli

ROOT = os.geteuid() == 0
CLI = [sys.executable, "-m", "harness.cli"]
REPO = Path(__file__).resolve().parents[2]

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: lab, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: lab, user: {token: t}}]
contexts: [{name: lab, context: {cluster: lab, user: lab}}]
current-context: lab
"""
PROFILE_UNIT = """\
name: unit
description: a bar in the wrong kind of unit
thresholds:
  fio:
    - {id: fio-seqread-bw, metric: bw, comparison: ">=", value: 100, unit: ms, source: test}
"""
PROFILE_UNKNOWN_KEY = "name: unknownkey\ndescription: x\nthreshold: {}\n"
PROFILE_DUP = "name: dup\ndescription: x\ndescription: y\nthresholds: {}\n"
SPEC_UNKNOWN_KEY = "apiVersion: aibench.io/v1\nkind: ClusterSpec\nnodepools: []\n"
WORKLOAD_UNKNOWN = "name: w\nkind: job\nmanifests: [job.yaml]\nimage: x\n"
WORKLOAD_DUP = "name: w\nkind: job\nkind: service\nmanifests: [job.yaml]\n"


def write_record(run_dir: Path) -> None:
    """A small finished run record (one passed fio result) that no case may change."""
    run_dir.mkdir(parents=True)
    info = {"run_id": run_dir.name, "started_at": 1.0, "finished_at": 2.0, "exit_status": 0, "ended_by": "completed"}
    (run_dir / "run.json").write_text(json.dumps(info))
    result = {
        "id": "storage/test_fio.py::test_seqread",
        "status": "passed",
        "workload": "fio",
        "measurements": [{"metric": "bw", "value": 450.0, "unit": "MiB/s", "labels": {"job": "seqread"}}],
    }
    (run_dir / "results.jsonl").write_text(json.dumps(result) + "\n")


def _files(work: Path) -> None:
    """The inputs every case may name, relative to the case's working directory."""
    (work / "empty.yaml").write_bytes(b"")
    (work / "binary.bin").write_bytes(bytes(range(256)) * 8)
    (work / "adir").mkdir()
    (work / "afile").write_text("a regular file\n")
    (work / "noread.yaml").write_text(KUBECONFIG)
    (work / "noread.yaml").chmod(0)
    with open(work / "huge.yaml", "wb") as handle:
        handle.truncate(20 * 1024 * 1024)  # sparse: no disk used
    (work / "list.yaml").write_text("- a\n- b\n")
    (work / "syntax.yaml").write_text("a: [1, 2\n")
    (work / "kubeconfig").write_text(KUBECONFIG)
    (work / "kc-dup.yaml").write_text(KUBECONFIG + "current-context: other\n")
    (work / "kc-type.yaml").write_text("apiVersion: v1\nkind: Config\ncontexts: lab\n")
    (work / "unit.yaml").write_text(PROFILE_UNIT)
    (work / "unknownkey.yaml").write_text(PROFILE_UNKNOWN_KEY)
    (work / "dup.yaml").write_text(PROFILE_DUP)
    (work / "spec-unknown.yaml").write_text(SPEC_UNKNOWN_KEY)
    for name, text in (("wl-binary", None), ("wl-unknown", WORKLOAD_UNKNOWN), ("wl-dup", WORKLOAD_DUP)):
        catalog = work / name / "w"
        catalog.mkdir(parents=True)
        if text is None:
            (catalog / "workload.yaml").write_bytes(b"\xff\xfe\x00binary")
        else:
            (catalog / "workload.yaml").write_text(text)
    write_record(work / "reports" / "earlier")
    (work / "reports" / "latest").symlink_to("earlier")
    (work / "suite_ok.py").write_text("def test_ok(target):\n    pass\n")
    (work / "src").mkdir()  # report import: a directory with one file no parser recognises
    (work / "src" / "blob.bin").write_bytes(bytes(range(256)))


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    argv: tuple[str, ...]
    culprit: str  # must appear in the one stderr line
    code: int = 2
    env: dict[str, str] = field(default_factory=dict)
    how: str = "inproc"  # inproc | subprocess | nodac (as root: a subprocess without DAC override, so 000 bites)
    needs: str = ""  # "mount": a tmpfs is needed (ro/ read-only, full/ full)
    catalog: str = ""  # workloads list: the catalog directory to use
    command: tuple[str, ...] = ()  # a subcommand that may not exist in this tree yet (the case skips without it)


def _c(case_id: str, *argv: str, culprit: str, **kwargs: object) -> Case:
    return Case(case_id, tuple(argv), culprit, **kwargs)  # type: ignore[arg-type]


RUN = ("run", "suite_ok.py")
# argument prefixes many rows share (each row then says only what it gets wrong)
KUBE_LAB = ("--target", "kube", "--kube-context", "lab", "--kubeconfig")
UP_REAL = ("cluster", "up", "--control-plane", "real")
SWEEP_LAB = ("sweep", "--kube-context", "lab", "--kubeconfig")
VALIDATE = ("profile", "validate")
CASES: tuple[Case, ...] = (
    # --- argparse and usage
    _c("no-command", culprit="required: command"),
    _c("unknown-command", "frobnicate", culprit="invalid choice: 'frobnicate'"),
    _c("unknown-option", "run", "--no-such-option", culprit="unrecognized arguments: --no-such-option"),
    _c("log-level", "--log-level", "LOUD", "workloads", "list", culprit="--log-level"),
    _c("option-without-value", "run", "--profile", culprit="--profile: expected one argument"),
    # --- run: option values
    _c("timeout-scale-inf", *RUN, "--timeout-scale", "inf", culprit="--timeout-scale: must be a finite number"),
    _c("timeout-scale-nan", *RUN, "--timeout-scale", "nan", culprit="--timeout-scale: must be a positive number"),
    _c("timeout-scale-zero", *RUN, "--timeout-scale", "0", culprit="--timeout-scale: must be a positive number"),
    _c("timeout-scale-text", *RUN, "--timeout-scale", "soon", culprit="--timeout-scale: must be a positive number"),
    _c("timeout-scale-env", *RUN, culprit="AIBENCH_TIMEOUT_SCALE", env={"AIBENCH_TIMEOUT_SCALE": "1e999"}),
    _c("image-registry-dash", *RUN, "--image-registry", "-", culprit="--image-registry: must be a registry host"),
    _c("image-registry-url", *RUN, "--image-registry", "http://m", culprit="--image-registry: must be a registry"),
    _c("image-registry-space", *RUN, "--image-registry", "a b", culprit="--image-registry"),
    _c("run-id-latest", *RUN, "--run-id", "latest", culprit="--run-id: 'latest' is reserved"),
    _c("run-id-path", *RUN, "--run-id", "../x", culprit="--run-id: must be 1-63 letters"),
    _c("run-id-existing", *RUN, "--run-id", "earlier", culprit="--run-id earlier: reports/earlier exists already"),
    _c("target-bogus", *RUN, "--target", "k3s", culprit="--target: must be one of"),
    _c("context-without-kube", *RUN, "--kube-context", "lab", culprit="--kube-context: given with --target embedded"),
    _c("kube-without-context", *RUN, "--target", "kube", culprit="--target kube: needs --kube-context"),
    _c("startup-pods-zero", *RUN, "--startup-pods", "0", culprit="--startup-pods: must be a whole number"),
    _c("startup-pods-huge", *RUN, "--startup-pods", "5000", culprit="--startup-pods: must be a whole number"),
    _c("api-calls-text", *RUN, "--api-calls", "many", culprit="--api-calls: must be a whole number"),
    _c("s3-endpoint-url", *RUN, "--s3-endpoint", "http://x:9000", culprit="--s3-endpoint: must be host:port"),
    _c("s3-endpoint-no-secret", *RUN, "--s3-endpoint", "x:9000", culprit="--s3-endpoint: needs --s3-secret"),
    _c("s3-bucket", *RUN, "--s3-bucket", "No_Such", culprit="--s3-bucket: must be an S3 bucket name"),
    _c("s3-secret", *RUN, "--s3-secret", "nslash", culprit="--s3-secret: must be namespace/name"),
    _c("s3-insecure-alone", *RUN, "--s3-insecure", culprit="--s3-insecure: only applies with --s3-endpoint"),
    _c("redis-service", *RUN, "--redis-service", "a/B_C", culprit="--redis-service: must be namespace/name"),
    _c("prometheus-url", *RUN, "--prometheus-url", "ftp://x", culprit="--prometheus-url: must be a URL"),
    _c("serving-load-garbage", *RUN, "--serving-load", "fast", culprit="--serving-load"),
    _c("serving-load-unknown", *RUN, "--serving-load", "warp=9", culprit="--serving-load"),
    _c("serving-load-sweep", *RUN, "--serving-load", "kind=sweep,levels=1;2", culprit="--serving-load: kind"),
    _c("serving-load-negative", *RUN, "--serving-load", "concurrency=-4", culprit="--serving-load"),
    _c("markexpr-unknown", *RUN, "-m", "nosucharea", culprit="-m 'nosucharea': unknown marker 'nosucharea'"),
    _c("markexpr-syntax", *RUN, "-m", "gpu and (", culprit="-m 'gpu and (': not a valid expression"),
    _c("keyword-syntax", *RUN, "-k", "a and or b", culprit="-k 'a and or b': not a valid expression"),
    _c("suite-missing", "run", "no_such_suite.py", culprit="suite no_such_suite.py: no such file"),
    # --- run: reports dir (the record's home) and what is handed over as files
    _c("reports-dir-file", *RUN, "--reports-dir", "afile", culprit="--reports-dir: afile: is a file"),
    _c("reports-dir-under-file", *RUN, "--reports-dir", "afile/r", culprit="--reports-dir: afile/r: afile is a file"),
    _c("reports-dir-empty", *RUN, "--reports-dir", " ", culprit="--reports-dir: must not be empty"),
    _c(
        "reports-dir-readonly",
        *RUN,
        "--reports-dir",
        "ro/r",
        culprit="--reports-dir: ro/r: cannot be created",
        needs="mount",
    ),
    _c("profile-missing", *RUN, "--profile", "./nothere.yaml", culprit="nothere.yaml: no such profile file"),
    _c("profile-unknown-name", *RUN, "--profile", "h1000", culprit="unknown profile 'h1000'"),
    _c("profile-binary", *RUN, "--profile", "./binary.bin", culprit="binary.bin: not UTF-8 text"),
    _c("profile-empty", *RUN, "--profile", "./empty.yaml", culprit="empty.yaml"),
    _c("profile-dir", *RUN, "--profile", "./adir", culprit="adir"),
    _c("profile-huge", *RUN, "--profile", "./huge.yaml", culprit="huge.yaml: 20971520 bytes"),
    _c("profile-list", *RUN, "--profile", "./list.yaml", culprit="list.yaml"),
    _c("profile-unit", *RUN, "--profile", "./unit.yaml", culprit="unit.yaml: thresholds.fio fio-seqread-bw: unit 'ms'"),
    _c("profile-unknown-key", *RUN, "--profile", "./unknownkey.yaml", culprit="unknownkey.yaml: threshold"),
    _c("profile-dup-key", *RUN, "--profile", "./dup.yaml", culprit="dup.yaml: line 3: duplicate key 'description'"),
    _c("cluster-spec-missing", *RUN, "--cluster-spec", "nothere.yaml", culprit="--cluster-spec: no such file"),
    _c("cluster-spec-binary", *RUN, "--cluster-spec", "binary.bin", culprit="binary.bin: not UTF-8 text"),
    _c("cluster-spec-dir", *RUN, "--cluster-spec", "adir", culprit="--cluster-spec: no such file: adir"),
    _c("cluster-spec-unknown-key", *RUN, "--cluster-spec", "spec-unknown.yaml", culprit="spec-unknown.yaml"),
    _c("cluster-spec-syntax", *RUN, "--cluster-spec", "syntax.yaml", culprit="syntax.yaml"),
    _c("kubeconfig-binary", *RUN, *KUBE_LAB, "binary.bin", culprit="--kubeconfig binary.bin: not UTF-8 text"),
    _c("kubeconfig-empty", *RUN, *KUBE_LAB, "empty.yaml", culprit="--kubeconfig empty.yaml: not a kubeconfig"),
    _c("kubeconfig-dir", *RUN, *KUBE_LAB, "adir", culprit="--kubeconfig: no such file: adir"),
    _c("kubeconfig-huge", *RUN, *KUBE_LAB, "huge.yaml", culprit="--kubeconfig huge.yaml: 20971520 bytes"),
    _c("kubeconfig-syntax", *RUN, *KUBE_LAB, "syntax.yaml", culprit="--kubeconfig syntax.yaml: line 2: invalid YAML"),
    _c("kubeconfig-list", *RUN, *KUBE_LAB, "list.yaml", culprit="--kubeconfig list.yaml: not a kubeconfig"),
    _c(
        "kubeconfig-wrong-type",
        *RUN,
        *KUBE_LAB,
        "kc-type.yaml",
        culprit="--kubeconfig kc-type.yaml: contexts must be a list",
    ),
    _c(
        "kubeconfig-dup-key",
        *RUN,
        *KUBE_LAB,
        "kc-dup.yaml",
        culprit="kc-dup.yaml: line 7: duplicate key 'current-context' (first on line 6)",
    ),
    _c(
        "kubeconfig-no-context",
        *RUN,
        "--target",
        "kube",
        "--kube-context",
        "prod",
        "--kubeconfig",
        "kubeconfig",
        culprit="--kube-context prod: no such context in kubeconfig (available: lab)",
    ),
    _c(
        "kubeconfig-mode-000",
        *RUN,
        *KUBE_LAB,
        "noread.yaml",
        culprit="--kubeconfig noread.yaml: cannot read: Permission denied",
        how="nodac",
    ),
    _c(
        "target-unreachable",
        *RUN,
        *KUBE_LAB,
        "kubeconfig",
        culprit="target unavailable: --kube-context lab: API server unreachable (connection refused)",
        code=3,
        how="subprocess",
    ),
    # --- doctor: the same options, the same refusals
    _c("doctor-timeout-scale", "doctor", "--timeout-scale", "-1", culprit="--timeout-scale: must be a positive number"),
    _c(
        "doctor-kubeconfig-binary",
        "doctor",
        *KUBE_LAB,
        "binary.bin",
        culprit="--kubeconfig binary.bin: not UTF-8 text",
    ),
    # --- profile validate
    _c("validate-binary", *VALIDATE, "binary.bin", culprit="binary.bin: not UTF-8 text"),
    _c("validate-dir", *VALIDATE, "adir", culprit="adir: is a directory"),
    _c("validate-missing", *VALIDATE, "nothere.yaml", culprit="nothere.yaml: no such profile file"),
    _c("validate-empty", *VALIDATE, "empty.yaml", culprit="empty.yaml"),
    _c("validate-unit", *VALIDATE, "unit.yaml", culprit="unit 'ms' is time, but fio bw is measured as bandwidth"),
    _c(
        "validate-mode-000",
        *VALIDATE,
        "noread.yaml",
        culprit="noread.yaml: cannot read: Permission denied",
        how="nodac",
    ),
    # --- cluster up (embedded and the real control plane): refused before a port is opened
    _c("up-spec-binary", "cluster", "up", "--spec", "binary.bin", culprit="binary.bin: not UTF-8 text"),
    _c("up-spec-dir", "cluster", "up", "--spec", "adir", culprit="adir"),
    _c("up-state-dir-file", "cluster", "up", "--state-dir", "afile", culprit="--state-dir afile: is a file"),
    _c("up-kubeconfig-dir", "cluster", "up", "--kubeconfig", "adir", culprit="--kubeconfig adir: is a directory"),
    _c(
        "up-kubeconfig-uncreatable",
        "cluster",
        "up",
        "--kubeconfig",
        "afile/sub/kc",
        culprit="--kubeconfig afile/sub/kc: afile is a file",
    ),
    _c("up-control-plane-bogus", "cluster", "up", "--control-plane", "k3s", culprit="--control-plane: invalid choice"),
    _c("up-real-kubeconfig-dir", *UP_REAL, "--kubeconfig", "adir", culprit="--kubeconfig adir: is a directory"),
    _c("up-real-spec-binary", *UP_REAL, "--spec", "binary.bin", culprit="binary.bin: not UTF-8 text"),
    _c("up-real-state-dir-file", *UP_REAL, "--state-dir", "afile", culprit="--state-dir afile: is a file"),
    _c("up-real-spec-unknown-key", *UP_REAL, "--spec", "spec-unknown.yaml", culprit="spec-unknown.yaml"),
    # --- sweep
    _c("sweep-kubeconfig-binary", *SWEEP_LAB, "binary.bin", culprit="--kubeconfig binary.bin: not UTF-8 text"),
    _c("sweep-kubeconfig-empty", *SWEEP_LAB, "empty.yaml", culprit="--kubeconfig empty.yaml"),
    _c("sweep-no-context", "sweep", "--kubeconfig", "kubeconfig", culprit="--kube-context"),
    _c(
        "sweep-reports-dir-file",
        *SWEEP_LAB,
        "kubeconfig",
        "--reports-dir",
        "afile",
        culprit="--reports-dir afile: is a file",
    ),
    # --- report: record directories and outputs
    _c("render-missing", "report", "render", "reports/nothere", culprit="run record reports/nothere does not exist"),
    _c("render-file", "report", "render", "afile", culprit="run record afile is not a directory"),
    _c(
        "render-full-disk",
        "report",
        "render",
        "full/earlier",
        culprit="full/earlier/report.html: cannot write (no space left on device)",
        code=4,
        needs="mount",
    ),
    _c(
        "compare-missing-new",
        "report",
        "compare",
        "reports/earlier",
        "reports/nothere",
        culprit="reports/nothere does not exist",
    ),
    _c(
        "compare-negative-gate",
        "report",
        "compare",
        "reports/earlier",
        "reports/earlier",
        "--fail-on-regression",
        "-5",
        culprit="--fail-on-regression must be a percentage",
    ),
    _c(
        "compare-inf-gate",
        "report",
        "compare",
        "reports/earlier",
        "reports/earlier",
        "--fail-on-regression",
        "inf",
        culprit="--fail-on-regression must be a percentage",
    ),
    _c(
        "compare-text-gate",
        "report",
        "compare",
        "reports/earlier",
        "reports/earlier",
        "--fail-on-regression",
        "ten",
        culprit="--fail-on-regression: invalid float value",
    ),
    _c("history-file", "report", "history", "afile", culprit="run record afile is not a directory"),
    _c(
        "history-html-dir",
        "report",
        "history",
        "reports/earlier",
        "--html",
        "adir",
        culprit="--html adir: is a directory",
    ),
    _c(
        "history-html-uncreatable",
        "report",
        "history",
        "reports/earlier",
        "--html",
        "afile/h.html",
        culprit="--html afile/h.html: afile is a file",
    ),
    _c(
        "history-html-readonly",
        "report",
        "history",
        "reports/earlier",
        "--html",
        "ro/h.html",
        culprit="--html ro/h.html: cannot be created (ro is not writable)",
        needs="mount",
    ),
    _c(
        "evidence-out-file", "report", "evidence", "reports/earlier", "--out", "afile", culprit="--out afile: is a file"
    ),
    _c(
        "evidence-out-uncreatable",
        "report",
        "evidence",
        "reports/earlier",
        "--out",
        "afile/ev",
        culprit="--out afile/ev: afile is a file",
    ),
    _c(
        "evidence-out-full",
        "report",
        "evidence",
        "reports/earlier",
        "--out",
        "full/ev",
        culprit="cannot write (no space left on device)",
        code=4,
        needs="mount",
    ),
    # --- report import (other tools' outputs judged as a run): its record obeys the same rules
    _c(
        "import-src-file",
        "report",
        "import",
        "afile",
        "--profile",
        "cpu-only",
        culprit="afile is not a directory",
        command=("report", "import"),
    ),
    _c(
        "import-src-missing",
        "report",
        "import",
        "nothere",
        "--profile",
        "cpu-only",
        culprit="nothere is not a directory",
        command=("report", "import"),
    ),
    _c(
        "import-profile-binary",
        "report",
        "import",
        "adir",
        "--profile",
        "./binary.bin",
        culprit="binary.bin: not UTF-8 text",
        command=("report", "import"),
    ),
    _c(
        "import-run-id-latest",
        "report",
        "import",
        "src",
        "--profile",
        "cpu-only",
        "--run-id",
        "latest",
        culprit="latest",
        command=("report", "import"),
    ),
    _c(
        "import-out-existing",
        "report",
        "import",
        "src",
        "--profile",
        "cpu-only",
        "--out",
        "reports/earlier",
        culprit="reports/earlier: exists already",
        command=("report", "import"),
    ),
    _c(
        "import-out-under-file",
        "report",
        "import",
        "src",
        "--profile",
        "cpu-only",
        "--out",
        "afile/x",
        culprit="afile: a file is in the way",
        command=("report", "import"),
    ),
    # --- workload.yaml (a catalog a user adds to)
    _c(
        "workload-binary", "workloads", "list", culprit="wl-binary/w/workload.yaml: not UTF-8 text", catalog="wl-binary"
    ),
    _c(
        "workload-unknown-key",
        "workloads",
        "list",
        culprit="wl-unknown/w/workload.yaml: image: unknown key",
        catalog="wl-unknown",
    ),
    _c(
        "workload-dup-key",
        "workloads",
        "list",
        culprit="wl-dup/w/workload.yaml: line 3: duplicate key 'kind'",
        catalog="wl-dup",
    ),
)


def test_the_table_is_at_least_sixty_cases() -> None:
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def mounts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path | None]:
    """``ro/`` (a read-only tmpfs) and ``full/`` (a 64 KiB tmpfs holding a record, then filled), or None when this
    process may not mount."""
    base = tmp_path_factory.mktemp("mounts")
    ro, full = base / "ro", base / "full"
    ro.mkdir()
    full.mkdir()
    mounted: list[Path] = []
    try:
        for path, options in ((ro, "size=64k,ro"), (full, "size=64k")):
            done = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, check=False
            )
            if done.returncode != 0:
                yield None
                return
            mounted.append(path)
        write_record(full / "earlier")
        with open(full / "filler", "wb", buffering=0) as handle:  # fill the rest: writes now fail with ENOSPC
            try:
                while True:
                    handle.write(b"\0" * 4096)
            except OSError:
                pass
        yield base
    finally:
        for path in mounted:
            subprocess.run(["umount", str(path)], check=False)


def _tree(path: Path) -> dict[str, str]:
    """Every file under ``path`` (links as their target) with a digest of its content."""
    out: dict[str, str] = {}
    for item in sorted(path.rglob("*")):
        key = str(item.relative_to(path))
        if item.is_symlink():
            out[key] = "-> " + os.readlink(item)
        elif item.is_file():
            out[key] = hashlib.sha256(item.read_bytes()).hexdigest()
        else:
            out[key] = "dir"
    return out


@functools.cache
def _has_command(command: tuple[str, ...]) -> bool:
    """Whether ``k8s-ai-bench <command>`` exists (its ``--help`` exits 0, an unknown one 2)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            cli.main([*command, "--help"])
        except SystemExit as exc:
            return exc.code == 0
    return True


class WouldStart(AssertionError):
    """A bad input was not refused and the command went on to start something: the case fails at once instead."""


def _never_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every way an in-process case could start something (the embedded target, the real control plane, a node
    agent, a connection to a cluster, a pytest session) raises instead: a refusal that stopped happening must fail
    its case, never start a cluster."""
    from harness import targets
    from harness.cluster import target
    from harness.embedded import cluster as embedded
    from harness.localkube import controlplane

    def refuse(*args: object, **kwargs: object) -> None:
        raise WouldStart("the input was not refused: the command went on to start something")

    monkeypatch.setattr(embedded.EmbeddedCluster, "start", refuse)
    monkeypatch.setattr(controlplane.LocalKube, "start", refuse)
    monkeypatch.setattr(targets, "connect", refuse)
    monkeypatch.setattr(target, "connect_kube", refuse)
    monkeypatch.setattr(pytest, "main", refuse)
    try:
        from harness.node import agent  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return
    monkeypatch.setattr(agent.NodeAgent, "start", refuse)


def _run_inproc(
    case: Case, work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    monkeypatch.chdir(work)
    _never_start(monkeypatch)
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    if case.catalog:
        import harness.catalog.spec as spec

        monkeypatch.setattr(spec, "catalog_root", lambda: work / case.catalog)
    try:
        code = cli.main(list(case.argv))
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.err


def _run_process(case: Case, work: Path, *, without_dac_override: bool) -> tuple[int, str]:
    # root reads a mode-000 file anyway (CAP_DAC_OVERRIDE); without those two capabilities it gets EACCES as anyone
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if without_dac_override else []
    env = {**os.environ, **case.env, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [*prefix, *CLI, *case.argv], cwd=work, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    return done.returncode, done.stderr


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_with_its_exit_code(
    case: Case,
    tmp_path: Path,
    mounts: Path | None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if case.command and not _has_command(case.command):
        pytest.skip(f"k8s-ai-bench {' '.join(case.command)} is not in this tree")
    work = tmp_path / "w"
    work.mkdir()
    _files(work)
    if case.needs == "mount":
        if mounts is None:
            pytest.skip("needs tmpfs mounts (root with CAP_SYS_ADMIN): a read-only and a full file system")
        (work / "ro").symlink_to(mounts / "ro")
        (work / "full").symlink_to(mounts / "full")
    records_before = _tree(work / "reports")
    full_before = _tree(mounts / "full") if mounts is not None and case.needs == "mount" else {}
    children_before = {p.pid for p in psutil.Process().children(recursive=True)}
    threads_before = threading.active_count()
    if case.how == "nodac" and ROOT:
        if shutil.which("setpriv") is None:
            pytest.skip("needs setpriv (util-linux) to read as root without CAP_DAC_OVERRIDE")
        code, err = _run_process(case, work, without_dac_override=True)
    elif case.how in ("subprocess", "nodac"):
        code, err = _run_process(case, work, without_dac_override=False)
    else:
        code, err = _run_inproc(case, work, monkeypatch, capsys)

    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"{case.id}: expected one line on stderr, got {len(lines)}:\n{err}"
    assert case.culprit in lines[0], f"{case.id}: {lines[0]!r} does not name {case.culprit!r}"
    assert "Traceback" not in err and "INTERNALERROR" not in err
    assert code == case.code, f"{case.id}: exit {code}, expected {case.code}: {lines[0]}"
    assert _tree(work / "reports") == records_before, f"{case.id}: a record changed"
    if full_before:
        assert _tree(mounts / "full") == full_before, f"{case.id}: the full disk's record changed"
        assert not [p for p in (mounts / "full").rglob("*.tmp")], "a temporary file was left behind"
    # other tests of the session may hold targets (and their pods) open: only processes this case started count
    started = {p.pid for p in psutil.Process().children(recursive=True)} - children_before
    assert not started, f"{case.id}: a process was left running"
    assert threading.active_count() <= threads_before, f"{case.id}: a thread was left running"
    shutil.rmtree(work, ignore_errors=True)
