"""The real lane: Kubernetes v1.37.2 components, kwok nodes and the real operators, driven as the suite's
ServiceAccount through the harness's own helpers.

What each test proves is a behaviour of a real component the embedded target only imitates: RBAC and the
ValidatingAdmissionPolicy of ``deploy/rbac.yaml``, the real scheduler's taints and extended resources, the Job
controller, Kueue's quota admission, the JobSet, MPI Operator and KubeRay controllers' reconciliation.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eventually import eventually
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream as stream_exec
from real_lane import HOST_TOLERATION

from harness.cluster.forbidden import explain_forbidden
from harness.cluster.manifests import Applier
from harness.cluster.namespaces import run_labels
from harness.cluster.target import Connection
from harness.localkube.controlplane import CONTEXT_ADMIN
from harness.probes.kueue import dedicated_queue, gang_job, submit_gang
from harness.runners.custom import condition
from harness.runners.ray import scale_worker_group

BUSYBOX = "docker.io/library/busybox:1.36.1"
SETTLE_S = 90.0


@pytest.fixture
def namespace(lane: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace the suite's ServiceAccount creates (labelled as its own, as the admission policy requires)."""
    name = f"aibench-lane-{uuid.uuid4().hex[:8]}"
    labels = run_labels("lane", request.node.name)
    core = client.CoreV1Api(lane.suite)
    core.create_namespace({"metadata": {"name": name, "labels": labels}})
    try:
        yield name
    finally:
        core.delete_namespace(name)


def _labels(request: pytest.FixtureRequest) -> dict[str, str]:
    return run_labels("lane", request.node.name)


