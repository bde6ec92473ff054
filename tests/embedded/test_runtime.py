"""Tests for the embedded kubelet's container-process layer, with real processes."""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from harness.embedded.podlogs import follow_log, read_log
from harness.embedded.runtime import ContainerLaunch, Mount, ProcessRuntime

IS_ROOT = os.geteuid() == 0
PATH = "/usr/local/bin:/usr/bin:/bin"


@pytest.fixture(scope="module")
def runtime() -> Iterator[ProcessRuntime]:
    rt = ProcessRuntime()
    yield rt
    rt.close()


def _launch(tmp_path: Path, *argv: str, **overrides: object) -> ContainerLaunch:
    values: dict[str, object] = {
        "argv": argv,
        "env": {"PATH": PATH},
        "working_dir": None,
        "mounts": (),
        "hosts_file": None,
        "log_path": tmp_path / "logs" / "c.log",
        "memory_limit_bytes": None,
        "cpu_limit_millis": None,
        "cgroup_name": f"test_{uuid.uuid4().hex[:8]}",
    }
    values.update(overrides)
    return ContainerLaunch(**values)  # type: ignore[arg-type]


def _needs_namespace(runtime: ProcessRuntime) -> None:
    if runtime.isolation != "mount-namespace":
        pytest.skip("needs root and a working unshare(CLONE_NEWNS): runtime probed isolation='none'")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_gone(pids: list[int], timeout_s: float = 3.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while (alive := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return alive


def test_stdout_and_stderr_appended_binary_safe(runtime: ProcessRuntime, tmp_path: Path) -> None:
    launch = _launch(tmp_path, "sh", "-c", r"printf 'out\n'; printf 'err\n' >&2; printf '\000\377\n'")
    (tmp_path / "logs").mkdir()
    launch.log_path.write_bytes(b"previous\n")
    result = runtime.start(launch).wait(10)
    assert result is not None and result.reason == "Completed" and result.exit_code == 0
    assert launch.log_path.read_bytes() == b"previous\nout\nerr\n\x00\xff\n"


@pytest.mark.parametrize(
    ("script", "exit_code", "reason", "sig"),
    [("exit 0", 0, "Completed", None), ("exit 1", 1, "Error", None), ("kill -TERM $$", 143, "Error", 15)],
)
def test_exit_codes(
    runtime: ProcessRuntime, tmp_path: Path, script: str, exit_code: int, reason: str, sig: int | None
) -> None:
    proc = runtime.start(_launch(tmp_path, "sh", "-c", script))
    result = proc.wait(10)
    assert result is not None
    assert (result.exit_code, result.reason, result.signal) == (exit_code, reason, sig)
    assert result.finished_at >= proc.started_at
    assert proc.poll() is result


def test_missing_executable_is_container_cannot_run(runtime: ProcessRuntime, tmp_path: Path) -> None:
    proc = runtime.start(_launch(tmp_path, "no-such-command-aibench"))
    result = proc.poll()
    assert result is not None
    assert result.reason == "ContainerCannotRun"
    assert result.message == 'exec: "no-such-command-aibench": executable file not found in $PATH'
    assert result.exit_code == 128
    assert proc.pid is None
    absolute = runtime.start(_launch(tmp_path, "/no/such/binary")).poll()
    assert absolute is not None and absolute.reason == "ContainerCannotRun"
    assert absolute.message == 'exec: "/no/such/binary": stat /no/such/binary: no such file or directory'


def test_path_comes_from_launch_env(runtime: ProcessRuntime, tmp_path: Path) -> None:
    result = runtime.start(_launch(tmp_path, "sh", env={"PATH": str(tmp_path)})).poll()
    assert result is not None and result.reason == "ContainerCannotRun"


def test_env_and_working_dir(runtime: ProcessRuntime, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    launch = _launch(
        tmp_path,
        "sh",
        "-c",
        'echo "$GREETING"; pwd; echo "${HOME:-unset}"',
        env={"PATH": PATH, "GREETING": "hello pod"},
        working_dir=str(workdir),
    )
    result = runtime.start(launch).wait(10)
    assert result is not None and result.reason == "Completed"
    assert launch.log_path.read_text().splitlines() == ["hello pod", str(workdir), "unset"]


def test_missing_working_dir_cannot_run(runtime: ProcessRuntime, tmp_path: Path) -> None:
    result = runtime.start(_launch(tmp_path, "true", working_dir=str(tmp_path / "absent"))).poll()
    assert result is not None and result.reason == "ContainerCannotRun"
    assert "chdir to cwd" in result.message


def test_terminate_kills_process_tree(runtime: ProcessRuntime, tmp_path: Path) -> None:
    proc = runtime.start(_launch(tmp_path, "sh", "-c", "sleep 1000 & sleep 1000 & wait"))
    assert proc.pid is not None
    deadline = time.monotonic() + 5
    while len(children := psutil.Process(proc.pid).children(recursive=True)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    pids = [c.pid for c in children]
    assert len(pids) == 2
    result = proc.terminate(grace_s=5)
    assert result.signal == signal.SIGTERM and result.exit_code == 143
    assert _wait_gone([proc.pid, *pids]) == []


def test_terminate_escalates_to_sigkill(runtime: ProcessRuntime, tmp_path: Path) -> None:
    launch = _launch(tmp_path, "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done")
    proc = runtime.start(launch)
    deadline = time.monotonic() + 5
    while b"ready" not in read_log(launch.log_path) and time.monotonic() < deadline:
        time.sleep(0.02)
    started = time.monotonic()
    result = proc.terminate(grace_s=0.3)
    assert result.exit_code == 137 and result.signal == signal.SIGKILL
    assert time.monotonic() - started < 3


def test_leftover_processes_are_killed_when_main_exits(runtime: ProcessRuntime, tmp_path: Path) -> None:
    if runtime.limits not in ("cgroup-v1", "cgroup-v2") and runtime.isolation != "mount-namespace":
        pytest.skip("escaped daemons are found through cgroups or the mount namespace; neither is available")
    pid_file = tmp_path / "daemon.pid"
    script = f"setsid sh -c 'echo $$ > {pid_file}; exec sleep 1000' & while [ ! -s {pid_file} ]; do sleep 0.01; done"
    result = runtime.start(_launch(tmp_path, "sh", "-c", script)).wait(10)
    assert result is not None and result.reason == "Completed"
    assert _wait_gone([int(pid_file.read_text())]) == []


def test_without_namespace_mounts_fall_back_to_symlink_or_env(tmp_path: Path) -> None:
    rt = ProcessRuntime(isolation="none", limits="none")
    assert rt.describe()["isolation"] == "none"
    source = tmp_path / "vol"
    source.mkdir()
    (source / "f").write_text("data")
    link_target = tmp_path / "mnt" / "data"
    link_target.parent.mkdir()
    unreachable = f"/aibench-test-{uuid.uuid4().hex[:8]}/data"
    launch = _launch(
        tmp_path,
        "sh",
        "-c",
        f'cat {link_target}/f; echo; echo "$AIBENCH_MOUNT_AIBENCH_TEST_{unreachable[14:22].upper()}_DATA"',
        mounts=(Mount(source=source, target=str(link_target)), Mount(source=source, target=unreachable)),
    )
    proc = rt.start(launch)
    assert proc.mount_modes == {str(link_target): "symlink", unreachable: "env"}
    result = proc.wait(10)
    assert result is not None and result.reason == "Completed", launch.log_path.read_text()
    assert launch.log_path.read_text().splitlines() == ["data", str(source)]
    assert not link_target.is_symlink()
    assert not Path(unreachable).parent.exists()


def test_downgrade_only() -> None:
    with pytest.raises(ValueError, match="requested"):
        ProcessRuntime(limits="cgroup-v2" if ProcessRuntime().limits != "cgroup-v2" else "cgroup-v1")


# ---- root only: mount namespaces ---------------------------------------------------------------------------


@pytest.mark.skipif(not IS_ROOT, reason="needs root (euid 0) for mount namespaces")
def test_mount_at_new_top_level_path_is_private(runtime: ProcessRuntime, tmp_path: Path) -> None:
    _needs_namespace(runtime)
    source = tmp_path / "vol"
    source.mkdir()
    (source / "hello.txt").write_text("from volume")
    top = f"/aibench-test-{uuid.uuid4().hex[:10]}"
    nested = "/var/run/secrets/aibench-test.io/sa"
    launch = _launch(
        tmp_path,
        "sh",
        "-c",
        f"cat {top}/data/hello.txt; echo; cat {nested}/hello.txt; echo; pwd; ls /usr/bin/env; echo new > {top}/data/w",
        mounts=(Mount(source=source, target=f"{top}/data"), Mount(source=source, target=nested)),
        working_dir=f"{top}/data",
    )
    before = set(os.listdir("/"))
    proc = runtime.start(launch)
    assert proc.mount_modes == {f"{top}/data": "bind", nested: "bind"}
    assert not Path(top).exists()  # not even while it runs
    result = proc.wait(10)
    assert result is not None and result.reason == "Completed", launch.log_path.read_text()
    assert launch.log_path.read_text().splitlines() == ["from volume", "from volume", f"{top}/data", "/usr/bin/env"]
    assert (source / "w").read_text() == "new\n"  # writes go to the volume
    assert set(os.listdir("/")) == before
    assert not Path("/var/run/secrets/aibench-test.io").exists()
    # this container's staging directory is gone (other runtimes on the machine may have their own right now)
    assert proc.host_helper_paths and not [p for p in proc.host_helper_paths if p.exists()]


@pytest.mark.skipif(not IS_ROOT, reason="needs root (euid 0) for mount namespaces")
def test_read_only_mount_refuses_writes(runtime: ProcessRuntime, tmp_path: Path) -> None:
    _needs_namespace(runtime)
    source = tmp_path / "ro"
    source.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    launch = _launch(
        tmp_path,
        "sh",
        "-c",
        f"touch {target}/x 2>&1; echo rc=$?",
        mounts=(Mount(source=source, target=str(target), read_only=True),),
    )
    result = runtime.start(launch).wait(10)
    assert result is not None and result.reason == "Completed"
    log = launch.log_path.read_text()
    assert "Read-only file system" in log and "rc=1" in log
    assert list(source.iterdir()) == [] and list(target.iterdir()) == []


@pytest.mark.skipif(not IS_ROOT, reason="needs root (euid 0) for mount namespaces")
def test_hosts_file_replaces_etc_hosts_inside_only(runtime: ProcessRuntime, tmp_path: Path) -> None:
    _needs_namespace(runtime)
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.9\tmy-svc.default.svc.cluster.local my-svc\n")
    host_view = Path("/etc/hosts").read_bytes()
    launch = _launch(tmp_path, "cat", "/etc/hosts", hosts_file=hosts)
    result = runtime.start(launch).wait(10)
    assert result is not None and result.reason == "Completed"
    assert launch.log_path.read_text() == hosts.read_text()
    assert Path("/etc/hosts").read_bytes() == host_view


@pytest.mark.skipif(not IS_ROOT, reason="needs root (euid 0) for mount namespaces")
def test_exec_runs_inside_the_container(runtime: ProcessRuntime, tmp_path: Path) -> None:
    _needs_namespace(runtime)
    source = tmp_path / "vol"
    source.mkdir()
    (source / "marker").write_text("inside")
    target = f"/aibench-test-{uuid.uuid4().hex[:10]}"
    proc = runtime.start(_launch(tmp_path, "sleep", "30", mounts=(Mount(source=source, target=target),)))
    try:
        out = proc.run_exec(("cat", f"{target}/marker"), timeout_s=5)
        assert (out.exit_code, out.output, out.timed_out) == (0, b"inside", False)
        assert proc.exec_runner(("test", "-e", f"{target}/nope"), 5) == 1
        with pytest.raises(TimeoutError):
            proc.exec_runner(("sleep", "10"), 0.2)
    finally:
        proc.terminate(grace_s=1)


@pytest.mark.skipif(not IS_ROOT, reason="needs root (euid 0) for mount namespaces")
def test_mount_over_system_directory_is_refused(runtime: ProcessRuntime, tmp_path: Path) -> None:
    result = runtime.start(_launch(tmp_path, "true", mounts=(Mount(source=tmp_path, target="/usr"),))).poll()
    assert result is not None and result.reason == "ContainerCannotRun" and "/usr" in result.message


# ---- limits ------------------------------------------------------------------------------------------------


def test_memory_limit_oom_killed(runtime: ProcessRuntime, tmp_path: Path) -> None:
    if runtime.limits not in ("cgroup-v1", "cgroup-v2"):
        pytest.skip(f"needs a writable cgroup memory controller: runtime probed limits={runtime.limits!r}")
    launch = _launch(
        tmp_path,
        sys.executable,
        "-c",
        "import time; b = b'x' * (300 * 1024 * 1024); time.sleep(1); print('survived')",
        memory_limit_bytes=64 * 1024 * 1024,
    )
    result = runtime.start(launch).wait(30)
    assert result is not None
    assert result.reason == "OOMKilled" and result.exit_code == 137, launch.log_path.read_text()
    assert "survived" not in launch.log_path.read_text()


def test_cgroups_are_removed_after_exit(runtime: ProcessRuntime, tmp_path: Path) -> None:
    if runtime.limits not in ("cgroup-v1", "cgroup-v2"):
        pytest.skip(f"needs a writable cgroup memory controller: runtime probed limits={runtime.limits!r}")
    launch = _launch(tmp_path, "true", memory_limit_bytes=128 << 20, cpu_limit_millis=500)
    proc = runtime.start(launch)
    assert proc._cgroups is not None
    dirs = proc._cgroups.dirs
    if runtime.limits == "cgroup-v1" and len(dirs) > 1:
        assert (dirs[1] / "cpu.cfs_quota_us").read_text().strip() == "50000"
    assert proc.wait(10) is not None
    assert not any(d.exists() for d in dirs)


def test_container_starts_after_another_runtime_removed_the_shared_cgroup_base(tmp_path: Path) -> None:
    """Runtimes of one host share the ``aibench`` cgroup parent; one closing must not break another's next start."""
    first, second = ProcessRuntime(), ProcessRuntime()
    if first.limits not in ("cgroup-v1", "cgroup-v2"):
        pytest.skip(f"needs a writable cgroup memory controller: runtime probed limits={first.limits!r}")
    try:
        first.close()  # removes the (empty) shared base directories
        result = second.start(_launch(tmp_path, "true")).wait(5)
        assert result is not None
        assert (result.exit_code, result.reason) == (0, "Completed"), result.message
    finally:
        second.close()


def test_rlimit_fallback_limits_address_space(tmp_path: Path) -> None:
    rt = ProcessRuntime(limits="rlimit")
    assert "RLIMIT_AS" in rt.describe()["memory"]
    launch = _launch(
        tmp_path, sys.executable, "-c", "b = b'x' * (300 * 1024 * 1024)", memory_limit_bytes=128 * 1024 * 1024
    )
    result = rt.start(launch).wait(30)
    assert result is not None and result.reason == "Error" and result.exit_code == 1
    assert "MemoryError" in launch.log_path.read_text()


# ---- logs --------------------------------------------------------------------------------------------------


def test_read_log_tail_and_limit(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    assert read_log(log) == b""
    log.write_bytes(b"a\nb\nc\n")
    assert read_log(log, tail_lines=2) == b"b\nc\n"
    assert read_log(log, tail_lines=10) == b"a\nb\nc\n"
    assert read_log(log, tail_lines=0) == b""
    assert read_log(log, limit_bytes=3) == b"a\nb"
    assert read_log(log, tail_lines=1, limit_bytes=1) == b"c"
    log.write_bytes(b"a\nb\npartial")
    assert read_log(log, tail_lines=1) == b"partial"
    assert read_log(log, since_seconds=60) == b"a\nb\npartial"
    os.utime(log, (time.time() - 120, time.time() - 120))
    assert read_log(log, since_seconds=60) == b""


def test_follow_log_drains_after_stop(runtime: ProcessRuntime, tmp_path: Path) -> None:
    launch = _launch(tmp_path, "sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.05; done")
    proc = runtime.start(launch)
    chunks = list(follow_log(launch.log_path, lambda: proc.poll() is not None, poll_s=0.01))
    assert b"".join(chunks) == b"line1\nline2\nline3\n"
    assert b"".join(follow_log(launch.log_path, lambda: True, tail_lines=1)) == b"line3\n"
    assert b"".join(follow_log(launch.log_path, lambda: False, limit_bytes=4)) == b"line"
