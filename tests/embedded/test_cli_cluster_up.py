"""`k8s-ai-bench cluster up` as a user runs it: a foreground process that kubectl and the client can use."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from eventually import eventually
from kubernetes import client, config

CLI = [sys.executable, "-m", "harness.cli"]
KUBECTL = shutil.which("kubectl")

JOB = """\
apiVersion: batch/v1
kind: Job
metadata: {name: hello, namespace: demo}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - {name: main, image: "busybox:1.36", command: ["sh", "-c", "echo hello from $HOSTNAME"]}
"""


@pytest.fixture
def cluster_up(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    kubeconfig = tmp_path / "kubeconfig"
    # state under tmp_path: the SIGKILL test leaves it behind by design, and pytest's tmp_path clean-up takes it
    proc = subprocess.Popen(
        [*CLI, "cluster", "up", "--kubeconfig", str(kubeconfig), "--state-dir", str(tmp_path / "state")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "ready" in line and str(kubeconfig) in line, line + (proc.stderr.read() if proc.poll() else "")
        yield proc, kubeconfig
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # a clean stop removes what the cluster made
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    assert KUBECTL is not None
    done = subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"kubectl {' '.join(args)} failed: {done.stderr}"
    return done.stdout


def test_cluster_up_serves_client_and_stops_cleanly_on_sigint(cluster_up: tuple[subprocess.Popen[str], Path]) -> None:
    proc, kubeconfig = cluster_up
    api = config.new_client_from_config(config_file=str(kubeconfig))
    core = client.CoreV1Api(api)
    assert len(core.list_node().items) == 1
    core.create_namespaced_pod(
        "default",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "sleeper"},
            "spec": {"containers": [{"name": "s", "image": "busybox:1.36", "command": ["sleep", "300"]}]},
        },
    )
    eventually(lambda: core.read_namespaced_pod("sleeper", "default").status.phase == "Running", what="pod running")
    descendants = psutil.Process(proc.pid).children(recursive=True)
    assert any("sleep" in " ".join(p.cmdline()) for p in descendants)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    _, _ = proc.communicate(timeout=5)

    def left() -> list[psutil.Process]:
        return [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    # every pod process (the sleeper, system services) ends with the cluster; they get a moment to exit
    eventually(lambda: not left(), timeout_s=5, what="pod processes to end")
    assert not kubeconfig.exists(), "the kubeconfig of a stopped cluster is removed"


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on PATH")
def test_kubectl_works_unchanged(cluster_up: tuple[subprocess.Popen[str], Path], tmp_path: Path) -> None:
    _, kubeconfig = cluster_up
    resources = _kubectl(kubeconfig, "api-resources")
    for name in ("pods", "jobs", "deployments", "customresourcedefinitions", "networkpolicies", "priorityclasses"):
        assert f"\n{name} " in resources
    _kubectl(kubeconfig, "create", "ns", "demo")
    job = tmp_path / "job.yaml"
    job.write_text(JOB)
    assert "job.batch/hello created" in _kubectl(kubeconfig, "apply", "-f", str(job))
    eventually(lambda: "Complete" in _kubectl(kubeconfig, "get", "jobs", "-n", "demo"), what="job Complete")
    table = _kubectl(kubeconfig, "get", "pods", "-n", "demo", "-o", "wide")
    assert table.split("\n")[0].split()[:5] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    # a pod-network address (198.18.128.0/17) as root with nftables, else a loopback one (127.80.0.0/12)
    assert "Completed" in table and re.search(
        r"\b(127\.(8\d|9[0-5])\.\d+|198\.18\.(12[89]|1[3-9]\d|2\d\d))\.\d+\b", table
    ), table
    assert _kubectl(kubeconfig, "logs", "-n", "demo", "job/hello").startswith("hello from hello-")
    assert "unchanged" in _kubectl(kubeconfig, "apply", "-f", str(job))
    nodes = _kubectl(kubeconfig, "get", "nodes")
    assert nodes.split("\n")[1].split()[1] == "Ready"
    _kubectl(kubeconfig, "delete", "-f", str(job))
    _kubectl(kubeconfig, "delete", "ns", "demo")
    assert "demo" not in _kubectl(kubeconfig, "get", "ns")


def test_bad_spec_exits_2_with_file_and_key(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "apiVersion: aibench.io/v1\nkind: ClusterSpec\nnodePools:\n"
        "  - {name: a, count: 1, capacity: {cpu: '1', memory: 1Gi},"
        " taints: [{key: k, effect: Never}]}\n"
    )
    done = subprocess.run(
        [*CLI, "cluster", "up", "--spec", str(spec)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(spec) in lines[0] and "nodePools[0].taints[0].effect" in lines[0]
    assert "Traceback" not in done.stderr


def test_foreign_kubeconfig_is_never_overwritten(tmp_path: Path) -> None:
    mine = tmp_path / "config"
    mine.write_text("apiVersion: v1\nkind: Config\ncurrent-context: prod\n")
    done = subprocess.run(
        [*CLI, "cluster", "up", "--kubeconfig", str(mine)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2 and "refusing to overwrite" in done.stderr
    assert mine.read_text().endswith("current-context: prod\n")


def test_usage_errors_are_one_line_exit_2() -> None:
    done = subprocess.run(
        [*CLI, "cluster", "up", "--no-such-option"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "--no-such-option" in done.stderr


def test_pod_processes_die_with_a_killed_cluster(cluster_up: tuple[subprocess.Popen[str], Path]) -> None:
    proc, kubeconfig = cluster_up
    core = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
    # one as root, one as another user: a credential change clears PR_SET_PDEATHSIG, the launcher must set it again
    for name, security in (("orphan", {}), ("orphan-nobody", {"runAsUser": 65534})):
        core.create_namespaced_pod(
            "default",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name},
                "spec": {
                    "securityContext": security,
                    "containers": [{"name": "s", "image": "busybox:1.36", "command": ["sleep", "300"]}],
                },
            },
        )
        eventually(lambda n=name: core.read_namespaced_pod(n, "default").status.phase == "Running", what="pod running")
    sleepers = [p for p in psutil.Process(proc.pid).children(recursive=True) if "sleep" in " ".join(p.cmdline())]
    assert len(sleepers) == 2
    proc.kill()  # SIGKILL: no clean shutdown at all
    proc.wait(timeout=10)
    eventually(
        lambda: not [p for p in sleepers if p.is_running() and p.status() != psutil.STATUS_ZOMBIE],
        timeout_s=5,
        what="container processes to die with their cluster",
    )
    # The pod network of a SIGKILLed cluster (namespaces, links, its nftables table) outlives it by design until
    # the next pod network on this machine sweeps it; sweep now, and check that the sweep takes it all.
    from harness.podnet import host
    from harness.podnet.dataplane import unavailable_reason

    if unavailable_reason() is None:
        host.sweep()
        leftovers = [p.name for p in host.STATE_ROOT.iterdir()] if host.STATE_ROOT.is_dir() else []
        owners = [host.STATE_ROOT / name / "owner.json" for name in leftovers]
        assert not any(f'"pid": {proc.pid},' in o.read_text() for o in owners if o.exists())