def host_pod(
    host: str,
    name: str,
    container: dict[str, Any],
    *,
    labels: dict[str, str] | None = None,
    restart: str | None = "Never",
    volumes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A one-container Pod for the lane's real node: pinned by its hostname label, tolerating the node agent's
    taint (``restart`` None leaves the default restartPolicy Always, for long-running pods)."""
    spec: dict[str, Any] = {
        "nodeSelector": {"kubernetes.io/hostname": host},
        "tolerations": [HOST_TOLERATION],
        "containers": [container],
    }
    if restart is not None:
        spec["restartPolicy"] = restart
    if volumes:
        spec["volumes"] = volumes
    metadata: dict[str, Any] = {"name": name, "labels": labels} if labels else {"name": name}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def test_the_components_are_the_pinned_release_and_kwok_nodes_are_ready(lane: Any) -> None:
    version = client.VersionApi(lane.suite).get_code()
    assert version.git_version == "v1.37.2"
    nodes = client.CoreV1Api(lane.suite).list_node().items
    assert sorted(n.metadata.name for n in nodes) == sorted(lane.cluster.node_names)
    assert len(nodes) == 9  # 8 kwok nodes and this machine
    for node in nodes:
        ready = [c for c in node.status.conditions if c.type == "Ready"]
        assert ready and ready[0].status == "True", node.metadata.name
        if node.metadata.name == lane.cluster.agent.name:
            assert node.metadata.labels["aibench.io/node-agent"] == "true"
            assert "aibench.io/emulated" not in node.metadata.labels
            continue
        assert node.metadata.labels["aibench.io/emulated"] == "true"
        assert node.metadata.annotations["kwok.x-k8s.io/node"] == "fake"
    assert set(lane.cluster.timings.marks) >= {"etcd", "kube-apiserver", "crds-established", "nodes-ready", "ready"}


def test_the_node_agent_runs_real_pods_under_the_real_scheduler(lane: Any, namespace: str) -> None:
    """This machine as a node: the real scheduler binds to it, the agent runs the command as a process, the status
    and Events reach the API server, logs come back through kube-apiserver's proxy to the agent's kubelet endpoint,
    and the node's Lease is renewed in kube-node-lease."""
    host = lane.cluster.agent.name
    core = client.CoreV1Api(lane.suite)
    command = ["sh", "-c", 'echo "pid $$ on $(hostname)"; echo to-stderr >&2; exit 3']
    pod = host_pod(host, "real", {"name": "main", "image": BUSYBOX, "command": command}, labels={"app": "real"})
    core.create_namespaced_pod(namespace, pod)

    def finished() -> client.V1Pod | None:
        got = core.read_namespaced_pod("real", namespace)
        return got if got.status.phase in ("Succeeded", "Failed") else None

    done = eventually(finished, timeout_s=SETTLE_S, what="the pod on the real node finished")
    assert done.spec.node_name == host
    assert done.status.phase == "Failed"  # exit 3 with restartPolicy Never, from a real process
    terminated = done.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 3 and terminated.reason == "Error"
    assert "aibench.io/emulated" not in (done.metadata.annotations or {})
    logs = core.read_namespaced_pod_log("real", namespace)
    assert logs.splitlines()[0].startswith("pid ") and "to-stderr" in logs
    events = core.list_namespaced_event(namespace, field_selector="involvedObject.name=real").items
    assert {"Scheduled", "Started"} <= {e.reason for e in events}
    assert any(e.source.component == "kubelet" and e.source.host == host for e in events if e.reason == "Started")
    lease = client.CoordinationV1Api(lane.admin).read_namespaced_lease(host, "kube-node-lease")
    assert lease.spec.holder_identity == host and lease.spec.renew_time is not None


def test_an_image_only_pod_on_the_real_node_waits_in_create_container_error(lane: Any, namespace: str) -> None:
    host = lane.cluster.agent.name
    core = client.CoreV1Api(lane.suite)
    core.create_namespaced_pod(
        namespace,
        host_pod(host, "image-only", {"name": "web", "image": "docker.io/library/nginx:1.27.3"}, restart=None),
    )

    def waiting() -> str:
        got = core.read_namespaced_pod("image-only", namespace)
        statuses = got.status.container_statuses or []
        state = statuses[0].state.waiting if statuses else None
        return state.message if state is not None and state.reason == "CreateContainerError" else ""

    message = eventually(waiting, timeout_s=SETTLE_S, what="CreateContainerError on the real node")
    assert "cannot pull images" in message
    assert core.read_namespaced_pod("image-only", namespace).status.phase == "Pending"


def test_suite_account_reads_cluster_facts_and_writes_only_its_own_namespaces(lane: Any, namespace: str) -> None:
    core = client.CoreV1Api(lane.suite)
    assert core.list_node().items
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "ok"}, "data": {"a": "b"}})
    with pytest.raises(ApiException) as outside:
        core.create_namespaced_config_map("default", {"metadata": {"name": "not-ours"}, "data": {"a": "b"}})
    assert outside.value.status == 403
    explained = explain_forbidden(outside.value) or ""
    assert "k8s-ai-bench-own-namespaces-only" in explained, explained
    with pytest.raises(ApiException) as unlabelled:
        core.create_namespace({"metadata": {"name": f"plain-{uuid.uuid4().hex[:6]}"}})
    assert unlabelled.value.status == 403
    with pytest.raises(ApiException) as secrets:
        core.list_namespaced_secret("kube-system")
    assert secrets.value.status == 403
    explained = explain_forbidden(secrets.value) or ""
    assert "list" in explained and "secrets" in explained and "deploy/rbac.yaml" in explained, explained


def test_real_scheduler_places_a_gpu_job_on_a_tainted_pool_and_the_job_controller_completes_it(
    lane: Any, namespace: str, request: pytest.FixtureRequest
) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "gpu"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    "containers": [{"name": "c", "image": BUSYBOX, "resources": {"limits": {"nvidia.com/gpu": "8"}}}],
                }
            },
        },
    }
    Applier(lane.suite).apply([job], namespace=namespace, labels=_labels(request))
    batch, core = client.BatchV1Api(lane.suite), client.CoreV1Api(lane.suite)
    done = eventually(
        lambda: batch.read_namespaced_job("gpu", namespace).status.succeeded == 1, timeout_s=SETTLE_S, what="Job gpu"
    )
    assert done
    pods = core.list_namespaced_pod(namespace, label_selector="batch.kubernetes.io/job-name=gpu").items
    assert len(pods) == 1 and pods[0].spec.node_name.startswith("h100-")


