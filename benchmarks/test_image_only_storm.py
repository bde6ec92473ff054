"""An image-only Deployment (``kubectl create deployment web --image=nginx``) must not make a pod storm.

The embedded target cannot pull images; a container with an image and no command used to fail its pod at once,
and the ReplicaSet controller replaced it without limit (about 1,000 pods in 8 s, the server's CPU pinned). Kube
keeps such a pod Pending in CreateContainerError and retries with back-off. The issue's bar: one replica for 60 s
-> at most a handful of pods ever created, server CPU under 5 %.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from kubernetes import client, watch
from support import ServerProcess, new_namespace

WINDOW_S = float(os.environ.get("AIBENCH_STORM_WINDOW_S", "60"))
MAX_PODS = 3
MAX_SERVER_CPU = 0.05


def test_image_only_deployment_makes_no_pod_storm(benchmark, start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(None)  # this machine as the node: the kubelet is the one that cannot pull
    api = server.api_client()
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    namespace = new_namespace(core, "bench-storm")
    seen: set[str] = set()
    stop = threading.Event()

    def count() -> None:
        w = watch.Watch()
        for event in w.stream(core.list_namespaced_pod, namespace, timeout_seconds=int(WINDOW_S) + 30):
            if event["type"] == "ADDED":
                seen.add(event["object"].metadata.uid)
            if stop.is_set():
                w.stop()

    watcher = threading.Thread(target=count, daemon=True)
    watcher.start()
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "docker.io/library/nginx:1.27.3"}]},
            },
        },
    }
    cpu0, t0 = server.cpu_seconds(), time.monotonic()

    def run() -> None:
        apps.create_namespaced_deployment(namespace, deployment)
        time.sleep(WINDOW_S)

    benchmark.pedantic(run, rounds=1, iterations=1)
    cpu_share = (server.cpu_seconds() - cpu0) / (time.monotonic() - t0)
    stop.set()
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "wake-the-watch"}})
    pods = core.list_namespaced_pod(namespace).items
    waiting = pods[0].status.container_statuses[0].state.waiting if pods and pods[0].status.container_statuses else None
    benchmark.extra_info.update(window_s=WINDOW_S, pods_ever_created=len(seen), server_cpu_share=round(cpu_share, 4))
    assert len(seen) <= MAX_PODS, f"{len(seen)} pods created in {WINDOW_S:g} s"
    assert cpu_share < MAX_SERVER_CPU, f"server CPU {cpu_share:.1%} of one core"
    assert len(pods) == 1 and pods[0].status.phase == "Pending"
    assert waiting is not None and waiting.reason == "CreateContainerError"
