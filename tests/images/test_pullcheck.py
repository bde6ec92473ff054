"""The image pull preflight: which images the selected tests need, how a probe pod's status and the kubelet's
events are read, the lines it prints, and its run on an embedded API server.

No node of this machine pulls images (the embedded target runs containers as host processes), so a real failing
pull cannot happen here. The seam is honest and narrow: a Node registered through the API that no kubelet serves,
and the test itself playing that node's kubelet -- writing the container status and Events a real kubelet writes,
with message texts copied from real kubelet/containerd reports (sources beside each). Everything else (the probe
pods, the polling, the classification, the namespace clean-up) runs unchanged against the embedded API server.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from harness.images import pullcheck
from harness.images.pullcheck import Report, classify, needed_images, node_classes, preflight, workloads_of

SUITES = Path(__file__).resolve().parents[2] / "suites"
FIO = "ghcr.io/k8s-ai-bench/fio:3.33-bookworm"
S3BENCH = "ghcr.io/k8s-ai-bench/s3bench:1.0.0-minio7.2.20"
# containerd's NotFound for a tag that does not exist, as kubelet reports it (format of kubernetes-sigs/
# nfs-ganesha-server-and-external-provisioner#125 and sympozium-ai/sympozium#5, image name ours)
NOT_FOUND = (
    f'rpc error: code = NotFound desc = failed to pull and unpack image "{FIO}": failed to resolve reference '
    f'"{FIO}": {FIO}: not found'
)
# ghcr.io refusing an anonymous token for a private or missing package (format of nloui/paperless-mcp#10)
FORBIDDEN = (
    f'failed to pull and unpack image "{FIO}": failed to resolve reference "{FIO}": failed to authorize: failed to '
    "fetch anonymous token: unexpected status from GET request to "
    "https://ghcr.io/token?scope=repository%3Ak8s-ai-bench%2Ffio%3Apull&service=ghcr.io: 403 Forbidden"
)
# kubelet's InvalidImageName (format of cloudfoundry-incubator/kubecf#63)
BAD_REF = "/k8s-ai-bench/fio:3.33"
INVALID = (
    f'Failed to apply default image tag "{BAD_REF}": couldn\'t parse image reference "{BAD_REF}": '
    "invalid reference format"
)


def _pod(*, waiting: tuple[str, str] | None = None, running: bool = False, phase: str = "Pending") -> client.V1Pod:
    state = client.V1ContainerState(
        waiting=client.V1ContainerStateWaiting(reason=waiting[0], message=waiting[1]) if waiting else None,
        running=client.V1ContainerStateRunning() if running else None,
    )
    status = client.V1ContainerStatus(name="pull", image=FIO, image_id="", ready=False, restart_count=0, state=state)
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name="p"), status=client.V1PodStatus(phase=phase, container_statuses=[status])
    )


def _event(reason: str, message: str, *, at: int = 0) -> client.CoreV1Event:
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=at)
    return client.CoreV1Event(
        metadata=client.V1ObjectMeta(name=f"p.{at}"),
        involved_object=client.V1ObjectReference(kind="Pod", name="p"),
        reason=reason,
        message=message,
        last_timestamp=when,
    )


def test_err_image_pull_keeps_the_registry_answer_from_the_failed_event() -> None:
    events = [
        _event("Pulling", f'Pulling image "{FIO}"', at=0),
        _event("Failed", f'Failed to pull image "{FIO}": {NOT_FOUND}', at=1),
        _event("Failed", "Error: ErrImagePull", at=2),
    ]
    state, reason, message = classify(_pod(waiting=("ErrImagePull", NOT_FOUND)), events)
    assert (state, reason) == ("failed", "ErrImagePull")
    assert message == f'Failed to pull image "{FIO}": {NOT_FOUND}'


def test_back_off_says_why_the_earlier_pull_failed_not_just_back_off() -> None:
    events = [
        _event("Failed", f'Failed to pull image "{FIO}": {FORBIDDEN}', at=1),
        _event("Failed", "Error: ErrImagePull", at=2),
        _event("BackOff", f'Back-off pulling image "{FIO}"', at=3),
        _event("Failed", "Error: ImagePullBackOff", at=4),
    ]
    state, reason, message = classify(_pod(waiting=("ImagePullBackOff", f'Back-off pulling image "{FIO}"')), events)
    assert (state, reason) == ("failed", "ImagePullBackOff")
    assert "403 Forbidden" in message and message.startswith("Failed to pull image")


def test_back_off_without_events_falls_back_to_the_waiting_message() -> None:
    state, reason, message = classify(_pod(waiting=("ImagePullBackOff", f'Back-off pulling image "{FIO}"')), [])
    assert (state, reason, message) == ("failed", "ImagePullBackOff", f'Back-off pulling image "{FIO}"')


def test_invalid_image_name() -> None:
    events = [_event("InspectFailed", INVALID), _event("Failed", "Error: InvalidImageName", at=1)]
    state, reason, message = classify(_pod(waiting=("InvalidImageName", INVALID)), events)
    assert (state, reason, message) == ("failed", "InvalidImageName", INVALID)


@pytest.mark.parametrize(
    ("pod", "events", "want"),
    [
        (_pod(running=True, phase="Running"), [], "pulled"),
        (_pod(waiting=("ContainerCreating", "")), [_event("Pulling", f'Pulling image "{FIO}"')], "pending"),
        # the image was pulled; what failed afterwards is not the preflight's business
        (
            _pod(waiting=("CreateContainerConfigError", "container has runAsNonRoot and image will run as root")),
            [],
            "pulled",
        ),
        (
            _pod(waiting=("ContainerCreating", "")),
            [_event("Pulled", f'Container image "{FIO}" already present')],
            "pulled",
        ),
    ],
)
def test_states_that_are_not_pull_failures(pod: client.V1Pod, events: list[Any], want: str) -> None:
    assert classify(pod, events)[0] == want


def test_failure_line_names_image_node_error_and_remedy() -> None:
    result = pullcheck.PullResult(
        image=FIO,
        node="gpu-1",
        node_class="amd64/linux nodegroup=gpu",
        state="failed",
        reason="ErrImagePull",
        message=NOT_FOUND,
    )
    line = result.line()
    assert line.startswith(f"image {FIO} cannot be pulled on node gpu-1 (amd64/linux nodegroup=gpu): ErrImagePull: ")
    assert NOT_FOUND in line
    assert line.endswith("remedy: k8s-ai-bench images build --push REGISTRY, then run with --image-registry REGISTRY")
    report = Report(applies=True, lines=["head", line], failed=1)
    assert report.failure() == f"image preflight: 1 image pull(s) failed\n  {line}"


def _node(
    name: str,
    *,
    runtime: str = "containerd://1.7.20",
    arch: str = "amd64",
    ready: bool = True,
    labels: dict[str, str] | None = None,
    gpus: str = "0",
) -> client.V1Node:
    return client.V1Node(
        metadata=client.V1ObjectMeta(
            name=name, labels={"kubernetes.io/arch": arch, "kubernetes.io/os": "linux", **(labels or {})}
        ),
        spec=client.V1NodeSpec(),
        status=client.V1NodeStatus(
            allocatable={"cpu": "8", "nvidia.com/gpu": gpus},
            conditions=[client.V1NodeCondition(type="Ready", status="True" if ready else "False")],
            node_info=client.V1NodeSystemInfo(
                architecture=arch,
                boot_id="",
                container_runtime_version=runtime,
                kernel_version="",
                kube_proxy_version="",
                kubelet_version="",
                machine_id="",
                operating_system="linux",
                os_image="",
                system_uuid="",
            ),
        ),
    )


def test_node_classes_group_by_arch_and_pool_and_leave_out_nodes_that_never_pull() -> None:
    nodes = [
        _node("cpu-a", labels={"eks.amazonaws.com/nodegroup": "cpu"}),
        _node("cpu-b", labels={"eks.amazonaws.com/nodegroup": "cpu"}),
        _node("gpu-a", labels={"eks.amazonaws.com/nodegroup": "gpu"}, gpus="8"),
        _node("arm-a", arch="arm64"),
        _node("host", runtime="aibench-process://0.1.0"),
        _node("emu-0", labels={"aibench.io/emulated": "true"}),
        _node("down", ready=False),
    ]
    classes, left_out = node_classes(nodes)
    assert [(c.key, c.node, sorted(c.accelerators)) for c in classes] == [
        ("arm64/linux", "arm-a", []),
        ("amd64/linux nodegroup=cpu", "cpu-a", []),
        ("amd64/linux nodegroup=gpu", "gpu-a", ["gpu"]),
    ]
    assert left_out == [
        "down: not ready or cordoned",
        "emu-0: emulated (scripted output), pulls nothing",
        "host: runs containers as host processes (aibench-process://0.1.0), never pulls images",
    ]


# ----------------------------------------------------------------------------- which images the suites need
class _Collector:
    def __init__(self) -> None:
        self.items: list[Any] = []

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.items = list(session.items)


@pytest.fixture(scope="module")
def suite_items() -> dict[str, Any]:
    """The real suites, collected as `run` collects them (no target: collection only)."""
    collector = _Collector()
    code = pytest.main(
        [
            str(SUITES),
            "-c",
            str(SUITES / "pytest.ini"),
            "--rootdir",
            str(SUITES),
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            # the harness's own tests share basenames with suite files (test_cni.py, test_topology.py...): in one
            # process, the default import mode finds those already imported under the same module name
            "--import-mode=importlib",
        ],
        plugins=[collector],
    )
    assert code == 0
    return {item.nodeid: item for item in collector.items}


def _names() -> frozenset[str]:
    from harness.catalog.spec import catalog_root

    return frozenset(p.parent.name for p in catalog_root().glob("*/workload.yaml"))


def _find(items: dict[str, Any], fragment: str) -> Any:
    matches = [item for nodeid, item in items.items() if re.search(fragment, nodeid)]
    assert matches, f"no collected test matches {fragment}"
    return matches[0]


@pytest.mark.parametrize(
    ("fragment", "want"),
    [
        # a literal in the test
        ("storage/test_fio.py::test_fio_matrix", {"fio"}),
        # a module constant (WORKLOAD = "s3-model-store")
        ("storage/test_s3_model_store.py::", {"s3-model-store"}),
        # the server by constant, the load generator through the `load` fixture -> harness.runners.load.WORKLOAD
        ("serving/test_inference_load.py::test_streaming_latency_and_goodput", {"inference-server", "inference-load"}),
        # a parametrize value naming the workload
        (r"compute/test_gpu_perf.py::test_gpu_benchmark\[.*cuda-gemm\]", {"cuda-gemm"}),
    ],
)
def test_workloads_of_real_suite_tests(suite_items: dict[str, Any], fragment: str, want: set[str]) -> None:
    found = workloads_of(_find(suite_items, fragment), _names())
    assert want <= found, found
    if "gpu_benchmark" in fragment:  # the other parametrized benchmarks are not this item's
        assert not {"cuda-membw", "cuda-pcie", "cuda-burn"} & found


def test_needed_images_skip_what_the_target_cannot_run(suite_items: dict[str, Any]) -> None:
    from harness.pytest_plugin import requirements_of

    items = [
        _find(suite_items, "storage/test_fio.py::test_fio_matrix"),
        _find(suite_items, r"test_gpu_benchmark\[.*cuda-gemm\]"),
    ]
    no_gpu = needed_images(
        items,
        missing=lambda req: "no GPU" if req.startswith("gpu") else None,
        requirements=requirements_of,
        image_registry=None,
    )
    assert set(no_gpu) == {FIO}
    everything = needed_images(
        items, missing=lambda req: None, requirements=requirements_of, image_registry="mirror.lan:5000"
    )
    assert set(everything) == {
        "mirror.lan:5000/k8s-ai-bench/fio:3.33-bookworm",
        "mirror.lan:5000/nvidia/pytorch:24.05-py3",
    }
    assert everything["mirror.lan:5000/nvidia/pytorch:24.05-py3"].accelerators == {"gpu"}
    assert everything["mirror.lan:5000/k8s-ai-bench/fio:3.33-bookworm"].accelerators == set()


# ----------------------------------------------------------------------------- on the embedded API server
@pytest.fixture
def unserved_node(api: client.ApiClient) -> Any:
    """A Node that no kubelet of the embedded target serves: its pods stay as the API server left them, for the
    test to play that node's kubelet."""
    core = client.CoreV1Api(api)
    name = "img-probe-node"
    node = _node(name, labels={"eks.amazonaws.com/nodegroup": "probe"})
    created = core.create_node(client.V1Node(metadata=node.metadata, spec=node.spec))
    assert created.metadata.name == name
    core.patch_node_status(name, {"status": api.sanitize_for_serialization(node.status)})
    yield name
    core.delete_node(name)


