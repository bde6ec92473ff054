"""`images build` without a usable tool, with a bad --only, and the tool detection rules (a docker client without an
engine is passed over; podman gets the machine's containers.conf)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.images.build import plan
from harness.images.tools import TIMED_OUT, detect, run_captured


def _fake(bin_dir: Path, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _images(args: list[str], path: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "images", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_no_tool_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake(bin_dir, "docker", "echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock.' >&2; exit 1")
    done = _images(["build"], str(bin_dir), tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr == (
        "k8s-ai-bench: error: images build: no usable container tool (docker: client found but no engine answers "
        "(Cannot connect to the Docker daemon at unix:///var/run/docker.sock.); podman: not installed; buildah: not "
        "installed); install podman or buildah, or start a docker engine\n"
    )
    assert "Traceback" not in done.stdout + done.stderr


def test_named_tool_missing_is_exit_2(tmp_path: Path) -> None:
    done = _images(["build", "--tool", "buildah"], str(tmp_path), tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(
        "k8s-ai-bench: error: --tool buildah: no usable container tool (buildah: not installed)"
    )


def test_unknown_only_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"--only nosuch: not an image of the catalog \(ours: fio, net-tools"):
        plan("nosuch")
    owned, upstream = plan("docker.io/library/busybox:1.36.1")
    assert owned == [] and upstream == ["docker.io/library/busybox:1.36.1"]
    owned, upstream = plan("fio")
    assert [o.name for o in owned] == ["fio"] and upstream == []


def test_podman_gets_runc_and_ulimits_it_can_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake(bin_dir, "podman", "exit 0")
    _fake(bin_dir, "runc", "exit 0")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CONTAINERS_CONF", raising=False)
    tool = detect()
    assert tool.name == "podman"
    conf = Path(tool.env["CONTAINERS_CONF"]).read_text()
    assert 'runtime = "runc"' in conf and 'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]' in conf
    args = tool.build_args(ref="r:1", context=tmp_path, build_args={"BASE_IMAGE": "b:1"}, volumes=["/a:/a:ro"])
    assert args[:5] == ["build", "-t", "r:1", "-f", str(tmp_path / "Dockerfile")]
    assert args[5:7] == ["-v", "/a:/a:ro"] and "--build-arg" in args and "BASE_IMAGE=b:1" in args
    assert "nproc=1024:1024" in args and args[-1] == str(tmp_path)
    assert args[args.index("--network") + 1] == "host"  # no CNI bridge in a private range for RUN steps


FAKE_PODMAN = r"""
echo "$*" >> "$FAKE_LOG"
if [ "$1" = push ]; then
  # podman push --digestfile FILE REF: the registry's manifest digest goes to FILE
  printf 'sha256:%064d' 7 > "$3"
fi
exit 0
"""


def test_push_builds_ours_and_mirrors_upstream_under_the_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command sequence `images build --push` gives the tool (a recording stand-in for podman: no registry
    can be reached here), and the digests it reports."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake(bin_dir, "podman", FAKE_PODMAN)
    log = tmp_path / "calls"
    env_path = f"{bin_dir}:/usr/bin:/bin"
    monkeypatch.setenv("FAKE_LOG", str(log))
    ours = _images(["build", "--tool", "podman", "--only", "fio", "--push", "mirror.lan:5000"], env_path, tmp_path)
    upstream = _images(
        ["build", "--tool", "podman", "--only", "docker.io/library/busybox:1.36.1", "--push", "mirror.lan:5000"],
        env_path,
        tmp_path,
    )
    digest = "sha256:" + "0" * 63 + "7"
    assert ours.returncode == 0, ours.stdout + ours.stderr
    assert f"pushed   mirror.lan:5000/k8s-ai-bench/fio:3.33-bookworm {digest} (" in ours.stdout
    assert upstream.returncode == 0, upstream.stdout + upstream.stderr
    assert (
        f"mirrored mirror.lan:5000/library/busybox:1.36.1 {digest} (from docker.io/library/busybox:1.36.1"
        in upstream.stdout
    )
    assert "now run with --image-registry mirror.lan:5000" in upstream.stdout
    calls = [line.split() for line in log.read_text().splitlines()]
    assert calls[0][:3] == ["build", "-t", "ghcr.io/k8s-ai-bench/fio:3.33-bookworm"]
    assert calls[1] == [
        "tag",
        "ghcr.io/k8s-ai-bench/fio:3.33-bookworm",
        "mirror.lan:5000/k8s-ai-bench/fio:3.33-bookworm",
    ]
    assert calls[2][0] == "push" and calls[2][-1] == "mirror.lan:5000/k8s-ai-bench/fio:3.33-bookworm"
    assert calls[3] == ["pull", "docker.io/library/busybox:1.36.1"]
    assert calls[4] == ["tag", "docker.io/library/busybox:1.36.1", "mirror.lan:5000/library/busybox:1.36.1"]
    assert calls[5][-1] == "mirror.lan:5000/library/busybox:1.36.1"


def test_a_build_command_past_its_limit_is_a_failed_command_not_a_traceback() -> None:
    """A build, pull, push, debootstrap or tar that runs past its limit is killed and reported like a failed
    command (its output so far, then why), so `images build` reports that image failed and goes on."""
    done = run_captured(["sh", "-c", "echo started; sleep 5"], timeout_s=0.5)
    assert done.returncode == TIMED_OUT
    assert (done.stdout, done.stderr) == ("started\n", "sh: timed out after 0.5 s")
