"""Workloads on the embedded target's host node: pods run as real local processes."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from eventually import eventually
from kubernetes import client
from kubernetes.client.rest import ApiException

from harness.embedded.cluster import EmbeddedCluster
from harness.podnet.ranges import on_this_machine

PY = sys.executable


def _job(name: str, command: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            **spec,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "python:3.11-slim", "command": command}],
                }
            },
        },
    }


def _pod(name: str, command: list[str], **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "python:3.11-slim", "command": command}
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [container], **spec},
    }


def _job_condition(batch: client.BatchV1Api, name: str, ns: str) -> str | None:
    job = batch.read_namespaced_job_status(name, ns)
    for cond in job.status.conditions or []:
        if cond.type in ("Complete", "Failed") and cond.status == "True":
            return cond.type
    return None


def _pods(core: client.CoreV1Api, ns: str, selector: str = "") -> list[client.V1Pod]:
    return core.list_namespaced_pod(ns, label_selector=selector).items


def test_job_runs_to_completion_and_logs_are_readable(api: client.ApiClient, ns: str) -> None:
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    batch.create_namespaced_job(ns, _job("hello", ["sh", "-c", "for i in 1 2 3; do echo line $i; done"]))
    assert eventually(lambda: _job_condition(batch, "hello", ns), what="job to finish") == "Complete"
    job = batch.read_namespaced_job("hello", ns)
    assert job.status.succeeded == 1 and job.status.completion_time is not None
    pod = _pods(core, ns, "job-name=hello")[0]
    assert pod.status.phase == "Succeeded"
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 0 and terminated.reason == "Completed"
    assert core.read_namespaced_pod_log(pod.metadata.name, ns) == "line 1\nline 2\nline 3\n"
    assert core.read_namespaced_pod_log(pod.metadata.name, ns, tail_lines=1) == "line 3\n"
    assert core.read_namespaced_pod_log(pod.metadata.name, ns, container="main", limit_bytes=4) == "line"
    assert on_this_machine(pod.status.pod_ip) and pod.spec.node_name == core.list_node().items[0].metadata.name


def test_indexed_job_parallelism_and_env(api: client.ApiClient, ns: str) -> None:
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    batch.create_namespaced_job(
        ns,
        _job(
            "idx",
            ["sh", "-c", "echo index=$JOB_COMPLETION_INDEX pod=$POD_NAME"],
            completions=3,
            parallelism=2,
            completionMode="Indexed",
        ),
    )
    job = batch.read_namespaced_job("idx", ns)
    job.spec.template.spec.containers[0].env = None  # (env is set through the template below)
    assert eventually(lambda: _job_condition(batch, "idx", ns), what="indexed job") == "Complete"
    logs = sorted(core.read_namespaced_pod_log(p.metadata.name, ns).split()[0] for p in _pods(core, ns, "job-name=idx"))
    assert logs == ["index=0", "index=1", "index=2"]
    assert batch.read_namespaced_job_status("idx", ns).status.completed_indexes == "0-2"


def test_failing_job_hits_backoff_limit(api: client.ApiClient, ns: str) -> None:
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job(ns, _job("fails", ["sh", "-c", "echo boom >&2; exit 3"], backoffLimit=1))
    assert eventually(lambda: _job_condition(batch, "fails", ns), what="job to fail") == "Failed"
    job = batch.read_namespaced_job_status("fails", ns)
    failed = next(c for c in job.status.conditions if c.type == "Failed")
    assert failed.reason == "BackoffLimitExceeded" and job.status.failed == 2


def test_downward_api_configmap_secret_env_and_volumes(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(
        ns,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cfg"), data={"mode": "fast", "app.conf": "threads=4\n"}),
    )
    core.create_namespaced_secret(
        ns, client.V1Secret(metadata=client.V1ObjectMeta(name="sec"), string_data={"token": "s3cret"})
    )
    script = (
        "echo $MY_POD $MY_NS $MODE $TOKEN $CPU_LIMIT; cat /etc/aibench/cfg/app.conf; cat /etc/aibench/sec/token; "
        "echo; echo hi > /scratch/x; cat /scratch/x"
    )
    pod = _pod(
        "env",
        ["sh", "-c", script],
        container={
            "env": [
                {"name": "MY_POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "MY_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "token"}}},
                {"name": "CPU_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
            ],
            "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
            "volumeMounts": [
                {"name": "cfg", "mountPath": "/etc/aibench/cfg"},
                {"name": "sec", "mountPath": "/etc/aibench/sec", "readOnly": True},
                {"name": "scratch", "mountPath": "/scratch"},
            ],
        },
        volumes=[
            {"name": "cfg", "configMap": {"name": "cfg"}},
            {"name": "sec", "secret": {"secretName": "sec"}},
            {"name": "scratch", "emptyDir": {}},
        ],
    )
    core.create_namespaced_pod(ns, pod)
    eventually(lambda: core.read_namespaced_pod("env", ns).status.phase in ("Succeeded", "Failed"), what="pod end")
    out = core.read_namespaced_pod_log("env", ns)
    final = core.read_namespaced_pod("env", ns)
    assert final.status.phase == "Succeeded", (out, final.status.container_statuses)
    assert out.splitlines() == [f"env {ns} fast s3cret 500", "threads=4", "s3cret", "hi"]


def test_missing_command_is_reported_like_a_runtime(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(ns, _pod("nocmd", ["definitely-not-a-command-aibench"]))
    pod = eventually(
        lambda: (p := core.read_namespaced_pod("nocmd", ns)).status.phase == "Failed" and p, what="pod to fail"
    )
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.reason == "ContainerCannotRun"
    assert "executable file not found in $PATH" in terminated.message
    events = core.list_namespaced_event(ns, field_selector="involvedObject.name=nocmd").items
    assert any(e.reason == "Failed" and "definitely-not-a-command-aibench" in e.message for e in events)


def test_init_containers_restart_policy_and_exit_codes(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    pod = _pod(
        "init",
        ["sh", "-c", "cat /work/ready; exit 2"],
        restartPolicy="OnFailure",
        initContainers=[
            {
                "name": "prep",
                "image": "busybox:1.36",
                "command": ["sh", "-c", "echo prepared > /work/ready"],
                "volumeMounts": [{"name": "work", "mountPath": "/work"}],
            }
        ],
        volumes=[{"name": "work", "emptyDir": {}}],
        container={"volumeMounts": [{"name": "work", "mountPath": "/work"}]},
    )
    core.create_namespaced_pod(ns, pod)

    def restarted() -> client.V1Pod | None:
        p = core.read_namespaced_pod("init", ns)
        statuses = p.status.container_statuses or []
        return p if statuses and statuses[0].restart_count >= 1 else None

    p = eventually(restarted, timeout_s=15, what="container restart")
    assert p.status.init_container_statuses[0].state.terminated.exit_code == 0
    assert p.status.container_statuses[0].last_state.terminated.exit_code == 2
    assert p.status.container_statuses[0].last_state.terminated.reason == "Error"
    assert core.read_namespaced_pod_log("init", ns, previous=True) == "prepared\n"


def test_a_volume_at_tmp_does_not_hide_the_sources_of_other_volumes(api: client.ApiClient, ns: str) -> None:
    """Pod directories live under the host's /tmp: mounting an emptyDir at /tmp first must not hide the rest
    (Ray mounts emptyDirs at both /tmp and /dev/shm)."""
    core = client.CoreV1Api(api)
    pod = _pod(
        "tmp-and-shm",
        ["sh", "-c", "echo a > /tmp/a && echo b > /dev/shm/b && cat /tmp/a /dev/shm/b"],
        volumes=[{"name": "tmp", "emptyDir": {}}, {"name": "shm", "emptyDir": {"medium": "Memory"}}],
        container={"volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "shm", "mountPath": "/dev/shm"}]},
    )
    core.create_namespaced_pod(ns, pod)
    done = eventually(
        lambda: core.read_namespaced_pod("tmp-and-shm", ns).status.phase in ("Succeeded", "Failed") or None,
        timeout_s=15,
        what="pod to finish",
    )
    assert done
    assert core.read_namespaced_pod("tmp-and-shm", ns).status.phase == "Succeeded"
    assert core.read_namespaced_pod_log("tmp-and-shm", ns) == "a\nb\n"


def test_a_volume_over_the_harness_environment_keeps_it_visible(api: client.ApiClient, ns: str) -> None:
    """A clone under /tmp puts the harness's venv under a pod's /tmp emptyDir: the environment pods run with
    (first on PATH) must still be there, with its packages."""
    covering = str(Path(sys.prefix).parent)
    core = client.CoreV1Api(api)
    pod = _pod(
        "covered-venv",
        ["python", "-c", "import sys, kubernetes; print(sys.prefix)"],
        volumes=[{"name": "cover", "emptyDir": {}}],
        container={"volumeMounts": [{"name": "cover", "mountPath": covering}]},
    )
    core.create_namespaced_pod(ns, pod)
    eventually(
        lambda: core.read_namespaced_pod("covered-venv", ns).status.phase in ("Succeeded", "Failed") or None,
        timeout_s=15,
        what="pod to finish",
    )
    log = core.read_namespaced_pod_log("covered-venv", ns)
    assert core.read_namespaced_pod("covered-venv", ns).status.phase == "Succeeded", log
    assert log.strip() == sys.prefix


def test_service_clusterip_forwards_and_names_resolve(api: client.ApiClient, ns: str) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    server = textwrap.dedent("""
        import http.server, os
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = os.environ["POD_NAME"].encode()
                self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
                self.wfile.write(body)
            def log_message(self, *a): pass
        http.server.HTTPServer((os.environ["POD_IP"], 8080), H).serve_forever()
    """)
    apps.create_namespaced_deployment(
        ns,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "web",
                                "image": "python:3.11-slim",
                                "command": [PY, "-c", server],
                                "ports": [{"name": "http", "containerPort": 8080}],
                                "env": [
                                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                                ],
                                "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
                            }
                        ]
                    },
                },
            },
        },
    )
    core.create_namespaced_service(
        ns,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
        },
    )
    eventually(
        lambda: (apps.read_namespaced_deployment_status("web", ns).status.ready_replicas or 0) == 2,
        timeout_s=20,
        what="2 ready replicas",
    )
    endpoints = eventually(
        lambda: (
            (ep := core.read_namespaced_endpoints("web", ns)).subsets and len(ep.subsets[0].addresses or []) == 2 and ep
        ),
        what="2 endpoints",
    )
    assert endpoints.subsets[0].ports[0].port == 8080
    client_script = textwrap.dedent(f"""
        import urllib.request
        seen = set()
        for url in ["http://web/", "http://web.{ns}/", "http://web.{ns}.svc.cluster.local/"] * 4:
            seen.add(urllib.request.urlopen(url, timeout=5).read().decode())
        print(len(seen))
    """)
    core.create_namespaced_pod(ns, _pod("client", [PY, "-c", client_script]))
    eventually(
        lambda: core.read_namespaced_pod("client", ns).status.phase in ("Succeeded", "Failed"),
        timeout_s=20,
        what="client pod",
    )
    log = core.read_namespaced_pod_log("client", ns)
    assert core.read_namespaced_pod("client", ns).status.phase == "Succeeded", log
    assert log.strip() == "2", "round robin over both ready endpoints"


def test_pvc_binds_and_block_mode_is_refused(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    core.create_namespaced_persistent_volume_claim(ns, claim)
    bound = eventually(
        lambda: (c := core.read_namespaced_persistent_volume_claim("data", ns)).status.phase == "Bound" and c,
        what="PVC bound",
    )
    assert bound.spec.storage_class_name == "local-path" and bound.status.capacity["storage"] == "1Gi"
    pv = core.read_persistent_volume(bound.spec.volume_name)
    assert pv.spec.claim_ref.name == "data" and pv.spec.access_modes == ["ReadWriteMany"]
    for name, text in (("writer", "echo model-bytes > /models/w.bin"), ("reader", "cat /models/w.bin")):
        core.create_namespaced_pod(
            ns,
            _pod(
                name,
                ["sh", "-c", text],
                volumes=[{"name": "m", "persistentVolumeClaim": {"claimName": "data"}}],
                container={"volumeMounts": [{"name": "m", "mountPath": "/models"}]},
            ),
        )
        eventually(lambda n=name: core.read_namespaced_pod(n, ns).status.phase == "Succeeded", what=name)
    assert core.read_namespaced_pod_log("reader", ns) == "model-bytes\n"
    block = dict(claim, metadata={"name": "raw"}, spec=dict(claim["spec"], volumeMode="Block"))
    core.create_namespaced_persistent_volume_claim(ns, block)
    event = eventually(
        lambda: [
            e
            for e in core.list_namespaced_event(ns).items
            if e.involved_object.name == "raw" and e.reason == "ProvisioningFailed"
        ],
        what="ProvisioningFailed event",
    )[0]
    assert "Block" in event.message
    assert core.read_namespaced_persistent_volume_claim("raw", ns).status.phase == "Pending"


def test_memory_limit_is_enforced_as_oomkilled(api: client.ApiClient, host_cluster: EmbeddedCluster, ns: str) -> None:
    if host_cluster.kubelets.runtime.limits not in ("cgroup-v1", "cgroup-v2"):
        pytest.skip(f"memory limits need cgroups; this host offers {host_cluster.kubelets.runtime.limits}")
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(
        ns,
        _pod(
            "hog",
            [PY, "-c", "x = bytearray(400 * 1024 * 1024); print(len(x))"],
            container={"resources": {"limits": {"memory": "64Mi"}}},
        ),
    )
    pod = eventually(
        lambda: (p := core.read_namespaced_pod("hog", ns)).status.phase == "Failed" and p, timeout_s=20, what="OOM kill"
    )
    assert pod.status.container_statuses[0].state.terminated.reason == "OOMKilled"
    assert "limits=cgroup" in pod.metadata.annotations["aibench.io/runtime"]


def test_running_pod_is_deleted_gracefully(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(ns, _pod("sleeper", ["sleep", "300"]))
    eventually(lambda: core.read_namespaced_pod("sleeper", ns).status.phase == "Running", what="running")
    core.delete_namespaced_pod("sleeper", ns, grace_period_seconds=5)

    def gone() -> bool:
        try:
            core.read_namespaced_pod("sleeper", ns)
        except ApiException as exc:
            return exc.status == 404
        return False

    eventually(gone, timeout_s=10, what="pod removal after SIGTERM")


def test_follow_logs_stream_until_the_container_exits(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(ns, _pod("ticker", ["sh", "-c", "for i in 1 2 3; do echo tick $i; sleep 0.2; done"]))
    eventually(lambda: core.read_namespaced_pod("ticker", ns).status.phase != "Pending", what="ticker started")
    stream = core.read_namespaced_pod_log("ticker", ns, follow=True, _preload_content=False)
    text = b"".join(stream.stream()).decode()
    assert text == "tick 1\ntick 2\ntick 3\n"


def test_liveness_probe_failure_restarts_the_container(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(
        ns,
        _pod(
            "unhealthy",
            ["sleep", "300"],
            restartPolicy="Always",
            container={
                "livenessProbe": {
                    "exec": {"command": ["sh", "-c", "exit 1"]},
                    "periodSeconds": 1,
                    "failureThreshold": 1,
                }
            },
        ),
    )
    pod = eventually(
        lambda: (
            (p := core.read_namespaced_pod("unhealthy", ns)).status.container_statuses
            and p.status.container_statuses[0].restart_count >= 1
            and p
        ),
        timeout_s=15,
        what="restart",
    )
    assert pod.status.container_statuses[0].last_state.terminated is not None
    events = core.list_namespaced_event(ns, field_selector="involvedObject.name=unhealthy").items
    assert any(e.reason == "Unhealthy" and "Liveness probe failed" in e.message for e in events)


def test_exec_runs_in_the_container_over_websocket(api: client.ApiClient, ns: str) -> None:
    from kubernetes.stream import stream

    core = client.CoreV1Api(api)
    core.create_namespaced_pod(
        ns,
        _pod(
            "shell",
            ["sleep", "300"],
            restartPolicy="Always",
            container={
                "env": [{"name": "GREETING", "value": "hello"}],
                "volumeMounts": [{"name": "scratch", "mountPath": "/data"}],
            },
            volumes=[{"name": "scratch", "emptyDir": {}}],
        ),
    )
    eventually(lambda: core.read_namespaced_pod("shell", ns).status.phase == "Running", what="running")
    out = stream(
        core.connect_get_namespaced_pod_exec,
        "shell",
        ns,
        command=["sh", "-c", "echo $GREETING; ls /data"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
    )
    assert out == "hello\n"
    resp = stream(
        core.connect_get_namespaced_pod_exec,
        "shell",
        ns,
        command=["sh", "-c", "exit 3"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    resp.run_forever(timeout=10)
    assert resp.returncode == 3
