"""Server-side ``Table`` rendering for ``kubectl get``.

kubectl asks for ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` and prints whatever columns the
server returns; it has no printers of its own for built-in kinds any more. So the embedded server must
produce the same columns and cells as kube-apiserver's printers (``pkg/printers/internalversion``), otherwise
``kubectl get pods`` shows only NAME/AGE and an agent that reads kubectl output sees a cluster that looks unlike
a real one. The logic below follows those printers, including their odd corners (``Init:0/1``,
``CrashLoopBackOff``, ``"<none>"`` placeholders, the ``(5s ago)`` restart suffix), because agents grep for them.

As in kube, the server generates the *wide* cells too; columns with ``priority: 1`` are hidden by kubectl
unless ``-o wide``. Column names are kube's (``"Ready"``, ``"Nominated Node"``); kubectl upper-cases them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from harness.embedded.selectors import SelectorError, label_selector_from_object

__all__ = [
    "Column",
    "IncludeObject",
    "human_duration",
    "parse_timestamp",
    "to_table",
]

IncludeObject = Literal["None", "Metadata", "Object"]

_NONE: Final = "<none>"
_UNKNOWN: Final = "<unknown>"


@dataclass(frozen=True, slots=True, kw_only=True)
class Column:
    """One ``metav1.TableColumnDefinition``; ``priority`` 1 means ``-o wide`` only."""

    name: str
    type: str = "string"
    format: str = ""
    description: str = ""
    priority: int = 0

    def definition(self) -> dict[str, Any]:
        """The JSON form kubectl expects (all five fields present)."""
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


# --- time -----------------------------------------------------------------------------------------------------


def parse_timestamp(value: Any) -> datetime | None:
    """Parse an RFC 3339 ``Time``/``MicroTime`` (``...Z``); None for absent or unparsable values."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def human_duration(seconds: float) -> str:
    """kube's ``duration.HumanDuration``: 2 significant units, coarser as the duration grows."""
    secs = int(seconds)
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 60 * 2:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        rest = secs % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = secs // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if rest == 0 else f"{hours // 24 // 365}y{rest}d"
    return f"{hours // 24 // 365}y"


def _since(value: Any, now: datetime) -> str:
    """``translateTimestampSince``: ``<unknown>`` for a missing timestamp."""
    then = parse_timestamp(value)
    if then is None:
        return _UNKNOWN
    return human_duration((now - then).total_seconds())


# --- small accessors --------------------------------------------------------------------------------------------


def _get(obj: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(part)
    return obj


def _map(obj: Any, *path: str) -> Mapping[str, Any]:
    value = _get(obj, *path)
    return value if isinstance(value, Mapping) else {}


def _list(obj: Any, *path: str) -> list[Any]:
    value = _get(obj, *path)
    return value if isinstance(value, list) else []


def _int(obj: Any, *path: str, default: int = 0) -> int:
    value = _get(obj, *path)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _str(obj: Any, *path: str) -> str:
    value = _get(obj, *path)
    return value if isinstance(value, str) else ""


def _name(obj: Mapping[str, Any]) -> str:
    return _str(obj, "metadata", "name")


def _age(obj: Mapping[str, Any], now: datetime) -> str:
    return _since(_get(obj, "metadata", "creationTimestamp"), now)


def _condition_true(conditions: list[Any], kind: str) -> bool:
    return any(_get(c, "type") == kind and _get(c, "status") == "True" for c in conditions)


def _format_labels(labels: Mapping[str, Any]) -> str:
    """``labels.FormatLabels``: sorted ``k=v`` pairs or ``<none>``."""
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels)) or _NONE


def _format_selector(selector: Any) -> str:
    """``metav1.FormatLabelSelector`` for the SELECTOR column (sorted requirements, ``<none>`` if empty)."""
    if not isinstance(selector, Mapping):
        return _NONE
    try:
        text = str(label_selector_from_object(selector))
    except SelectorError:
        return "<error>"
    return text or _NONE


def _containers_and_images(pod_spec: Any) -> tuple[str, str]:
    containers = [c for c in _list(pod_spec, "containers") if isinstance(c, Mapping)]
    return ",".join(_str(c, "name") for c in containers), ",".join(_str(c, "image") for c in containers)


def _access_modes(modes: list[Any]) -> str:
    """``GetAccessModesAsString``: fixed order, short names."""
    short = (
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    )
    return ",".join(abbrev for full, abbrev in short if full in modes)


_Cells = Callable[[Mapping[str, Any], datetime], list[Any]]
"""A printer's row: the cells for one object, ages counted from the ``now`` of the response."""

_NAME_COLUMN: Final = Column(
    name="Name",
    format="name",
    description="Name must be unique within a namespace. Is required when creating resources.",
)
_AGE_COLUMN: Final = Column(
    name="Age",
    description="CreationTimestamp is a timestamp representing the server time when this object was created.",
)


# --- Pod ----------------------------------------------------------------------------------------------------------


def _terminated_reason(terminated: Mapping[str, Any], prefix: str) -> str:
    reason = _str(terminated, "reason")
    if reason:
        return prefix + reason
    signal = _int(terminated, "signal")
    if signal:
        return f"{prefix}Signal:{signal}"
    return f"{prefix}ExitCode:{_int(terminated, 'exitCode')}"


