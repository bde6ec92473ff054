"""``kubectl exec`` and ``kubectl cp`` against the embedded target, with the real kubectl (remote-command over
WebSocket, harness/embedded/remotecommand.py): stdin streamed, stderr apart, exit codes, tar both ways, a tty."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
pytestmark = pytest.mark.skipif(not os.access(KUBECTL, os.X_OK), reason="kubectl is not installed on this machine")


def kubectl(
    kubeconfig: Path, *args: str, stdin: bytes | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [KUBECTL, f"--kubeconfig={kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def pod(api: client.ApiClient, ns: str) -> Iterator[str]:
    core = client.CoreV1Api(api)
    body = {
        "metadata": {"name": "shell"},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "600"]}],
        },
    }
    core.create_namespaced_pod(ns, body)
    deadline = time.monotonic() + 30
    while core.read_namespaced_pod("shell", ns).status.phase != "Running":
        assert time.monotonic() < deadline, "pod never ran"
        time.sleep(0.1)
    yield "shell"


def test_stdout_and_stderr_stay_apart(kubeconfig: Path, ns: str, pod: str) -> None:
    done = kubectl(kubeconfig, "-n", ns, "exec", pod, "--", "sh", "-c", "echo out; echo err >&2")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"out\n"
    assert done.stderr == b"err\n"


def test_exit_code_reaches_kubectl(kubeconfig: Path, ns: str, pod: str) -> None:
    done = kubectl(kubeconfig, "-n", ns, "exec", pod, "--", "sh", "-c", "echo partial; exit 3")
    assert done.returncode == 3
    assert done.stdout == b"partial\n"
    assert b"command terminated with exit code 3" in done.stderr


def test_missing_executable_is_an_error_naming_it(kubeconfig: Path, ns: str, pod: str) -> None:
    done = kubectl(kubeconfig, "-n", ns, "exec", pod, "--", "no-such-command-aibench")
    assert done.returncode != 0
    assert b'exec: "no-such-command-aibench": executable file not found in $PATH' in done.stderr


def test_stdin_is_streamed_to_the_command(kubeconfig: Path, ns: str, pod: str, tmp_path: Path) -> None:
    payload = os.urandom(3 * 1024 * 1024)
    target = tmp_path / "received"
    done = kubectl(kubeconfig, "-n", ns, "exec", "-i", pod, "--", "sh", "-c", f"cat > {target}", stdin=payload)
    assert done.returncode == 0, done.stderr
    assert target.read_bytes() == payload
    echoed = kubectl(kubeconfig, "-n", ns, "exec", "-i", pod, "--", "wc", "-c", stdin=b"12345")
    assert echoed.stdout.strip() == b"5"


def test_output_is_streamed_not_buffered(kubeconfig: Path, ns: str, pod: str) -> None:
    """The first line reaches kubectl while the command still runs."""
    proc = subprocess.Popen(
        [
            KUBECTL,
            f"--kubeconfig={kubeconfig}",
            "-n",
            ns,
            "exec",
            pod,
            "--",
            "sh",
            "-c",
            "echo first; sleep 5; echo second",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        started = time.monotonic()
        assert proc.stdout.readline() == b"first\n"
        assert time.monotonic() - started < 4.0
    finally:
        proc.kill()
        proc.wait()


def test_cp_both_ways(kubeconfig: Path, ns: str, pod: str, tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("alpha\n")
    (source / "sub" / "blob.bin").write_bytes(os.urandom(512 * 1024))
    inside = tmp_path / "in-pod"
    inside.mkdir()
    up = kubectl(kubeconfig, "cp", str(source), f"{ns}/{pod}:{inside}/copy")
    assert up.returncode == 0, up.stderr
    assert (inside / "copy" / "a.txt").read_text() == "alpha\n"
    assert (inside / "copy" / "sub" / "blob.bin").read_bytes() == (source / "sub" / "blob.bin").read_bytes()
    back = tmp_path / "back"
    down = kubectl(kubeconfig, "cp", f"{ns}/{pod}:{inside}/copy", str(back))
    assert down.returncode == 0, down.stderr
    assert (back / "a.txt").read_text() == "alpha\n"
    assert (back / "sub" / "blob.bin").read_bytes() == (source / "sub" / "blob.bin").read_bytes()


@pytest.mark.skipif(shutil.which("script") is None, reason="util-linux script (to give kubectl a terminal) is missing")
def test_tty_session(kubeconfig: Path, ns: str, pod: str) -> None:
    command = f"{KUBECTL} --kubeconfig={kubeconfig} -n {ns} exec -it {pod} -- sh -c 'tty; exit 4'; echo rc=$?"
    done = subprocess.run(
        ["script", "-qec", command, "/dev/null"], capture_output=True, stdin=subprocess.DEVNULL, timeout=60, check=False
    )
    out = done.stdout.decode(errors="replace")
    assert "/dev/pts/" in out
    assert "command terminated with exit code 4" in out
    assert "rc=4" in out


def test_stderr_with_tty_is_refused(api: client.ApiClient, ns: str, pod: str) -> None:
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as refused:
        core.connect_get_namespaced_pod_exec(pod, ns, command=["true"], stderr=True, tty=True, stdout=True)
    assert refused.value.status == 400
    assert "stderr may not be requested with a tty" in str(refused.value.body)


def test_python_client_stream_gets_channels(api: client.ApiClient, ns: str, pod: str) -> None:
    """The official client's v4 stream() (no close signal) sees stdout and stderr on their own channels."""
    from kubernetes.stream import stream

    core = client.CoreV1Api(api)
    ws = stream(
        core.connect_get_namespaced_pod_exec,
        pod,
        ns,
        command=["sh", "-c", "echo o; echo e >&2; exit 2"],
        stdout=True,
        stderr=True,
        stdin=False,
        tty=False,
        _preload_content=False,
    )
    ws.run_forever(timeout=30)
    assert ws.read_stdout() == "o\n"
    assert ws.read_stderr() == "e\n"
    assert ws.returncode == 2
