"""Run a command in a running pod, the same way on the embedded target and on real clusters (WebSocket exec)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from harness.cluster.forbidden import access_denied
from harness.errors import WaitTimeout, WorkloadFailed


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str


def exec_in_pod(
    api_client: client.ApiClient,
    namespace: str,
    pod: str,
    command: list[str],
    *,
    container: str | None = None,
    timeout_s: float = 60.0,
) -> ExecResult:
    """Run ``command`` to completion; a non-zero exit is returned, not raised (the caller judges it)."""
    core = client.CoreV1Api(api_client)
    kwargs = {"container": container} if container else {}
    try:
        resp = stream(
            core.connect_get_namespaced_pod_exec,
            pod,
            namespace,
            command=command,
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
            _preload_content=False,
            **kwargs,
        )
    except ApiException as exc:
        if denied := access_denied(exc, f"exec in pod {namespace}/{pod}"):
            raise denied from None
        raise WorkloadFailed(f"exec in pod {namespace}/{pod}: {exc.status} {_message(exc)}") from None
    try:
        resp.run_forever(timeout=timeout_s)
        if resp.is_open():
            raise WaitTimeout(f"exec {command!r} in pod {namespace}/{pod} did not finish within {timeout_s:g}s")
        code = resp.returncode
        return ExecResult(
            exit_code=code if code is not None else -1, stdout=resp.read_stdout(), stderr=resp.read_stderr()
        )
    finally:
        resp.close()


def _message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "").get("message", exc.reason))
    except (TypeError, ValueError):
        return str(exc.reason)