def _pod_cells(pod: Mapping[str, Any], now: datetime) -> list[Any]:
    """kube's ``printPod``: READY/STATUS/RESTARTS the way kubectl users know them."""
    spec, status = _map(pod, "spec"), _map(pod, "status")
    conditions = _list(status, "conditions")
    init_specs = {_str(c, "name"): c for c in _list(spec, "initContainers") if isinstance(c, Mapping)}

    def restartable(name: str) -> bool:  # sidecar init containers count as regular containers
        return _str(init_specs.get(name), "restartPolicy") == "Always"

    total = len(_list(spec, "containers")) + sum(1 for name in init_specs if restartable(name))
    ready = 0
    restarts = 0
    sidecar_restarts = 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None
    phase = _str(status, "phase")
    reason = _str(status, "reason") or phase
    for cond in conditions:
        if _get(cond, "type") == "PodScheduled" and _get(cond, "reason") == "SchedulingGated":
            reason = "SchedulingGated"

    def later(current: datetime | None, cs: Any) -> datetime | None:
        finished = parse_timestamp(_get(cs, "lastState", "terminated", "finishedAt"))
        if finished is not None and (current is None or finished > current):
            return finished
        return current

    initializing = False
    init_statuses = _list(status, "initContainerStatuses")
    for index, cs in enumerate(init_statuses):
        name = _str(cs, "name")
        restarts += _int(cs, "restartCount")
        last_restart = later(last_restart, cs)
        if restartable(name):
            sidecar_restarts += _int(cs, "restartCount")
            last_sidecar_restart = later(last_sidecar_restart, cs)
        terminated = _map(cs, "state", "terminated")
        waiting_reason = _str(cs, "state", "waiting", "reason")
        if terminated and _int(terminated, "exitCode") == 0:
            continue
        if restartable(name) and _get(cs, "started") is True:
            if _get(cs, "ready") is True:
                ready += 1
            continue
        if terminated:
            reason = _terminated_reason(terminated, "Init:")
        elif waiting_reason and waiting_reason != "PodInitializing":
            reason = "Init:" + waiting_reason
        else:
            reason = f"Init:{index}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(conditions, "Initialized"):
        restarts = sidecar_restarts
        last_restart = last_sidecar_restart
        has_running = False
        for cs in reversed(_list(status, "containerStatuses")):
            restarts += _int(cs, "restartCount")
            last_restart = later(last_restart, cs)
            waiting_reason = _str(cs, "state", "waiting", "reason")
            terminated = _map(cs, "state", "terminated")
            if waiting_reason:
                reason = waiting_reason
            elif terminated:
                reason = _terminated_reason(terminated, "")
            elif _get(cs, "ready") is True and isinstance(_get(cs, "state", "running"), Mapping):
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(conditions, "Ready") else "NotReady"

    if _get(pod, "metadata", "deletionTimestamp"):
        if _str(status, "reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"

    restarts_cell = str(restarts)
    if restarts and last_restart is not None:
        restarts_cell = f"{restarts} ({human_duration((now - last_restart).total_seconds())} ago)"

    pod_ips = _list(status, "podIPs")
    ip = _str(pod_ips[0], "ip") if pod_ips else _str(status, "podIP")
    gates = _list(spec, "readinessGates")
    gates_cell = _NONE
    if gates:
        by_type = {_get(c, "type"): _get(c, "status") for c in reversed(conditions)}
        true_count = sum(1 for g in gates if by_type.get(_get(g, "conditionType")) == "True")
        gates_cell = f"{true_count}/{len(gates)}"
    return [
        _name(pod),
        f"{ready}/{total}",
        reason,
        restarts_cell,
        _age(pod, now),
        ip or _NONE,
        _str(spec, "nodeName") or _NONE,
        _str(status, "nominatedNodeName") or _NONE,
        gates_cell,
    ]


def _pod_row_conditions(pod: Mapping[str, Any]) -> list[dict[str, str]] | None:
    """``Completed`` row condition that lets clients hide finished pods, as kube sets it."""
    phase = _str(pod, "status", "phase")
    if phase == "Succeeded":
        return [
            {
                "type": "Completed",
                "status": "True",
                "reason": "Succeeded",
                "message": "The pod has completed successfully.",
            }
        ]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return None


# --- Node ---------------------------------------------------------------------------------------------------------


def _node_cells(node: Mapping[str, Any], now: datetime) -> list[Any]:
    conditions = _list(node, "status", "conditions")
    ready = [c for c in conditions if _get(c, "type") == "Ready"]
    states = ["Ready" if _get(ready[-1], "status") == "True" else "NotReady"] if ready else ["Unknown"]
    if _get(node, "spec", "unschedulable") is True:
        states.append("SchedulingDisabled")
    roles: set[str] = set()
    for key, value in _map(node, "metadata", "labels").items():
        if key.startswith("node-role.kubernetes.io/") and key != "node-role.kubernetes.io/":
            roles.add(key.removeprefix("node-role.kubernetes.io/"))
        elif key == "kubernetes.io/role" and value:
            roles.add(str(value))
    info = _map(node, "status", "nodeInfo")

    def address(kind: str) -> str:
        for addr in _list(node, "status", "addresses"):
            if _get(addr, "type") == kind:
                return _str(addr, "address")
        return _NONE

    return [
        _name(node),
        ",".join(states),
        ",".join(sorted(roles)) or _NONE,
        _age(node, now),
        _str(info, "kubeletVersion"),
        address("InternalIP"),
        address("ExternalIP"),
        _str(info, "osImage") or _UNKNOWN,
        _str(info, "kernelVersion") or _UNKNOWN,
        _str(info, "containerRuntimeVersion") or _UNKNOWN,
    ]


# --- workloads ------------------------------------------------------------------------------------------------


# Kinds with a pod template print NAME, their own columns, AGE, then (wide) the template's containers and images and
# the selector: :func:`_workload_printer` builds that frame; the functions below give each kind's own cells.


def _job_status(job: Mapping[str, Any], now: datetime) -> list[Any]:
    """``printJob``: STATUS, COMPLETIONS, DURATION."""
    spec, status = _map(job, "spec"), _map(job, "status")
    succeeded = _int(status, "succeeded")
    completions = _get(spec, "completions")
    if isinstance(completions, int):
        completions_cell = f"{succeeded}/{completions}"
    else:
        parallelism = _int(spec, "parallelism")
        completions_cell = f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"
    start = parse_timestamp(_get(status, "startTime"))
    end = parse_timestamp(_get(status, "completionTime"))
    duration = "" if start is None else human_duration(((end or now) - start).total_seconds())
    conditions = _list(status, "conditions")
    if _condition_true(conditions, "Complete"):
        state = "Complete"
    elif _condition_true(conditions, "Failed"):
        state = "Failed"
    elif _get(job, "metadata", "deletionTimestamp"):
        state = "Terminating"
    elif _condition_true(conditions, "Suspended"):
        state = "Suspended"
    elif _condition_true(conditions, "FailureTarget"):
        state = "FailureTarget"
    elif _condition_true(conditions, "SuccessCriteriaMet"):
        state = "SuccessCriteriaMet"
    else:
        state = "Running"
    return [state, completions_cell, duration]


def _ready_of_desired(obj: Mapping[str, Any]) -> str:
    """READY of a Deployment or StatefulSet: ready replicas out of the desired count (1 when unset)."""
    return f"{_int(obj, 'status', 'readyReplicas')}/{_int(obj, 'spec', 'replicas', default=1)}"


def _deployment_status(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    """``printDeployment``: READY, UP-TO-DATE, AVAILABLE."""
    del now
    status = _map(obj, "status")
    return [_ready_of_desired(obj), _int(status, "updatedReplicas"), _int(status, "availableReplicas")]


def _selector_or_empty(selector: Any) -> str:
    """Deployments/ReplicaSets print an empty string (not ``<none>``) for an empty selector."""
    text = _format_selector(selector)
    return "" if text == _NONE else text


def _format_label_map(selector: Any) -> str:
    """A selector that is a plain label map (ReplicationController), printed like labels."""
    return _format_labels(selector if isinstance(selector, Mapping) else {})


def _replica_status(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    """``printReplicaSet`` and ``printReplicationController``: DESIRED, CURRENT, READY."""
    del now
    return [
        _int(obj, "spec", "replicas", default=1),
        _int(obj, "status", "replicas"),
        _int(obj, "status", "readyReplicas"),
    ]


def _daemonset_status(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    """``printDaemonSet``: DESIRED, CURRENT, READY, UP-TO-DATE, AVAILABLE, NODE SELECTOR."""
    del now
    status = _map(obj, "status")
    return [
        _int(status, "desiredNumberScheduled"),
        _int(status, "currentNumberScheduled"),
        _int(status, "numberReady"),
        _int(status, "updatedNumberScheduled"),
        _int(status, "numberAvailable"),
        _format_labels(_map(obj, "spec", "template", "spec", "nodeSelector")),
    ]


def _statefulset_status(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    """``printStatefulSet``: READY."""
    del now
    return [_ready_of_desired(obj)]


def _cronjob_status(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    """``printCronJob``: SCHEDULE, TIMEZONE, SUSPEND, ACTIVE, LAST SCHEDULE."""
    spec, status = _map(obj, "spec"), _map(obj, "status")
    last = _get(status, "lastScheduleTime")
    return [
        _str(spec, "schedule"),
        _str(spec, "timeZone") or _NONE,
        "True" if _get(spec, "suspend") else "False",
        len(_list(status, "active")),
        _since(last, now) if last else _NONE,
    ]


# --- networking -----------------------------------------------------------------------------------------------


def _service_external_ip(svc: Mapping[str, Any]) -> str:
    spec = _map(svc, "spec")
    svc_type = _str(spec, "type") or "ClusterIP"
    external = [str(ip) for ip in _list(spec, "externalIPs")]
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external) or _NONE
    if svc_type == "LoadBalancer":
        ingress = [_str(i, "ip") or _str(i, "hostname") for i in _list(svc, "status", "loadBalancer", "ingress")]
        combined = [i for i in ingress if i] + external
        return ",".join(combined) or "<pending>"
    if svc_type == "ExternalName":
        return _str(spec, "externalName")
    return _UNKNOWN


def _service_cells(svc: Mapping[str, Any], now: datetime) -> list[Any]:
    spec = _map(svc, "spec")
    cluster_ips = _list(spec, "clusterIPs")
    cluster_ip = str(cluster_ips[0]) if cluster_ips else _str(spec, "clusterIP") or _NONE
    ports = []
    for port in _list(spec, "ports"):
        protocol = _str(port, "protocol") or "TCP"
        node_port = _int(port, "nodePort")
        number = _int(port, "port")
        ports.append(f"{number}:{node_port}/{protocol}" if node_port else f"{number}/{protocol}")
    return [
        _name(svc),
        _str(spec, "type") or "ClusterIP",
        cluster_ip,
        _service_external_ip(svc),
        ",".join(ports) or _NONE,
        _age(svc, now),
        _format_labels(_map(spec, "selector")),
    ]


def _format_endpoints(endpoints: Mapping[str, Any]) -> str:
    """``formatEndpoints``: first three ``ip:port`` pairs, then ``+ N more...``."""
    subsets = _list(endpoints, "subsets")
    if not subsets:
        return _NONE
    shown: list[str] = []
    limit = 3
    count = 0
    for subset in subsets:
        addresses = [_str(a, "ip") for a in _list(subset, "addresses")]
        ports = _list(subset, "ports")
        if not ports:
            for ip in addresses:
                if len(shown) < limit:
                    shown.append(ip)
                count += 1
            continue
        for port in ports:
            for ip in addresses:
                if len(shown) < limit:
                    host = f"[{ip}]" if ":" in ip else ip
                    shown.append(f"{host}:{_int(port, 'port')}")
                count += 1
    text = ",".join(shown)
    if count > limit:
        return f"{text} + {count - limit} more..."
    return text or _NONE


def _endpoints_cells(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), _format_endpoints(obj), _age(obj, now)]


# --- config and storage ---------------------------------------------------------------------------------------


def _namespace_cells(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), _str(obj, "status", "phase"), _age(obj, now)]


def _configmap_cells(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), len(_map(obj, "data")) + len(_map(obj, "binaryData")), _age(obj, now)]


def _secret_cells(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), _str(obj, "type") or "Opaque", len(_map(obj, "data")), _age(obj, now)]


_BETA_CLASS_ANNOTATION: Final = "volume.beta.kubernetes.io/storage-class"


def _volume_class(obj: Mapping[str, Any]) -> str:
    annotated = _map(obj, "metadata", "annotations").get(_BETA_CLASS_ANNOTATION)
    return str(annotated) if annotated else _str(obj, "spec", "storageClassName")


def _pvc_cells(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    spec, status = _map(obj, "spec"), _map(obj, "status")
    phase = "Terminating" if _get(obj, "metadata", "deletionTimestamp") else _str(status, "phase")
    capacity = access = ""
    if _str(spec, "volumeName"):
        access = _access_modes(_list(status, "accessModes"))
        capacity = str(_get(status, "capacity", "storage") or "")
    return [
        _name(obj),
        phase,
        _str(spec, "volumeName"),
        capacity,
        access,
        _volume_class(obj),
        _str(spec, "volumeAttributesClassName") or "<unset>",
        _age(obj, now),
        _str(spec, "volumeMode") or "<unset>",
    ]


def _pv_cells(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    spec, status = _map(obj, "spec"), _map(obj, "status")
    claim = _map(spec, "claimRef")
    claim_cell = f"{_str(claim, 'namespace')}/{_str(claim, 'name')}" if claim else ""
    phase = "Terminating" if _get(obj, "metadata", "deletionTimestamp") else _str(status, "phase")
    return [
        _name(obj),
        str(_get(spec, "capacity", "storage") or ""),
        _access_modes(_list(spec, "accessModes")),
        _str(spec, "persistentVolumeReclaimPolicy"),
        phase,
        claim_cell,
        _volume_class(obj),
        _str(spec, "volumeAttributesClassName") or "<unset>",
        _str(status, "reason"),
        _age(obj, now),
        _str(spec, "volumeMode") or "<unset>",
    ]


def _storageclass_cells(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    annotations = _map(obj, "metadata", "annotations")
    default = any(
        annotations.get(key) == "true"
        for key in ("storageclass.kubernetes.io/is-default-class", "storageclass.beta.kubernetes.io/is-default-class")
    )
    return [
        _name(obj) + (" (default)" if default else ""),
        _str(obj, "provisioner"),
        _str(obj, "reclaimPolicy") or "Delete",
        _str(obj, "volumeBindingMode") or "Immediate",
        _get(obj, "allowVolumeExpansion") is True,
        _age(obj, now),
    ]


# --- events and CRDs ------------------------------------------------------------------------------------------


def _event_cells(event: Mapping[str, Any], now: datetime) -> list[Any]:
    first = _since(_get(event, "firstTimestamp"), now)
    if not _get(event, "firstTimestamp"):
        first = _since(_get(event, "eventTime"), now)
    last = _since(_get(event, "lastTimestamp"), now) if _get(event, "lastTimestamp") else first
    count = _int(event, "count")
    series = _map(event, "series")
    if series:
        last = _since(_get(series, "lastObservedTime"), now)
        count = _int(series, "count")
    elif count == 0:
        count = 1
    involved = _map(event, "involvedObject")
    target = _str(involved, "kind").lower()
    if _str(involved, "name"):
        target = f"{target}/{_str(involved, 'name')}"
    source = _map(event, "source")
    if _str(source, "component"):
        source_cell = ", ".join(s for s in (_str(source, "component"), _str(source, "host")) if s)
    else:
        source_cell = ", ".join(s for s in (_str(event, "reportingComponent"), _str(event, "reportingInstance")) if s)
    return [
        last,
        _str(event, "type"),
        _str(event, "reason"),
        target,
        _str(involved, "fieldPath"),
        source_cell,
        _str(event, "message").strip(),
        first,
        count,
        _name(event),
    ]


def _lease_cells(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    """``printLease``: the holder identity, empty when nobody holds it."""
    return [_name(obj), _str(obj, "spec", "holderIdentity"), _age(obj, now)]


def _created_at_cells(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    del now  # "Created At" is a date column: kubectl renders the raw timestamp itself
    return [_name(obj), _get(obj, "metadata", "creationTimestamp")]


def _binding_cells(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    """``printRoleBinding``/``printClusterRoleBinding``: Role as kind/name, subjects split by kind (wide)."""
    subjects = [s for s in _list(obj, "subjects") if isinstance(s, Mapping)]

    def of(kind: str) -> str:
        names = []
        for subject in subjects:
            if subject.get("kind") != kind:
                continue
            name = str(subject.get("name", ""))
            names.append(f"{subject.get('namespace', '')}/{name}" if kind == "ServiceAccount" else name)
        return ", ".join(names)

    role = f"{_str(obj, 'roleRef', 'kind')}/{_str(obj, 'roleRef', 'name')}"
    return [_name(obj), role, _age(obj, now), of("User"), of("Group"), of("ServiceAccount")]


def _endpointslice_cells(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    """``printEndpointSlice``: ports and the first three addresses, ``<unset>`` when empty."""
    ports = [p for p in _list(obj, "ports") if isinstance(p, Mapping)]
    port_text = ",".join(str(p.get("port")) if p.get("port") is not None else "<unset>" for p in ports) or "<unset>"
    addresses = [a for e in _list(obj, "endpoints") if isinstance(e, Mapping) for a in _list(e, "addresses")]
    shown = ",".join(str(a) for a in addresses[:3])
    if len(addresses) > 3:
        shown += f" + {len(addresses) - 3} more..."
    return [_name(obj), _str(obj, "addressType"), port_text, shown or "<unset>", _age(obj, now)]


def _pdb_cells(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    """``printPodDisruptionBudget``: N/A for the bound that is not set."""
    spec = _map(obj, "spec")
    min_available = _get(spec, "minAvailable")
    max_unavailable = _get(spec, "maxUnavailable")
    return [
        _name(obj),
        str(min_available) if min_available is not None else "N/A",
        str(max_unavailable) if max_unavailable is not None else "N/A",
        _int(obj, "status", "disruptionsAllowed"),
        _age(obj, now),
    ]


def _hpa_targets(obj: Mapping[str, Any]) -> str:
    """``formatHPAMetrics`` for resource metrics: current/target, ``<unknown>`` without a current value."""
    specs = [m for m in _list(obj, "spec", "metrics") if isinstance(m, Mapping)]
    if not specs:
        return _NONE
    parts = []
    for metric in specs:
        if metric.get("type") != "Resource":
            parts.append(f"<unknown>/{metric.get('type', '')}")
            continue
        resource = _map(metric, "resource")
        target = _map(resource, "target")
        if target.get("averageUtilization") is not None:
            parts.append(f"{resource.get('name', '')}: <unknown>/{target['averageUtilization']}%")
        else:
            parts.append(f"{resource.get('name', '')}: <unknown>/{target.get('averageValue', '')}")
    return ", ".join(parts)


def _hpa_cells(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    """``printHorizontalPodAutoscaler``."""
    spec = _map(obj, "spec")
    ref = _map(spec, "scaleTargetRef")
    min_pods = _get(spec, "minReplicas")
    return [
        _name(obj),
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        _hpa_targets(obj),
        str(min_pods) if min_pods is not None else "<unset>",
        _int(spec, "maxReplicas"),
        _int(obj, "status", "currentReplicas"),
        _age(obj, now),
    ]


def _default_cells(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), _age(obj, now)]


# --- registry -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Printer:
    columns: tuple[Column, ...]
    cells: _Cells
    row_conditions: Callable[[Mapping[str, Any]], list[dict[str, str]] | None] | None = None


def _col(name: str, description: str, *, priority: int = 0, type_: str = "string") -> Column:
    return Column(name=name, type=type_, description=description, priority=priority)


_CONTAINERS = _col("Containers", "Names of each container in the template.", priority=1)
_IMAGES = _col("Images", "Images referenced by each container in the template.", priority=1)
_SELECTOR = _col("Selector", "Label query over pods that should match the replicas count.", priority=1)


def _workload_printer(
    own_columns: tuple[Column, ...],
    own_cells: _Cells,
    *,
    selector: Callable[[Any], str] | None = _format_selector,
    template_owner: tuple[str, ...] = ("spec",),
) -> _Printer:
    """The printer of a kind with a pod template: NAME, ``own_columns`` (cells from ``own_cells``), AGE, then the
    wide CONTAINERS, IMAGES and SELECTOR (printed by ``selector``; None: no such column, as for a StatefulSet).
    ``template_owner`` is where the template and the selector sit (a CronJob's are in ``spec.jobTemplate.spec``)."""
    columns = (_NAME_COLUMN, *own_columns, _AGE_COLUMN, _CONTAINERS, _IMAGES)

    def cells(obj: Mapping[str, Any], now: datetime) -> list[Any]:
        owner = _map(obj, *template_owner)
        names, images = _containers_and_images(_get(owner, "template", "spec"))
        row = [_name(obj), *own_cells(obj, now), _age(obj, now), names, images]
        if selector is not None:
            row.append(selector(_get(owner, "selector")))
        return row

    return _Printer(columns=columns if selector is None else (*columns, _SELECTOR), cells=cells)


_REPLICA_COLUMNS = (
    _col("Desired", "Number of desired pods.", type_="integer"),
    _col("Current", "Number of actual replicas observed.", type_="integer"),
    _col("Ready", "Number of ready replicas.", type_="integer"),
)

_CREATED_AT_PRINTER: Final = _Printer(
    columns=(_NAME_COLUMN, Column(name="Created At", type="date", description=_AGE_COLUMN.description)),
    cells=_created_at_cells,
)

_BINDING_COLUMNS = (
    _NAME_COLUMN,
    _col("Role", "Role to which this binding refers."),
    _AGE_COLUMN,
    _col("Users", "Users in this binding.", priority=1),
    _col("Groups", "Groups in this binding.", priority=1),
    _col("ServiceAccounts", "ServiceAccounts in this binding.", priority=1),
)

_PRINTERS: Final[Mapping[str, _Printer]] = {
    "Pod": _Printer(
        columns=(
            _NAME_COLUMN,
            _col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
            _col("Status", "The aggregate status of the containers in this pod."),
            _col("Restarts", "The number of times the containers in this pod have been restarted and when the last."),
            _AGE_COLUMN,
            _col("IP", "IP address allocated to the pod. Routable at least within the cluster.", priority=1),
            _col("Node", "Name of the node this pod is bound to.", priority=1),
            _col("Nominated Node", "Name of the node where the pod is expected to be scheduled.", priority=1),
            _col("Readiness Gates", "Readiness gates that hold true out of all gates.", priority=1),
        ),
        cells=_pod_cells,
        row_conditions=_pod_row_conditions,
    ),
    "Node": _Printer(
        columns=(
            _NAME_COLUMN,
            _col("Status", "The status of the node."),
            _col("Roles", "The roles of the node."),
            _AGE_COLUMN,
            _col("Version", "Kubelet Version reported by the node."),
            _col("Internal-IP", "List of addresses reachable to the node.", priority=1),
            _col("External-IP", "List of addresses reachable to the node.", priority=1),
            _col("OS-Image", "OS Image reported by the node from /etc/os-release.", priority=1),
            _col("Kernel-Version", "Kernel Version reported by the node from 'uname -r'.", priority=1),
            _col("Container-Runtime", "Container Runtime Version reported by the node.", priority=1),
        ),
        cells=_node_cells,
    ),
    "Job": _workload_printer(
        (
            _col("Status", "Status of the job."),
            _col("Completions", "The number of pods that completed successfully out of the desired count."),
            _col("Duration", "Time required to complete the job."),
        ),
        _job_status,
    ),
    "Deployment": _workload_printer(
        (
            _col("Ready", "Number of the pod with ready state."),
            _col("Up-to-date", "Total number of non-terminated pods with the desired template.", type_="integer"),
            _col("Available", "Total number of available pods (ready for minReadySeconds).", type_="integer"),
        ),
        _deployment_status,
        selector=_selector_or_empty,
    ),
    "ReplicaSet": _workload_printer(_REPLICA_COLUMNS, _replica_status, selector=_selector_or_empty),
    "DaemonSet": _workload_printer(
        (
            _col("Desired", "The number of nodes that should be running the daemon pod.", type_="integer"),
            _col("Current", "The number of nodes running at least one daemon pod.", type_="integer"),
            _col("Ready", "The number of nodes with a ready daemon pod.", type_="integer"),
            _col("Up-to-date", "The number of nodes running the updated daemon pod.", type_="integer"),
            _col("Available", "The number of nodes with an available daemon pod.", type_="integer"),
            _col("Node Selector", "Node selector of the pod template."),
        ),
        _daemonset_status,
    ),
    "StatefulSet": _workload_printer(
        (_col("Ready", "Number of the pod with ready state."),), _statefulset_status, selector=None
    ),
    "Service": _Printer(
        columns=(
            _NAME_COLUMN,
            _col("Type", "How the service is exposed."),
            _col("Cluster-IP", "IP address of the service inside the cluster."),
            _col("External-IP", "External IPs or load balancer addresses of the service."),
            _col("Port(s)", "The ports exposed by the service."),
            _AGE_COLUMN,
            _col("Selector", "Pods with labels matching this selector receive the traffic.", priority=1),
        ),
        cells=_service_cells,
    ),
    "Endpoints": _Printer(
        columns=(_NAME_COLUMN, _col("Endpoints", "Endpoints of the service (first three)."), _AGE_COLUMN),
        cells=_endpoints_cells,
    ),
    "Namespace": _Printer(
        columns=(_NAME_COLUMN, _col("Status", "The status of the namespace."), _AGE_COLUMN),
        cells=_namespace_cells,
    ),
    "ConfigMap": _Printer(
        columns=(_NAME_COLUMN, _col("Data", "Number of keys in data and binaryData.", type_="integer"), _AGE_COLUMN),
        cells=_configmap_cells,
    ),
    "Secret": _Printer(
        columns=(
            _NAME_COLUMN,
            _col("Type", "The type of the secret."),
            _col("Data", "The number of keys in the secret.", type_="integer"),
            _AGE_COLUMN,
        ),
        cells=_secret_cells,
    ),
    "PersistentVolumeClaim": _Printer(
        columns=(
            _NAME_COLUMN,
            _col("Status", "Phase of the claim."),
            _col("Volume", "The persistent volume bound to the claim."),
            _col("Capacity", "The actual storage of the bound volume."),
            _col("Access Modes", "The access modes of the bound volume."),
            _col("StorageClass", "The storage class requested by the claim."),
            _col("VolumeAttributesClass", "The volume attributes class of the claim."),
            _AGE_COLUMN,
            _col("VolumeMode", "Filesystem or Block.", priority=1),
        ),
        cells=_pvc_cells,
    ),
    "PersistentVolume": _Printer(
        columns=(
            _NAME_COLUMN,
            _col("Capacity", "The storage capacity of the volume."),
            _col("Access Modes", "The access modes of the volume."),
            _col("Reclaim Policy", "What happens to the volume when released from its claim."),
            _col("Status", "Phase of the volume."),
            _col("Claim", "The claim bound to the volume."),
            _col("StorageClass", "The storage class of the volume."),
            _col("VolumeAttributesClass", "The volume attributes class of the volume."),
            _col("Reason", "Reason the volume is in its phase."),
            _AGE_COLUMN,
            _col("VolumeMode", "Filesystem or Block.", priority=1),
        ),
        cells=_pv_cells,
    ),
    "StorageClass": _Printer(
        columns=(
            _NAME_COLUMN,
            _col("Provisioner", "The volume plugin that provisions volumes of this class."),
            _col("ReclaimPolicy", "Reclaim policy of dynamically provisioned volumes."),
            _col("VolumeBindingMode", "When volumes are bound and provisioned."),
            _col("AllowVolumeExpansion", "Whether volumes can be expanded.", type_="boolean"),
            _AGE_COLUMN,
        ),
        cells=_storageclass_cells,
    ),
    "Event": _Printer(
        columns=(
            _col("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
            _col("Type", "Type of this event (Normal, Warning)."),
            _col("Reason", "A short, machine understandable string that gives the reason for the transition."),
            _col("Object", "The object that this event is about."),
            _col("Subobject", "The field of the object this event is about.", priority=1),
            _col("Source", "The component reporting this event.", priority=1),
            _col("Message", "A human-readable description of the status of this operation."),
            _col("First Seen", "The time at which the event was first recorded.", priority=1),
            _col("Count", "The number of times this event has occurred.", priority=1),
            Column(name="Name", format="name", priority=1, description=_NAME_COLUMN.description),
        ),
        cells=_event_cells,
    ),
    "CustomResourceDefinition": _CREATED_AT_PRINTER,
    "Role": _CREATED_AT_PRINTER,
    "ClusterRole": _CREATED_AT_PRINTER,
    "RoleBinding": _Printer(columns=_BINDING_COLUMNS, cells=_binding_cells),
    "ClusterRoleBinding": _Printer(columns=_BINDING_COLUMNS, cells=_binding_cells),
    "CronJob": _workload_printer(
        (
            _col("Schedule", "The schedule in Cron format."),
            _col("Timezone", "The time zone name for the given schedule."),
            _col("Suspend", "Whether subsequent executions are suspended.", type_="boolean"),
            _col("Active", "A list of pointers to currently running jobs.", type_="integer"),
            _col("Last Schedule", "Information when was the last time the job was successfully scheduled."),
        ),
        _cronjob_status,
        template_owner=("spec", "jobTemplate", "spec"),
    ),
    "ReplicationController": _workload_printer(_REPLICA_COLUMNS, _replica_status, selector=_format_label_map),
    "EndpointSlice": _Printer(
        columns=(
            _NAME_COLUMN,
            _col("AddressType", "The type of address held in this EndpointSlice."),
            _col("Ports", "Ports supported by this EndpointSlice."),
            _col("Endpoints", "Addresses of the endpoints (first three)."),
            _AGE_COLUMN,
        ),
        cells=_endpointslice_cells,
    ),
    "PodDisruptionBudget": _Printer(
        columns=(
            _NAME_COLUMN,
            _col("Min Available", "The minimum number of pods that must be available."),
            _col("Max Unavailable", "The maximum number of pods that may be unavailable."),
            _col(
                "Allowed Disruptions", "Calculated number of pods that may be disrupted at this time.", type_="integer"
            ),
            _AGE_COLUMN,
        ),
        cells=_pdb_cells,
    ),
    "HorizontalPodAutoscaler": _Printer(
        columns=(
            _NAME_COLUMN,
            _col("Reference", "Reference to target resource."),
            _col("Targets", "Current and target metrics."),
            _col("MinPods", "Lower limit for the number of pods."),
            _col("MaxPods", "Upper limit for the number of pods.", type_="integer"),
            _col("Replicas", "Current number of replicas of pods managed by this autoscaler.", type_="integer"),
            _AGE_COLUMN,
        ),
        cells=_hpa_cells,
    ),
    "Lease": _Printer(
        columns=(_NAME_COLUMN, _col("Holder", "The holder of the lease."), _AGE_COLUMN),
        cells=_lease_cells,
    ),
}
_DEFAULT_PRINTER: Final = _Printer(columns=(_NAME_COLUMN, _AGE_COLUMN), cells=_default_cells)


# --- custom resources -----------------------------------------------------------------------------------------


def _json_path(obj: Any, path: str) -> Any:
    """Evaluate the simple ``.a.b[0].c`` JSON paths CRDs allow in ``additionalPrinterColumns``."""
    current = obj
    for raw in path.strip().lstrip(".").replace("[", ".[").split("."):
        if not raw:
            continue
        if raw.startswith("[") and raw.endswith("]"):
            inner = raw[1:-1].strip("'\"")
            if isinstance(current, list) and inner.lstrip("-").isdigit():
                index = int(inner)
                current = current[index] if -len(current) <= index < len(current) else None
            elif isinstance(current, Mapping):
                current = current.get(inner)
            else:
                return None
        elif isinstance(current, Mapping):
            current = current.get(raw)
        else:
            return None
        if current is None:
            return None
    return current


def _custom_printer(printer_columns: Sequence[Mapping[str, Any]]) -> _Printer:
    """Columns from a CRD version's ``additionalPrinterColumns`` (kube prepends Name)."""
    columns = [_NAME_COLUMN]
    for spec in printer_columns:
        columns.append(
            Column(
                name=str(spec.get("name", "")),
                type=str(spec.get("type", "string")),
                format=str(spec.get("format", "")),
                description=str(spec.get("description", "")),
                priority=int(spec.get("priority", 0)),
            )
        )
    paths = [str(spec.get("jsonPath", "")) for spec in printer_columns]
    types = [str(spec.get("type", "string")) for spec in printer_columns]

    def cells(obj: Mapping[str, Any], now: datetime) -> list[Any]:
        del now  # date columns carry raw timestamps; kubectl renders them as ages
        row: list[Any] = [_name(obj)]
        for path, type_ in zip(paths, types, strict=True):
            value = _json_path(obj, path)
            if type_ == "string" and value is not None and not isinstance(value, str):
                value = str(value).lower() if isinstance(value, bool) else str(value)
            row.append(value)
        return row

    return _Printer(columns=tuple(columns), cells=cells)


# --- entry point ----------------------------------------------------------------------------------------------


def _row_object(obj: Mapping[str, Any], include_object: IncludeObject) -> dict[str, Any] | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return copy.deepcopy(dict(obj))
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": copy.deepcopy(dict(_map(obj, "metadata"))),
    }


def to_table(
    kind: str,
    items: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    list_meta: Mapping[str, Any],
    include_object: IncludeObject = "Metadata",
    printer_columns: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Render ``items`` of ``kind`` as a ``meta.k8s.io/v1`` Table.

    ``now`` is passed in (not read from the clock) so ages are consistent within one response and testable.
    ``include_object`` is the request's ``includeObject`` parameter: kubectl needs the row's metadata to add
    the NAMESPACE column for ``-A`` and to follow up with ``-o name``. ``printer_columns`` is a CRD version's
    ``additionalPrinterColumns``; a custom resource without them gets Name and Age like in kube.
    """
    if include_object not in ("None", "Metadata", "Object"):
        raise ValueError(f"includeObject must be None, Metadata or Object, not {include_object!r}")
    current = now if now.tzinfo else now.replace(tzinfo=UTC)
    printer = _custom_printer(printer_columns) if printer_columns else _PRINTERS.get(kind, _DEFAULT_PRINTER)
    rows = []
    for item in items:
        row: dict[str, Any] = {"cells": printer.cells(item, current)}
        conditions = printer.row_conditions(item) if printer.row_conditions else None
        if conditions:
            row["conditions"] = conditions
        obj = _row_object(item, include_object)
        if obj is not None:
            row["object"] = obj
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": dict(list_meta),
        "columnDefinitions": [column.definition() for column in printer.columns],
        "rows": rows,
    }