class _Kubelet(threading.Thread):
    """Plays the unserved node's kubelet: each probe pod bound to it gets what a kubelet writes for its image --
    a failed pull (status + Events with real message texts) or a running container."""

    def __init__(self, api: client.ApiClient, node: str, failing: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.core = client.CoreV1Api(api)
        self.node, self.failing = node, failing
        self.done: set[str] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + 30
        while not self.stop.is_set() and time.monotonic() < deadline:
            pods = self.core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={self.node}").items
            for pod in pods:
                if pod.metadata.uid in self.done:
                    continue
                self.done.add(pod.metadata.uid)
                self._serve(pod)
            time.sleep(0.1)

    def _serve(self, pod: client.V1Pod) -> None:
        ns, name, image = pod.metadata.namespace, pod.metadata.name, pod.spec.containers[0].image
        if image in self.failing:
            error = self.failing[image]
            self._event(pod, "Pulling", f'Pulling image "{image}"')
            self._event(pod, "Failed", f'Failed to pull image "{image}": {error}')
            self._event(pod, "Failed", "Error: ErrImagePull")
            state: dict[str, Any] = {"waiting": {"reason": "ErrImagePull", "message": error}}
        else:
            self._event(pod, "Pulled", f'Successfully pulled image "{image}" in 1.2s (1.2s including waiting)')
            state = {"running": {"startedAt": dt.datetime.now(dt.UTC).isoformat()}}
        status = {
            "phase": "Pending",
            "containerStatuses": [
                {"name": "pull", "image": image, "imageID": "", "ready": False, "restartCount": 0, "state": state}
            ],
        }
        self.core.patch_namespaced_pod_status(name, ns, {"status": status})

    def _event(self, pod: client.V1Pod, reason: str, message: str) -> None:
        now = dt.datetime.now(dt.UTC)
        self.core.create_namespaced_event(
            pod.metadata.namespace,
            client.CoreV1Event(
                metadata=client.V1ObjectMeta(generate_name=f"{pod.metadata.name}."),
                involved_object=client.V1ObjectReference(
                    kind="Pod", name=pod.metadata.name, namespace=pod.metadata.namespace, uid=pod.metadata.uid
                ),
                reason=reason,
                message=message,
                type="Warning" if reason == "Failed" else "Normal",
                first_timestamp=now,
                last_timestamp=now,
                source=client.V1EventSource(component="kubelet", host=self.node),
            ),
        )


def test_preflight_on_a_node_that_cannot_pull(
    api: client.ApiClient, unserved_node: str, suite_items: dict[str, Any]
) -> None:
    """End to end through the API: probe pods on the node of its class, the failing image reported with the
    kubelet's text and the remedy, the pulled one counted, the namespace gone afterwards."""
    from harness.pytest_plugin import requirements_of

    items = [_find(suite_items, "storage/test_fio.py::test_fio_matrix"), _find(suite_items, "test_s3_model_store.py::")]
    kubelet = _Kubelet(api, unserved_node, failing={FIO: NOT_FOUND})
    kubelet.start()
    try:
        # the host node (aibench-process://) is left out; only the unserved node forms a class
        report = preflight(
            api,
            items,
            missing=lambda req: None,
            requirements=requirements_of,
            image_registry=None,
            run_id="imgpre-1",
            wait_s=20,
        )
    finally:
        kubelet.stop.set()
        kubelet.join()
    assert report.applies and report.failed == 1, report.lines
    head, *rest = report.lines
    assert head.startswith("image preflight: 2 image(s) on 1 node class(es): 1 pulled, 1 failed, 0 still pulling")
    assert "runs containers as host processes" in head
    assert rest[0] == (
        f"image {FIO} cannot be pulled on node {unserved_node} (amd64/linux nodegroup=probe): ErrImagePull: "
        f'Failed to pull image "{FIO}": {NOT_FOUND} -- remedy: {pullcheck.REMEDY}'
    )
    assert rest[1] == f"image {S3BENCH} pulled on node {unserved_node} (amd64/linux nodegroup=probe)"
    core = client.CoreV1Api(api)
    left = core.list_namespace(label_selector="aibench.io/run-id=imgpre-1").items
    assert left == [], [n.metadata.name for n in left]


def test_preflight_still_pulling_is_said_not_failed(
    api: client.ApiClient, unserved_node: str, suite_items: dict[str, Any]
) -> None:
    """Nobody answers for the pod (a long pull): after the wait it is reported as still pulling, not as a failure."""
    from harness.pytest_plugin import requirements_of

    report = preflight(
        api,
        [_find(suite_items, "storage/test_fio.py::test_fio_matrix")],
        missing=lambda req: None,
        requirements=requirements_of,
        image_registry=None,
        run_id="imgpre-2",
        wait_s=2,
    )
    assert report.failed == 0
    assert report.lines[1] == (
        f"image {FIO} on node {unserved_node} (amd64/linux nodegroup=probe): still pulling after 2 s (not counted as "
        "a failure: the workload's own pull goes on)"
    )


def test_preflight_does_not_apply_on_the_embedded_target(api: client.ApiClient, suite_items: dict[str, Any]) -> None:
    from harness.pytest_plugin import requirements_of

    report = preflight(
        api,
        [_find(suite_items, "storage/test_fio.py::test_fio_matrix")],
        missing=lambda req: None,
        requirements=requirements_of,
        image_registry="127.0.0.1:9/nowhere",
        run_id="imgpre-3",
    )
    assert not report.applies and report.failed == 0
    assert len(report.lines) == 1
    assert report.lines[0].startswith("image preflight: does not apply here -- no node pulls images (")
    assert "runs containers as host processes (aibench-process://" in report.lines[0]


TRIVIAL_SUITE = '''
import pytest

@pytest.mark.compute
def test_trivial(run_workload):
    """The trivial Job, whose busybox image the run was told to take from a registry that does not exist."""
    run_workload("trivial-job")  # raises WorkloadFailed unless the Job succeeds
'''


def test_run_on_the_embedded_target_with_an_unpullable_registry(tmp_path: Path) -> None:
    """`run --image-registry` pointing nowhere: on the embedded target the preflight says it does not apply and
    why, fakes no pull, and the run goes on (the host-process node never pulls the image)."""
    suite = tmp_path / "suite_images.py"
    suite.write_text(TRIVIAL_SUITE)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            str(suite),
            "--reports-dir",
            str(tmp_path / "reports"),
            "--run-id",
            "img1",
            "--image-registry",
            "127.0.0.1:9/nowhere",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=tmp_path,
    )
    out = done.stdout + done.stderr
    assert "image preflight: does not apply here -- no node pulls images (" in out, out
    assert "aibench-process://" in out
    assert done.returncode == 0, out
    assert "k8s-ai-bench PASS: 1 passed" in out


def test_doctor_shows_the_preflight(tmp_path: Path) -> None:
    suite = tmp_path / "suite_images.py"
    suite.write_text(TRIVIAL_SUITE)
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "doctor", str(suite)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-2] == "1 of 1 tests will run on this target"
    assert lines[-1].startswith("image preflight: does not apply here -- no node pulls images (")
