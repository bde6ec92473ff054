"""Evidence of a run: pod status, container reasons, events and log tails, written under ``artifacts/``.

The same summary feeds :class:`WorkloadFailed` messages, so a JUnit message alone explains a failure
("Unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu", "OOMKilled").
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.cluster.fields import (
    annotations_of,
    container_state,
    container_statuses,
    metadata,
    name_of,
    pod_spec,
    pod_status,
)
from harness.cluster.forbidden import access_denied, explain_forbidden

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class PodSummary:
    name: str
    phase: str
    node: str
    reasons: tuple[str, ...]  # "main: OOMKilled (exit 137)", "Unschedulable: 0/3 nodes ..."
    emulated: bool


@dataclass(slots=True, kw_only=True)
class Evidence:
    pods: list[PodSummary] = field(default_factory=list)
    events: list[str] = field(default_factory=list)  # "Warning FailedScheduling pod/x: message"
    logs: dict[str, str] = field(default_factory=dict)  # "pod/container" -> tail

    def explain(self, *, max_events: int = 5, max_log_lines: int = 5) -> str:
        """The one paragraph a failure message carries."""
        parts = []
        for pod in self.pods:
            reasons = "; ".join(pod.reasons)
            parts.append(
                f"pod {pod.name} {pod.phase}{' on ' + pod.node if pod.node else ''}"
                + (f" ({reasons})" if reasons else "")
            )
        warnings = [e for e in self.events if e.startswith("Warning")][-max_events:]
        if warnings:
            parts.append("events: " + " | ".join(warnings))
        for key, text in self.logs.items():
            tail = [line for line in text.splitlines() if line.strip()][-max_log_lines:]
            if tail:
                parts.append(f"log {key}: " + " / ".join(tail))
        return "; ".join(parts) or "no pods or events were found"


def _pod_summary(pod: client.V1Pod) -> PodSummary:
    reasons: list[str] = []
    status = pod_status(pod)
    for cond in status.conditions or []:
        if cond.type == "PodScheduled" and cond.status == "False":
            reasons.append(f"{cond.reason}: {cond.message}")
    for cs in container_statuses(pod):
        state = container_state(cs)
        if state.waiting and state.waiting.reason not in (None, "ContainerCreating", "PodInitializing"):
            reasons.append(
                f"{cs.name}: {state.waiting.reason}" + (f" ({state.waiting.message})" if state.waiting.message else "")
            )
        if state.terminated and state.terminated.exit_code != 0:
            reasons.append(
                f"{cs.name}: {state.terminated.reason} (exit {state.terminated.exit_code})"
                + (f": {state.terminated.message}" if state.terminated.message else "")
            )
        if cs.restart_count:
            reasons.append(f"{cs.name}: {cs.restart_count} restart(s)")
    return PodSummary(
        name=name_of(pod),
        phase=status.phase or "Unknown",
        node=pod_spec(pod).node_name or "",
        reasons=tuple(reasons),
        emulated=annotations_of(pod).get("aibench.io/emulated") == "true",
    )


def gather(
    api_client: client.ApiClient, namespace: str, *, label_selector: str = "", with_logs: bool = True
) -> Evidence:
    """Read pods, events and log tails of a namespace (reads only; safe on failure paths)."""
    core = client.CoreV1Api(api_client)
    evidence = Evidence()
    try:
        pods = core.list_namespaced_pod(namespace, label_selector=label_selector).items
        events = core.list_namespaced_event(namespace).items
    except ApiException as exc:
        log.warning("cannot gather evidence from %s: %s", namespace, explain_forbidden(exc) or exc.reason)
        return evidence
    evidence.pods = [_pod_summary(p) for p in pods]
    events.sort(key=lambda e: str(e.last_timestamp or e.event_time or metadata(e).creation_timestamp or ""))
    evidence.events = [
        f"{e.type} {e.reason} {(e.involved_object.kind or '').lower()}/{e.involved_object.name}: {e.message}"
        for e in events
    ]
    if with_logs:
        for pod in pods:
            for cs in container_statuses(pod):
                if container_state(cs).waiting and not cs.restart_count:
                    continue
                try:
                    evidence.logs[f"{name_of(pod)}/{cs.name}"] = core.read_namespaced_pod_log(
                        name_of(pod), namespace, container=cs.name, tail_lines=LOG_TAIL_LINES
                    )
                except ApiException as exc:
                    log.log(logging.WARNING if exc.status == 403 else logging.DEBUG, "no log for %s/%s: %s",
                            name_of(pod), cs.name, explain_forbidden(exc) or exc.reason)  # fmt: skip
    return evidence


def write_artifacts(api_client: client.ApiClient, namespace: str, directory: Path, evidence: Evidence) -> None:
    """pods.json (full objects), events.txt, logs/<pod>_<container>.log under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    core = client.CoreV1Api(api_client)
    try:
        pods = core.list_namespaced_pod(namespace)
        (directory / "pods.json").write_text(json.dumps(api_client.sanitize_for_serialization(pods), indent=1))
    except ApiException as exc:
        log.warning("cannot save pods of %s: %s", namespace, explain_forbidden(exc) or exc.reason)
    (directory / "events.txt").write_text("\n".join(evidence.events) + ("\n" if evidence.events else ""))
    logs = directory / "logs"
    for key, text in evidence.logs.items():
        logs.mkdir(exist_ok=True)
        (logs / (key.replace("/", "_") + ".log")).write_text(text)


def pod_phases(pods: Iterable[client.V1Pod]) -> str:
    """``2 Running, 1 Pending`` (or ``none``): the pod part of every runner's timeout message."""
    phases: dict[str, int] = {}
    for pod in pods:
        phase = pod_status(pod).phase or "Unknown"
        phases[phase] = phases.get(phase, 0) + 1
    return ", ".join(f"{n} {phase}" for phase, n in sorted(phases.items())) or "none"


def container_logs(core: client.CoreV1Api, namespace: str, pod_names: Iterable[str]) -> dict[str, str]:
    """``pod/container`` -> log of every container; pods already gone (an operator's clean-up policy, a TTL) are
    skipped with a note in the harness log rather than failing a finished run."""
    logs: dict[str, str] = {}
    for name in pod_names:
        try:
            pod = core.read_namespaced_pod(name, namespace)
            for container in pod_spec(pod).containers:
                logs[f"{name}/{container.name}"] = core.read_namespaced_pod_log(
                    name, namespace, container=container.name
                )
        except ApiException as exc:
            if denied := access_denied(exc, f"reading the log of pod {namespace}/{name}"):
                raise denied from None  # measurements come from logs: losing them quietly hides the cause
            log.info("no log for %s: %s", name, exc.reason)
    return logs
