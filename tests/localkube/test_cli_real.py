"""`k8s-ai-bench cluster up --control-plane real` as a user runs it: refusals in one line (exit 2), a foreground
control plane that stops whole on SIGINT and dies whole on SIGKILL of its parent."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
from eventually import eventually
from real_lane import require_assets

from harness.localkube.assets import BUILD_COMMAND, default_assets_dir

CLI = [sys.executable, "-m", "harness.cli"]


def _programs_of(state_dir: Path) -> list[psutil.Process]:
    """Running programs of one control plane: started from the assets' bin/, working in its state directory."""
    root = str(os.environ.get("AIBENCH_KUBE_ASSETS") or default_assets_dir())
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        cmd = proc.info.get("cmdline") or []
        if cmd and str(cmd[0]).startswith(root) and proc.info.get("cwd") == str(state_dir):
            found.append(proc)
    return found


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, env=env, check=False)


def test_missing_programs_exit_2_naming_the_build_command(tmp_path: Path) -> None:
    env = {**os.environ, "AIBENCH_KUBE_ASSETS": str(tmp_path / "nothing-built")}
    result = _run("cluster", "up", "--control-plane", "real", env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and BUILD_COMMAND in lines[0] and "Traceback" not in result.stderr


def test_run_against_local_kube_without_programs_is_a_usage_error(tmp_path: Path) -> None:
    env = {**os.environ, "AIBENCH_KUBE_ASSETS": str(tmp_path / "nothing-built")}
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--target", "local-kube", "--reports-dir", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert BUILD_COMMAND in result.stdout + result.stderr


def test_cluster_up_real_serves_and_stops_everything_on_sigint(tmp_path: Path) -> None:
    require_assets()
    kueue_certs_before = Path("/etc/kueue").exists()  # another control plane may be running beside this test
    state = tmp_path / "state"
    kubeconfig = tmp_path / "kubeconfig"
    proc = subprocess.Popen(
        [*CLI, "cluster", "up", "--control-plane", "real", "--kubeconfig", str(kubeconfig), "--state-dir", str(state)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("real control plane ready: "), line + (proc.stderr.read() if proc.poll() else "")
        assert f"kubeconfig={kubeconfig}" in line and "nodes=3" in line
        assert ": this machine, node agent; 2 kwok: emulated)" in line
        assert oct(kubeconfig.stat().st_mode & 0o777) == "0o600"
        running = _programs_of(state)
        assert len(running) == 10, [p.info["cmdline"][0] for p in running]
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "real control plane stopped" in out
        eventually(lambda: not _programs_of(state), timeout_s=20, what="every program stopped")
        assert not kubeconfig.exists()
        assert Path("/etc/kueue").exists() == kueue_certs_before
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_programs_die_with_a_sigkilled_parent(tmp_path: Path) -> None:
    require_assets()
    kueue_certs_before = Path("/etc/kueue").exists()
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [*CLI, "cluster", "up", "--control-plane", "real", "--state-dir", str(state)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("real control plane ready: ")
    assert len(_programs_of(state)) == 10
    proc.kill()
    proc.wait()
    eventually(lambda: not _programs_of(state), timeout_s=20, what="no program outlives its SIGKILLed parent")
    if not kueue_certs_before:  # a SIGKILLed parent cannot remove what it placed for Kueue; this test does
        shutil.rmtree("/etc/kueue", ignore_errors=True)
