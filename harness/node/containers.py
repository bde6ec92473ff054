"""What the node serves about its containers: their logs (read, or followed) and the running process exec enters.

Both the embedded API server (``pods/log``, ``pods/exec``) and the node agent's kubelet endpoints
(:mod:`harness.node.server`) answer from here. Logs live under ``<pods dir>/<uid>/logs/<container>.log``, the
previous instance's (after a restart) as ``<container>.previous.log``, as ``kubectl logs --previous`` expects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from harness.embedded import apierrors
from harness.embedded.podlogs import follow_log, read_log
from harness.embedded.runtime import ContainerProcess

__all__ = ["ContainerAccess", "container_log_path"]

#: (pod uid, container name) -> the container's process while it runs, else None
LiveProcess = Callable[[str, str], ContainerProcess | None]


def container_log_path(pod_dir: Path, container: str, previous: bool = False) -> Path:
    """Where the log of ``container`` in the pod whose directory is ``pod_dir`` is written."""
    return pod_dir / "logs" / (f"{container}.previous.log" if previous else f"{container}.log")


class ContainerAccess:
    """Logs and exec targets of the containers of the pods in ``pods_dir``."""

    def __init__(self, pods_dir: Path, *, live_process: LiveProcess, emulated_node: Callable[[str], bool]) -> None:
        self.pods_dir = pods_dir
        self._live_process = live_process
        self._emulated_node = emulated_node

    def log_path(self, pod: Mapping[str, Any], container: str, previous: bool = False) -> Path:
        return container_log_path(self.pods_dir / str(pod["metadata"]["uid"]), container, previous)

    def running_container(self, pod: dict[str, Any], container: str) -> ContainerProcess:
        """The running process of a container, for ``pods/exec`` (its mount namespace, cgroups and env)."""
        name = pod["metadata"]["name"]
        if self._emulated_node(pod["spec"].get("nodeName", "")):
            raise apierrors.bad_request(f"pod {name} runs on an emulated node: there is no process to exec into")
        proc = self._live_process(pod["metadata"]["uid"], container)
        if proc is None:
            raise apierrors.bad_request(
                f"unable to upgrade connection: container {container} not found or not running in pod {name}"
            )
        return proc

    def read(self, pod: dict[str, Any], container: str, query: Mapping[str, str]) -> bytes:
        """The log (``previous``, ``tailLines``, ``limitBytes``, ``sinceSeconds`` as the API takes them)."""
        path = self.log_path(pod, container, query.get("previous") in ("true", "1"))
        if not path.exists():
            statuses = (pod.get("status", {}).get("containerStatuses") or []) + (
                pod.get("status", {}).get("initContainerStatuses") or []
            )
            waiting = next(
                (s["state"]["waiting"] for s in statuses if s["name"] == container and "waiting" in s.get("state", {})),
                None,
            )
            if waiting is not None or not statuses:
                reason = (waiting or {}).get("reason", "ContainerCreating")
                raise apierrors.bad_request(
                    f'container "{container}" in pod "{pod["metadata"]["name"]}" is waiting to start: {reason}'
                )
            return b""
        return read_log(
            path,
            tail_lines=_opt_int(query, "tailLines"),
            limit_bytes=_opt_int(query, "limitBytes"),
            since_seconds=_opt_int(query, "sinceSeconds"),
        )

    def stream(self, pod: dict[str, Any], container: str, query: Mapping[str, str]) -> Iterator[bytes]:
        """The log followed until the container's process ends (``kubectl logs -f``)."""
        uid = pod["metadata"]["uid"]
        path = self.log_path(pod, container)

        def stop() -> bool:
            return self._live_process(uid, container) is None

        return follow_log(
            path, stop, tail_lines=_opt_int(query, "tailLines"), limit_bytes=_opt_int(query, "limitBytes")
        )


def _opt_int(query: Mapping[str, str], name: str) -> int | None:
    text = query.get(name)
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise apierrors.bad_request(f"invalid value for {name}: {text!r}") from None
