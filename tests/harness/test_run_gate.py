"""`k8s-ai-bench run` never says PASS for a run that did not run (issue 18, issue 16 item 4).

Each test drives the real command in a subprocess, as a nightly CI job would: nothing selected, everything
skipped, Ctrl-C and SIGTERM (once and twice) on the default embedded target, a target lost mid-run (``cluster up``
killed with SIGKILL under ``run --target kube``), and a full disk. They check the exit code, the summary line, the
one line on stderr, the record (``ended_by``, ``outcome``) and what the record's report and history say.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.reporting.history import format_history, history

CLI = [sys.executable, "-m", "harness.cli"]

SUITE = '''
import json, os, time
from pathlib import Path
import pytest
from kubernetes import client

@pytest.fixture(scope="session", autouse=True)
def namespaces_at_session_end(target):
    """Session fixtures end after every test's namespace and before the target stops: list what is left."""
    yield
    try:
        names = [n.metadata.name for n in client.CoreV1Api(target.api_client).list_namespace().items]
    except Exception as exc:  # the lost-target test: nothing to ask
        names = [f"unreachable: {type(exc).__name__}"]
    Path(os.environ["LEFT_FILE"]).write_text(json.dumps([n for n in names if not n.startswith(("default", "kube-"))]))

@pytest.mark.conformance
def test_quick(namespace):
    """Quick."""

@pytest.mark.conformance
def test_slow(namespace):
    """Sleeps until interrupted (or until the target is gone)."""
    Path(os.environ["STARTED_FILE"]).write_text("slow")
    deadline = time.monotonic() + float(os.environ.get("SLOW_S", "60"))
    while time.monotonic() < deadline:
        time.sleep(0.1)

@pytest.mark.conformance
def test_after(namespace, target):
    """Lists pods after the slow test."""
    client.CoreV1Api(target.api_client).list_namespaced_pod(namespace)

@pytest.mark.gpu
@pytest.mark.compute
def test_gpu(target):
    """Needs a GPU (the embedded target has none: skipped)."""
