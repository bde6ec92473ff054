"""observe_gpu_load against a Prometheus stand-in whose utilisation series follow a scripted load."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from harness.cluster.prometheus import Prometheus
from harness.observability.gpu_load import observe_gpu_load

STATE: dict[str, Any] = {"series": []}


def util(value: float, *, pod: str = "", gpu: str = "GPU-0") -> dict[str, Any]:
    labels = {"__name__": "DCGM_FI_DEV_GPU_UTIL", "UUID": gpu, "gpu": gpu[-1], "Hostname": "gpu-a-0"}
    if pod:
        labels |= {"pod": pod, "namespace": "ns", "container": "bench"}
    return {"metric": labels, "value": [time.time(), str(value)]}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": STATE["series"]}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def prometheus() -> Iterator[Prometheus]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Prometheus(f"http://127.0.0.1:{server.server_address[1]}")
    server.shutdown()
    server.server_close()


def scripted_run(*phases: list[dict[str, Any]], step_s: float = 0.3) -> Any:
    def run() -> str:
        for series in phases:
            STATE["series"] = series
            time.sleep(step_s)
        return "done"

    return run


def test_attributed_load_rises_and_falls(prometheus: Prometheus) -> None:
    STATE["series"] = [util(0), util(0, gpu="GPU-1")]
    result, seen = observe_gpu_load(
        prometheus,
        scripted_run([util(95, pod="cuda-burn-x1"), util(0, gpu="GPU-1")], [util(0), util(0, gpu="GPU-1")]),
        namespace="ns",
        pod_prefix="cuda-burn-",
        poll_s=0.05,
        settle_s=0.05,
    )
    assert result == "done"
    assert (seen.pod, seen.container, seen.node, seen.gpus) == ("cuda-burn-x1", "bench", "gpu-a-0", {"GPU-0"})
    assert (seen.idle_before, seen.under_load, seen.idle_after) == (0.0, 95.0, 0.0)
    assert seen.attribution_problems(container="bench") == []


def test_unattributed_rise_is_named(prometheus: Prometheus) -> None:
    STATE["series"] = [util(0)]
    _, seen = observe_gpu_load(
        prometheus, scripted_run([util(90)], [util(0)]), namespace="ns", pod_prefix="cuda-burn-", poll_s=0.05
    )
    (problem,) = seen.attribution_problems(container="bench")
    assert problem.startswith("DCGM_FI_DEV_GPU_UTIL rose on GPU-0 while the test pod ran, but no series carries")


def test_no_series_at_all_and_run_errors_propagate(prometheus: Prometheus) -> None:
    STATE["series"] = []
    _, seen = observe_gpu_load(prometheus, scripted_run([]), namespace="ns", pod_prefix="x-", poll_s=0.05)
    assert seen.attribution_problems(container="bench")[0].startswith("no DCGM_FI_DEV_GPU_UTIL series named")

    def failing() -> None:
        raise RuntimeError("the workload failed")

    with pytest.raises(RuntimeError, match="the workload failed"):
        observe_gpu_load(prometheus, failing, namespace="ns", pod_prefix="x-", poll_s=0.05)
