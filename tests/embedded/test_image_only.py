"""A container with an image and no command, as `kubectl create deployment x --image=nginx` makes it.

The node runs container commands on the host and cannot pull images. Kube keeps such a pod Pending with the
container waiting (CreateContainerError) and retries with back-off; it never fails the pod, so no controller
replaces it. Before this behaviour the pod failed at once and the ReplicaSet controller made ~1,000 pods in 8 s.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from eventually import eventually
from kubernetes import client


def test_image_only_deployment_stays_one_pending_pod(api: client.ApiClient, kubeconfig: Path, ns: str) -> None:
    subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", "-n", ns, "create", "deployment", "web", "--image=nginx:1.27"],
        check=True,
        capture_output=True,
        timeout=30,
    )
    core = client.CoreV1Api(api)

    def waiting() -> client.V1Pod | None:
        pods = core.list_namespaced_pod(ns).items
        if len(pods) != 1 or not pods[0].status.container_statuses:
            return None
        state = pods[0].status.container_statuses[0].state
        return pods[0] if state.waiting is not None and state.waiting.reason == "CreateContainerError" else None

    pod = eventually(waiting, timeout_s=15, what="one pod waiting in CreateContainerError")
    time.sleep(3)  # long enough for a storm (the old behaviour made hundreds of pods per second)
    pods = core.list_namespaced_pod(ns).items
    assert [p.metadata.name for p in pods] == [pod.metadata.name]
    assert pods[0].status.phase == "Pending"
    waiting_state = pods[0].status.container_statuses[0].state.waiting
    assert "cannot pull images" in waiting_state.message and "nginx:1.27" in waiting_state.message
    events = core.list_namespaced_event(ns, field_selector=f"involvedObject.name={pod.metadata.name}").items
    failed = [e for e in events if e.reason == "Failed" and e.type == "Warning"]
    assert failed and "cannot pull images" in failed[0].message
    # back-off: 1 s doubling, so within ~3-4 s there are only a few attempts (kube counts them on one Event)
    assert 1 <= (failed[0].count or 1) <= 4