def test_kueue_admits_a_gang_that_fits_and_holds_back_one_that_does_not(
    lane: Any, namespace: str, request: pytest.FixtureRequest
) -> None:
    labels = _labels(request)
    outcomes: dict[str, Any] = {}
    for case, size, expect in (("fits", 3, True), ("too-big", 4, False)):
        name = f"{namespace}-{case}"
        suite = Connection(lane.suite)
        with dedicated_queue(suite, name=name, namespace=namespace, pods=3, labels=labels) as queue:
            outcomes[case] = submit_gang(
                suite,
                gang_job(name=f"gang-{case}", queue=queue, size=size, image=BUSYBOX),
                namespace=namespace,
                labels=labels,
                settle_s=SETTLE_S if expect else 20.0,
                expect_admission=expect,
            )
    assert outcomes["fits"].admitted and outcomes["fits"].running == 3, outcomes["fits"]
    assert not outcomes["too-big"].admitted and outcomes["too-big"].most_running == 0, outcomes["too-big"]
    workloads = client.CustomObjectsApi(lane.admin).list_namespaced_custom_object(
        "kueue.x-k8s.io", "v1beta2", namespace, "workloads"
    )["items"]
    assert workloads, "the real Kueue controller made no Workload for the gang Jobs"


def test_jobset_controller_runs_replicated_jobs_to_completed(
    lane: Any, namespace: str, request: pytest.FixtureRequest
) -> None:
    template = {
        "spec": {
            "parallelism": 2,
            "completions": 2,
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "tolerations": [{"key": "google.com/tpu", "operator": "Exists", "effect": "NoSchedule"}],
                    "nodeSelector": {"cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice"},
                    "containers": [{"name": "c", "image": BUSYBOX, "resources": {"limits": {"google.com/tpu": "4"}}}],
                }
            },
        }
    }
    jobset = {
        "apiVersion": "jobset.x-k8s.io/v1alpha2",
        "kind": "JobSet",
        "metadata": {"name": "slice"},
        "spec": {"replicatedJobs": [{"name": "workers", "replicas": 1, "template": template}]},
    }
    Applier(lane.suite).apply([jobset], namespace=namespace, labels=_labels(request))
    custom = client.CustomObjectsApi(lane.suite)

    def completed() -> Any:
        obj = custom.get_namespaced_custom_object("jobset.x-k8s.io", "v1alpha2", namespace, "jobsets", "slice")
        return condition(obj, "Completed")

    eventually(completed, timeout_s=SETTLE_S, what="JobSet slice Completed")
    jobs = client.BatchV1Api(lane.admin).list_namespaced_job(namespace).items  # the suite never lists Jobs
    assert [j.metadata.name for j in jobs] == ["slice-workers-0"]
    assert jobs[0].metadata.labels["jobset.sigs.k8s.io/jobset-name"] == "slice"


def test_mpi_operator_runs_an_mpijob_to_succeeded(lane: Any, namespace: str, request: pytest.FixtureRequest) -> None:
    def replica(count: int, gpus: int) -> dict[str, Any]:
        container: dict[str, Any] = {"name": "mpi", "image": "docker.io/mpioperator/openmpi:v0.6.0"}
        spec: dict[str, Any] = {"containers": [container]}
        if gpus:
            container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
            spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        return {"replicas": count, "template": {"spec": spec}}

    mpijob = {
        "apiVersion": "kubeflow.org/v2beta1",
        "kind": "MPIJob",
        "metadata": {"name": "allreduce"},
        "spec": {
            "slotsPerWorker": 8,
            "runPolicy": {"cleanPodPolicy": "Running"},
            "mpiReplicaSpecs": {"Launcher": replica(1, 0), "Worker": replica(2, 8)},
        },
    }
    Applier(lane.suite).apply([mpijob], namespace=namespace, labels=_labels(request))
    custom = client.CustomObjectsApi(lane.suite)

    def succeeded() -> Any:
        obj = custom.get_namespaced_custom_object("kubeflow.org", "v2beta1", namespace, "mpijobs", "allreduce")
        return condition(obj, "Succeeded")

    eventually(succeeded, timeout_s=SETTLE_S, what="MPIJob allreduce Succeeded")
    launcher = client.BatchV1Api(lane.suite).read_namespaced_job("allreduce-launcher", namespace)
    assert launcher.status.succeeded == 1