'''


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "LEFT_FILE": str(tmp_path / "left.json"),
        "STARTED_FILE": str(tmp_path / "started"),
        **extra,
    }


def _start(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    (tmp_path / "suite_gate.py").write_text(SUITE)
    return subprocess.Popen(
        [*CLI, "run", "suite_gate.py", "--reports-dir", "reports", *args],
        cwd=tmp_path,
        env=env or _env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _summary(out: str) -> str:
    """The summary line (not the header's ``k8s-ai-bench 0.1.0: run ...``)."""
    return next(line for line in out.splitlines() if re.match(r"k8s-ai-bench [A-Z-]+: ", line))


def _info(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "run.json").read_text())


def _wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_nothing_selected_is_no_tests_exit_5_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "earlier").mkdir()
    (tmp_path / "reports" / "latest").symlink_to("earlier")
    code, out, err = _finish(_start(tmp_path, "-k", "no_such_test"))
    assert code == 5, out + err
    assert "k8s-ai-bench NO-TESTS: no test selected (4 collected, none left after -m/-k)" in out
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["earlier", "latest"]
    assert os.readlink(tmp_path / "reports" / "latest") == "earlier"
    assert "PASS" not in out


def test_every_test_skipped_is_no_tests_not_pass(tmp_path: Path) -> None:
    code, out, err = _finish(_start(tmp_path, "-k", "gpu", "--run-id", "skipped"))
    assert code == 5, out + err
    assert _summary(out).startswith("k8s-ai-bench NO-TESTS: 0 passed, 0 failed, 0 errors, 1 skipped (run skipped)")
    info = _info(tmp_path / "reports" / "skipped")
    assert (info["outcome"], info["exit_status"], info["ended_by"]) == ("NO-TESTS", 5, "completed")
    assert ">NO-TESTS<" in (tmp_path / "reports" / "skipped" / "report.html").read_text()


@pytest.mark.parametrize("signals", [("SIGINT",), ("SIGTERM",), ("SIGINT", "SIGINT", "SIGTERM")])
def test_interrupt_cleans_namespaces_first_and_says_interrupted(tmp_path: Path, signals: tuple[str, ...]) -> None:
    proc = _start(tmp_path, "--run-id", "cut")
    _wait_for(tmp_path / "started")
    for name in signals:
        proc.send_signal(getattr(signal, name))
        time.sleep(0.2)
    code, out, err = _finish(proc, timeout=60)
    assert code == 130, out + err
    summary = _summary(out)
    assert summary.startswith("k8s-ai-bench INTERRUPTED: 1 passed, 0 failed, 0 errors, 0 skipped, 3 not run (run cut)")
    assert f"interrupted by {signals[0]} during suite_gate.py::test_slow" in summary
    assert "PASS" not in summary and "FAIL" not in summary
    assert "Traceback" not in out + err and "MaxRetryError" not in out + err
    assert json.loads((tmp_path / "left.json").read_text()) == []  # deleted while the target was still up
    run_dir = tmp_path / "reports" / "cut"
    info = _info(run_dir)
    assert (info["outcome"], info["ended_by"], info["exit_status"], info["selected"]) == (
        "INTERRUPTED",
        "interrupted",
        130,
        4,
    )
    html = (run_dir / "report.html").read_text()
    assert ">INTERRUPTED<" in html and "interrupted by " + signals[0] in html
    assert (tmp_path / "reports" / "latest").resolve() == run_dir.resolve()


def test_history_keeps_interrupted_runs_apart(tmp_path: Path) -> None:
    def record(name: str, info: dict[str, Any], value: float) -> Path:
        run_dir = tmp_path / name
        run_dir.mkdir()
        (run_dir / "run.json").write_text(json.dumps({"run_id": name, "finished_at": 9.0, **info}))
        result = {
            "id": "t",
            "status": "passed",
            "workload": "fio",
            "measurements": [{"metric": "bw", "value": value, "unit": "MiB/s", "labels": {}}],
        }
        (run_dir / "results.jsonl").write_text(json.dumps(result) + "\n")
        return run_dir

    runs = [
        record("a", {"started_at": 1.0, "ended_by": "completed"}, 400.0),
        record("b", {"started_at": 2.0, "ended_by": "interrupted", "end_reason": "interrupted by SIGTERM"}, 10.0),
        record("c", {"started_at": 3.0, "ended_by": "completed"}, 410.0),
    ]
    trend = history(runs)
    assert [run for run, _ in trend.runs] == ["a", "c"]
    assert [p.value for p in trend.series[0].points] == [400.0, 410.0]
    assert trend.set_apart == (("b", "INTERRUPTED: interrupted by SIGTERM"),)
    assert "set apart, not in the trends: b (INTERRUPTED: interrupted by SIGTERM)" in format_history(trend)


@pytest.fixture
def cluster_up(tmp_path: Path) -> Any:
    """``k8s-ai-bench cluster up`` in its own process (the test kills it), with its kubeconfig and context."""
    kubeconfig = tmp_path / "kc"
    proc = subprocess.Popen(
        [*CLI, "cluster", "up", "--kubeconfig", str(kubeconfig), "--state-dir", str(tmp_path / "state")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "ready" in line, line
        context = yaml.safe_load(kubeconfig.read_text())["current-context"]
        yield proc, kubeconfig, context
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=20)


def test_lost_target_aborts_at_once_with_exit_3(tmp_path: Path, cluster_up: Any) -> None:
    server, kubeconfig, context = cluster_up
    proc = _start(
        tmp_path,
        "--target",
        "kube",
        "--kube-context",
        context,
        "--kubeconfig",
        str(kubeconfig),
        "--run-id",
        "lost",
        "-k",
        "not gpu",
        env=_env(tmp_path, SLOW_S="3"),
    )
    _wait_for(tmp_path / "started")
    server.send_signal(signal.SIGKILL)
    started = time.monotonic()
    code, out, err = _finish(proc, timeout=90)
    assert code == 3, out + err
    assert time.monotonic() - started < 30, "the run did not stop at once"
    summary = _summary(out)
    assert summary.startswith("k8s-ai-bench ABORTED: 2 passed, 0 failed, 1 errors, 0 skipped, 1 not run (run lost)")
    # test_slow passed; its namespace's deletion met the dead server: the loss is noticed there and the run stops
    assert "target lost during suite_gate.py::test_slow: API server no longer answers (connection refused)" in summary
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("k8s-ai-bench: error: target lost during"), err
    assert "Traceback" not in err
    run_dir = tmp_path / "reports" / "lost"
    info = _info(run_dir)
    assert (info["ended_by"], info["exit_status"], info["outcome"]) == ("target-lost", 3, "ABORTED")
    results = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert not any(r["id"].endswith("test_after") for r in results)
    lost = next(r for r in results if r["status"] == "error")
    assert lost["failure_kind"] == "target" and lost["message"] == "API server did not answer: connection refused"
    assert "MaxRetryError" not in (run_dir / "results.jsonl").read_text()
    assert ">ABORTED<" in (run_dir / "report.html").read_text()


def test_full_disk_ends_with_one_line_and_nothing_half_written(tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], check=False).returncode:
        pytest.skip("needs a tmpfs mount (root with CAP_SYS_ADMIN) to fill a disk")
    try:
        suite = tmp_path / "suite_fill.py"
        suite.write_text(
            "import json, os\nfrom pathlib import Path\nimport pytest\nfrom kubernetes import client\n"
            "from harness.measurement import Measurement\n\n"
            "@pytest.fixture(scope='session', autouse=True)\n"
            "def left(target):\n"
            "    yield\n"
            "    names = [n.metadata.name for n in client.CoreV1Api(target.api_client).list_namespace().items]\n"
            "    Path(os.environ['LEFT_FILE']).write_text(json.dumps([n for n in names if n.startswith('aib-')]))\n\n"
            "@pytest.mark.conformance\n@pytest.mark.parametrize('i', range(8))\n"
            "def test_fill(namespace, record, i):\n"
            "    '''Records a measurement with a long label.'''\n"
            "    record.add(workload='w', measurements=[Measurement(metric='m', value=1.0, unit='s',"
            " labels={'pad': 'x' * 9000, 'i': str(i)})])\n"
        )
        base = [*CLI, "run", str(suite), "--reports-dir", str(mnt / "r")]
        first = subprocess.run(
            [*CLI, "run", f"{suite}::test_fill[0]", "--reports-dir", str(mnt / "r"), "--run-id", "first"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=tmp_path,
            env=_env(tmp_path),
        )
        assert first.returncode == 0, first.stdout + first.stderr
        before = {p.name: p.read_bytes() for p in (mnt / "r" / "first").iterdir() if p.is_file()}
        free = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
        with open(mnt / "filler", "wb", buffering=0) as handle:
            handle.write(b"\0" * max(0, free - 30 * 1024))
        second = subprocess.run(
            [*base, "--run-id", "second"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=tmp_path,
            env=_env(tmp_path),
        )
        assert second.returncode == 4, second.stdout + second.stderr
        lines = [line for line in second.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "no space left on device" in lines[0], second.stderr
        assert _summary(second.stdout).startswith("k8s-ai-bench ABORTED: ")
        assert "Traceback" not in second.stdout + second.stderr
        run_dir = mnt / "r" / "second"
        text = (run_dir / "results.jsonl").read_text()
        assert text.endswith("\n") and all(json.loads(line) for line in text.splitlines())
        assert not [p for p in mnt.rglob("*") if p.name.endswith(".tmp") or p.name == ".alive"]
        assert os.readlink(mnt / "r" / "latest") == "first"
        assert json.loads((tmp_path / "left.json").read_text()) == []  # the stopped test's namespace went too
        assert {p.name: p.read_bytes() for p in (mnt / "r" / "first").iterdir() if p.is_file()} == before
        (mnt / "filler").unlink()
        render = subprocess.run(
            [*CLI, "report", "render", str(mnt / "r" / "first")],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert render.returncode == 0, render.stderr
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