def test_kuberay_scales_a_worker_group(lane: Any, namespace: str, request: pytest.FixtureRequest) -> None:
    container = {"name": "ray", "image": "docker.io/rayproject/ray:2.52.0", "resources": {"limits": {"cpu": "1"}}}
    raycluster = {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": "rc"},
        "spec": {
            "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [container]}}},
            "workerGroupSpecs": [
                {
                    "groupName": "workers",
                    "replicas": 1,
                    "minReplicas": 0,
                    "maxReplicas": 3,
                    "rayStartParams": {},
                    "template": {"spec": {"containers": [{**container, "name": "ray-worker"}]}},
                }
            ],
        },
    }
    Applier(lane.suite).apply([raycluster], namespace=namespace, labels=_labels(request))
    first, _ = scale_worker_group(Connection(lane.suite), namespace, "rc", "workers", 1, timeout_s=SETTLE_S)
    scaled, _ = scale_worker_group(Connection(lane.suite), namespace, "rc", "workers", 3, timeout_s=SETTLE_S)
    assert len(first.names) == 1 and len(scaled.names) == 3
    assert set(first.names) <= set(scaled.names)


def test_node_join_adds_a_second_node_and_removes_it_on_ctrl_c(lane: Any, tmp_path: Any) -> None:
    """`k8s-ai-bench node join` against the lane's API server, as a user would join this machine to a cluster."""
    core = client.CoreV1Api(lane.admin)
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "harness.cli", "node", "join", "--kubeconfig", str(lane.cluster.kubeconfig_path),
            "--kube-context", CONTEXT_ADMIN, "--node-name", "joined", "--state-dir", str(tmp_path / "node"),
            "--host-network",  # the lane's own node holds this cluster's Service CIDR on this machine
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(f"node joined joined {CONTEXT_ADMIN}: kubelet endpoints on 127.0.0.1:"), line + (
            proc.stderr.read() if proc.poll() is not None else ""
        )
        node = core.read_node("joined")
        assert node.metadata.labels["aibench.io/node-agent"] == "true"
        assert [c.status for c in node.status.conditions if c.type == "Ready"] == ["True"]
        assert int(node.status.allocatable["cpu"]) == os.cpu_count()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "node joined left" in out
        with pytest.raises(ApiException) as gone:
            core.read_node("joined")
        assert gone.value.status == 404
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_local_path_provisioner_gives_a_real_volume_on_the_real_node(lane: Any, namespace: str) -> None:
    """Rancher's local-path provisioner (its release manifest, its program) binds a claim for a pod the real
    scheduler put on this machine: its helper pod runs on the node agent, the PV is a hostPath under the lane's
    state directory, the pod writes through it, and deleting the claim runs the teardown helper."""
    host = lane.cluster.agent.name
    core = client.CoreV1Api(lane.suite)
    core.create_namespaced_persistent_volume_claim(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    writer = {
        "name": "main",
        "image": BUSYBOX,
        "command": ["sh", "-c", "echo written > /data/proof && cat /data/proof"],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    core.create_namespaced_pod(namespace, host_pod(host, "writer", writer, volumes=volumes))

    def finished() -> str:
        pod = core.read_namespaced_pod("writer", namespace)
        return str(pod.status.phase) if pod.status.phase in ("Succeeded", "Failed") else ""

    assert eventually(finished, timeout_s=SETTLE_S, what="the writer pod finished") == "Succeeded"
    assert core.read_namespaced_pod_log("writer", namespace).strip() == "written"
    claim = core.read_namespaced_persistent_volume_claim("data", namespace)
    assert claim.spec.storage_class_name == "local-path" and claim.status.phase == "Bound"
    volume = client.CoreV1Api(lane.admin).read_persistent_volume(claim.spec.volume_name)
    path = Path(volume.spec.host_path.path)
    assert path.is_relative_to(lane.cluster.state_dir / "local-path")
    assert (path / "proof").read_text() == "written\n"
    terms = volume.spec.node_affinity.required.node_selector_terms
    assert terms[0].match_expressions[0].values == [host]
    core.delete_namespaced_pod("writer", namespace, grace_period_seconds=0)
    eventually(lambda: not core.list_namespaced_pod(namespace).items, timeout_s=SETTLE_S, what="writer gone")
    # the suite never deletes claims one by one (its namespace goes, and the claims with it): admin does it here
    client.CoreV1Api(lane.admin).delete_namespaced_persistent_volume_claim("data", namespace)
    eventually(lambda: not path.exists(), timeout_s=SETTLE_S, what="the teardown helper removed the volume")


def test_exec_cp_and_port_forward_reach_the_real_node_through_kube_apiserver(
    lane: Any, namespace: str, tmp_path: Path
) -> None:
    """kubectl -> kube-apiserver -> the node agent's SPDY endpoints: exec keeps stderr apart and returns the exit
    code, stdin streams in, `kubectl cp` works both ways (tar over exec), port-forward reaches the pod's port."""
    host = lane.cluster.agent.name
    kubectl = ["kubectl", f"--kubeconfig={lane.cluster.kubeconfig_path}", f"--context={CONTEXT_ADMIN}", "-n", namespace]
    server = {
        "name": "main",
        "image": "docker.io/library/python:3.11-slim",
        "command": ["python3", "-m", "http.server", "18999", "--bind", "0.0.0.0"],
        "readinessProbe": {"tcpSocket": {"port": 18999}, "periodSeconds": 1},
    }
    client.CoreV1Api(lane.suite).create_namespaced_pod(namespace, host_pod(host, "srv", server, restart=None))
    core = client.CoreV1Api(lane.suite)
    eventually(
        lambda: any(
            c.type == "Ready" and c.status == "True"
            for c in core.read_namespaced_pod("srv", namespace).status.conditions or []
        ),
        timeout_s=SETTLE_S,
        what="srv Ready on the real node",
    )

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*kubectl, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False)

    out = run("exec", "srv", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (out.returncode, out.stdout) == (3, "out\n")
    assert out.stderr.splitlines() == ["err", "command terminated with exit code 3"]
    assert run("exec", "-i", "srv", "--", "cat", stdin="through stdin\n").stdout == "through stdin\n"
    source = tmp_path / "in.txt"
    source.write_text("copied in\n")
    assert run("cp", str(source), f"{namespace}/srv:/tmp/in.txt").returncode == 0
    assert run("exec", "srv", "--", "cat", "/tmp/in.txt").stdout == "copied in\n"
    back = tmp_path / "back.txt"
    assert run("cp", f"{namespace}/srv:/tmp/in.txt", str(back)).returncode == 0
    assert back.read_text() == "copied in\n"
    forward = subprocess.Popen(
        [*kubectl, "port-forward", "pod/srv", ":18999"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert forward.stdout is not None
        line = forward.stdout.readline()  # Forwarding from 127.0.0.1:PORT -> 18999
        local = int(line.split("127.0.0.1:", 1)[1].split(" ", 1)[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=10) as response:
            assert response.status == 200
    finally:
        forward.send_signal(signal.SIGINT)
        forward.wait(timeout=10)


def test_a_pod_on_the_real_node_gets_a_bound_token_and_the_in_cluster_environment(lane: Any, namespace: str) -> None:
    """The node agent asks kube-apiserver for the pod's ServiceAccount token (TokenRequest bound to the pod) and
    gives the pod KUBERNETES_SERVICE_HOST/PORT: an in-cluster client in the pod authenticates as that account."""
    host = lane.cluster.agent.name
    core = client.CoreV1Api(lane.suite)
    script = (
        "from kubernetes import client, config\n"
        "config.load_incluster_config()\n"
        "review = client.AuthenticationV1Api().create_self_subject_review({'apiVersion': "
        "'authentication.k8s.io/v1', 'kind': 'SelfSubjectReview'})\n"
        "print('WHO', review.status.user_info.username)\n"
    )
    main = {"name": "main", "image": "docker.io/library/python:3.11-slim", "command": [sys.executable, "-c", script]}
    core.create_namespaced_pod(namespace, host_pod(host, "incluster", main))

    def finished() -> str:
        pod = core.read_namespaced_pod("incluster", namespace)
        return str(pod.status.phase) if pod.status.phase in ("Succeeded", "Failed") else ""

    phase = eventually(finished, timeout_s=SETTLE_S, what="the in-cluster client finished")
    log = core.read_namespaced_pod_log("incluster", namespace)
    assert phase == "Succeeded", log
    assert f"WHO system:serviceaccount:{namespace}:default" in log


def test_real_node_pods_get_the_pod_network_services_and_network_policy(lane: Any, namespace: str) -> None:
    """On the real control plane the node agent's pods live in network namespaces on the node's podCIDR: the real
    endpoints controller accepts their addresses, a ClusterIP from kube-apiserver's Service range reaches them from
    another pod and from the host, and a default-deny NetworkPolicy applied through kube-apiserver is enforced."""
    host = lane.cluster.agent.name
    core = client.CoreV1Api(lane.suite)
    server_script = (
        "import http.server\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200); self.end_headers(); self.wfile.write(b'real-node')\n"
        "http.server.HTTPServer(('0.0.0.0', 18080), H).serve_forever()\n"
    )

    def pod(name: str, labels: dict[str, str], command: list[str]) -> dict[str, Any]:
        main = {"name": "main", "image": "docker.io/library/python:3.11-slim", "command": command}
        return host_pod(host, name, main, labels=labels, restart=None)

    core.create_namespaced_pod(namespace, pod("web", {"app": "web"}, [sys.executable, "-c", server_script]))
    core.create_namespaced_pod(namespace, pod("client", {"app": "client"}, ["sleep", "3600"]))
    core.create_namespaced_service(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 18080}]},
        },
    )
    service_ip = core.read_namespaced_service("web", namespace).spec.cluster_ip
    assert ipaddress.ip_address(service_ip) in ipaddress.ip_network("198.19.128.0/17")

    def endpoint() -> str:
        try:  # the endpoints controller creates the object after it sees the Service: 404 until then
            endpoints = core.read_namespaced_endpoints("web", namespace)
        except ApiException as exc:
            if exc.status == 404:
                return ""
            raise
        addresses = [a.ip for s in endpoints.subsets or [] for a in s.addresses or []]
        return addresses[0] if addresses else ""

    pod_ip = eventually(endpoint, timeout_s=SETTLE_S, what="the real endpoints controller lists the web pod")
    assert ipaddress.ip_address(pod_ip) in ipaddress.ip_network("198.18.96.0/20")
    fetch = f"import urllib.request; print(urllib.request.urlopen('http://{service_ip}/', timeout=3).read().decode())"

    def from_client() -> str:
        pods = client.CoreV1Api(lane.admin)
        try:
            return str(
                stream_exec(
                    pods.connect_get_namespaced_pod_exec, "client", namespace,
                    command=[sys.executable, "-c", fetch], stderr=True, stdin=False, stdout=True, tty=False,
                )
            )  # fmt: skip
        except ApiException:
            return ""

    eventually(lambda: "real-node" in from_client(), timeout_s=SETTLE_S, what="the Service answers the client pod")
    with urllib.request.urlopen(f"http://{service_ip}/", timeout=5) as response:  # from the host, by nftables DNAT
        assert response.read() == b"real-node"
    client.NetworkingV1Api(lane.admin).create_namespaced_network_policy(
        namespace,
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "deny"},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]},
        },
    )
    eventually(lambda: "real-node" not in from_client(), timeout_s=SETTLE_S, what="default-deny enforced")
