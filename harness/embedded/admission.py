"""Validation and server-side defaulting, applied to every create and update before the store sees it.

Clients (and the suites) read back what the server defaulted -- a Job's selector, a Pod's restartPolicy, a
Service's clusterIP -- so these follow kube-apiserver's defaulting for the fields that matter to workloads.
Validation answers 422 Invalid with one cause per field, never a 500 for bad input.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.embedded import apierrors
from harness.embedded.names import (
    DNS1035_LABEL,
    DNS1035_LABEL_MAX_LENGTH,
    DNS1123_LABEL,
    DNS1123_LABEL_MAX_LENGTH,
    DNS1123_SUBDOMAIN,
    DNS1123_SUBDOMAIN_MAX_LENGTH,
    is_dns1123_label,
    is_label_value,
    is_qualified_name,
)
from harness.embedded.objects import rfc3339
from harness.embedded.resources import ResourceType
from harness.embedded.serviceaccounts import mount_service_account_token
from harness.embedded.store import Store

# Kinds whose names must be DNS-1123 labels (no dots) or DNS-1035 labels (start with a letter), as in kube.
_LABEL_NAMED = {"Namespace"}
_DNS1035_NAMED = {"Service"}

Causes = list[tuple[str, str]]


@dataclass(frozen=True, slots=True, kw_only=True)
class AdmissionContext:
    """What defaulting needs from the cluster: address allocation and the default storage class."""

    allocate_cluster_ip: Callable[[], str]
    allocate_node_port: Callable[[], int]
    default_storage_class: Callable[[], str | None]
    # (namespace, name) -> the stored ServiceAccount, for its automountServiceAccountToken; None: not known
    service_account: Callable[[str, str], dict[str, Any] | None] = lambda namespace, name: None


def validate_name(kind: str, name: str, field: str = "metadata.name") -> Causes:
    if kind in _LABEL_NAMED:
        ok, rule, limit = bool(DNS1123_LABEL.fullmatch(name)), "RFC 1123 label", DNS1123_LABEL_MAX_LENGTH
    elif kind in _DNS1035_NAMED:
        ok, rule, limit = bool(DNS1035_LABEL.fullmatch(name)), "RFC 1035 label", DNS1035_LABEL_MAX_LENGTH
    else:
        ok, rule, limit = bool(DNS1123_SUBDOMAIN.fullmatch(name)), "RFC 1123 subdomain", DNS1123_SUBDOMAIN_MAX_LENGTH
    causes: Causes = []
    if len(name) > limit:
        causes.append((field, f'Invalid value: "{name}": must be no more than {limit} characters'))
    if not ok:
        causes.append(
            (
                field,
                f'Invalid value: "{name}": a lowercase {rule} must consist of lower case alphanumeric characters, '
                "'-' or '.', and must start and end with an alphanumeric character",
            )
        )
    return causes


def validate_labels(labels: Any, field: str) -> Causes:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [(field, "Invalid value: must be a map of string keys to string values")]
    causes: Causes = []
    for key, value in labels.items():
        if not is_qualified_name(key):
            causes.append(
                (
                    f"{field}",
                    f'Invalid value: "{key}": name part must consist of alphanumeric characters, '
                    "'-', '_' or '.', and must start and end with an alphanumeric character",
                )
            )
        if not isinstance(value, str) or not is_label_value(value):
            causes.append(
                (
                    f"{field}",
                    f'Invalid value: "{value}": a valid label must be an empty string or '
                    "consist of alphanumeric characters, '-', '_' or '.' (at most 63)",
                )
            )
    return causes


def admit(
    rtype: ResourceType,
    obj: Any,
    *,
    namespace: str,
    ctx: AdmissionContext,
    uid: str,
    creating: bool,
) -> dict[str, Any]:
    """Validate and default ``obj`` for a create or an update; raises :class:`ApiError` (400/422)."""
    if not isinstance(obj, dict):
        raise apierrors.bad_request(f"the body of the request must be a JSON object, not {type(obj).__name__}")
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if kind and kind != rtype.kind:
        raise apierrors.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rtype.kind})")
    if api_version and api_version != rtype.api_version:
        raise apierrors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version ({rtype.api_version})"
        )
    obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
    metadata = obj.setdefault("metadata", {})
    if not isinstance(metadata, dict):
        raise apierrors.invalid(rtype.group, rtype.kind, "", [("metadata", "Invalid value: must be an object")])
    name = metadata.get("name") or ""
    causes: Causes = []
    if not isinstance(name, str):
        causes.append(("metadata.name", "Invalid value: must be a string"))
        name = ""
    if not name and not (creating and metadata.get("generateName")):
        causes.append(("metadata.name", "Required value: name or generateName is required"))
    elif name:
        causes += validate_name(rtype.kind if rtype.builtin else "", name)
    if rtype.namespaced:
        ns_in_body = metadata.get("namespace")
        if ns_in_body and ns_in_body != namespace:
            raise apierrors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        if namespace:
            metadata["namespace"] = namespace
    causes += validate_labels(metadata.get("labels"), "metadata.labels")
    if metadata.get("annotations") is not None and not (
        isinstance(metadata["annotations"], dict) and all(isinstance(v, str) for v in metadata["annotations"].values())
    ):
        causes.append(("metadata.annotations", "Invalid value: must be a map of string keys to string values"))
    validator = _VALIDATORS.get(rtype.kind) if rtype.builtin else None
    if validator is not None and not causes:
        causes += validator(obj)
    if causes:
        raise apierrors.invalid(rtype.group, rtype.kind, name or metadata.get("generateName", ""), causes)
    defaulter = _DEFAULTERS.get(rtype.kind) if rtype.builtin else None
    if defaulter is not None:
        defaulter(obj, ctx, uid, creating)
    return obj


# --------------------------------------------------------------------------- immutable fields on update
#: Pod-template fields a suspended Job that never started may still change (kube's "mutable scheduling
#: directives", batch/v1 Job since 1.27): everything else in ``spec.template`` is fixed at creation.
_JOB_SCHEDULING_DIRECTIVES = ("nodeSelector", "tolerations", "affinity", "schedulingGates")


def _job_template_core(template: Any, *, scheduling: bool) -> Any:
    """The part of a Job's pod template an update must leave alone (all of it, or all but the scheduling
    directives and template labels/annotations when those may change)."""
    if not isinstance(template, dict) or not scheduling:
        return template
    spec = {k: v for k, v in (template.get("spec") or {}).items() if k not in _JOB_SCHEDULING_DIRECTIVES}
    return {k: v for k, v in template.items() if k not in ("metadata", "spec")} | {"spec": spec}


def check_immutable(rtype: ResourceType, current: dict[str, Any], updated: dict[str, Any]) -> None:
    """Refuse an update (PUT, patch, apply) that changes a field kube-apiserver keeps immutable, with kube's
    wording (422 ``field is immutable``). Why: a real control plane refuses to re-apply a Job under the same name
    with another pod template (``spec.template: field is immutable``); accepting it here hid that defect from
    every embedded run. Only the Job's template and selector are checked today."""
    if rtype.kind != "Job":
        return
    old_spec, new_spec = current.get("spec") or {}, updated.get("spec") or {}
    never_started = bool(old_spec.get("suspend")) and not (current.get("status") or {}).get("startTime")
    causes: Causes = []
    if _job_template_core(old_spec.get("template"), scheduling=never_started) != _job_template_core(
        new_spec.get("template"), scheduling=never_started
    ):
        causes.append(("spec.template", "Invalid value: core.PodTemplateSpec{...}: field is immutable"))
    if old_spec.get("selector") != new_spec.get("selector"):
        causes.append(("spec.selector", "Invalid value: v1.LabelSelector{...}: field is immutable"))
    if causes:
        raise apierrors.invalid(rtype.group, f"{rtype.kind}.{rtype.group}", updated["metadata"].get("name", ""), causes)


# --------------------------------------------------------------------------- per-kind validation
def _validate_pod_spec(spec: Any, field: str) -> Causes:
    if not isinstance(spec, dict):
        return [(field, "Required value")]
    causes: Causes = []
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        causes.append((f"{field}.containers", "Required value"))
        containers = []
    seen: set[str] = set()
    for group in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(group) or [] if group == "initContainers" else containers):
            path = f"{field}.{group}[{i}]"
            if not isinstance(container, dict):
                causes.append((path, "Invalid value: must be an object"))
                continue
            cname = container.get("name")
            if not isinstance(cname, str) or not is_dns1123_label(cname):
                causes.append((f"{path}.name", f'Invalid value: "{cname}": a lowercase RFC 1123 label is required'))
            elif cname in seen:
                causes.append((f"{path}.name", f'Duplicate value: "{cname}"'))
            else:
                seen.add(cname)
            if not container.get("image"):
                causes.append((f"{path}.image", "Required value"))
            for j, port in enumerate(container.get("ports") or []):
                number = port.get("containerPort") if isinstance(port, dict) else None
                if not isinstance(number, int) or not 0 < number < 65536:
                    causes.append(
                        (
                            f"{path}.ports[{j}].containerPort",
                            f"Invalid value: {number}: must be between 1 and 65535, inclusive",
                        )
                    )
            for j, env in enumerate(container.get("env") or []):
                if not isinstance(env, dict) or not env.get("name"):
                    causes.append((f"{path}.env[{j}].name", "Required value"))
    policy = spec.get("restartPolicy")
    if policy is not None and policy not in ("Always", "OnFailure", "Never"):
        causes.append(
            (
                f"{field}.restartPolicy",
                f'Unsupported value: "{policy}": supported values: "Always", "OnFailure", "Never"',
            )
        )
    volumes = spec.get("volumes") or []
    names = [v.get("name") for v in volumes if isinstance(v, dict)]
    for i, vname in enumerate(names):
        if not isinstance(vname, str) or not is_dns1123_label(vname):
            causes.append((f"{field}.volumes[{i}].name", f'Invalid value: "{vname}"'))
        elif names.index(vname) != i:
            causes.append((f"{field}.volumes[{i}].name", f'Duplicate value: "{vname}"'))
    for group in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(group) or []):
            for j, mount in enumerate((container.get("volumeMounts") or []) if isinstance(container, dict) else []):
                if mount.get("name") not in names:
                    causes.append((f"{field}.{group}[{i}].volumeMounts[{j}].name", f'Not found: "{mount.get("name")}"'))
                if not str(mount.get("mountPath", "")).startswith("/"):
                    causes.append(
                        (f"{field}.{group}[{i}].volumeMounts[{j}].mountPath", "Invalid value: must be an absolute path")
                    )
    return causes


def _validate_pod(obj: dict[str, Any]) -> Causes:
    return _validate_pod_spec(obj.get("spec"), "spec")


def _validate_template(obj: dict[str, Any], *, restart: tuple[str, ...] | None = None) -> Causes:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [("spec", "Required value")]
    template = spec.get("template")
    if not isinstance(template, dict):
        return [("spec.template", "Required value")]
    # A StatefulSet's volumeClaimTemplates are volumes of its pods (the controller adds them), so mounts of them
    # are valid although the template's own volume list does not name them.
    claims = [
        {"name": t.get("metadata", {}).get("name"), "emptyDir": {}}
        for t in spec.get("volumeClaimTemplates") or []
        if isinstance(t, dict)
    ]
    pod_spec = template.get("spec")
    if claims and isinstance(pod_spec, dict):
        present = {v.get("name") for v in pod_spec.get("volumes") or [] if isinstance(v, dict)}
        extra = [c for c in claims if c["name"] not in present]
        pod_spec = {**pod_spec, "volumes": [*(pod_spec.get("volumes") or []), *extra]}
    causes = _validate_pod_spec(pod_spec, "spec.template.spec")
    causes += validate_labels((template.get("metadata") or {}).get("labels"), "spec.template.metadata.labels")
    policy = (template.get("spec") or {}).get("restartPolicy", "Always")
    if restart and policy not in restart:
        allowed = ", ".join(f'"{p}"' for p in restart)
        causes.append(
            ("spec.template.spec.restartPolicy", f'Unsupported value: "{policy}": supported values: {allowed}')
        )
    return causes


def _validate_job(obj: dict[str, Any]) -> Causes:
    causes = _validate_template(obj)
    spec = obj.get("spec") or {}
    policy = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy")
    if policy not in ("OnFailure", "Never"):
        causes.append(
            ("spec.template.spec.restartPolicy", f'Required value: valid values: "OnFailure", "Never" (got "{policy}")')
        )
    for key in ("parallelism", "completions", "backoffLimit", "activeDeadlineSeconds"):
        value = spec.get(key)
        if value is not None and (not isinstance(value, int) or value < 0):
            causes.append((f"spec.{key}", f"Invalid value: {value}: must be greater than or equal to 0"))
    if spec.get("completionMode") == "Indexed" and spec.get("completions") is None:
        causes.append(("spec.completions", "Required value: when completion mode is Indexed"))
    if spec.get("completionMode") not in (None, "NonIndexed", "Indexed"):
        causes.append(("spec.completionMode", f'Unsupported value: "{spec.get("completionMode")}"'))
    return causes


def _validate_selector_workload(obj: dict[str, Any]) -> Causes:
    causes = _validate_template(obj, restart=("Always",))
    spec = obj.get("spec") or {}
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        causes.append(("spec.selector", "Required value"))
        return causes
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            causes.append(
                ("spec.template.metadata.labels", "Invalid value: `selector` does not match template `labels`")
            )
            break
    replicas = spec.get("replicas")
    if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
        causes.append(("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0"))
    return causes


def _validate_service(obj: dict[str, Any]) -> Causes:
    spec = obj.get("spec") or {}
    causes: Causes = []
    ports = spec.get("ports") or []
    if not ports and spec.get("clusterIP") != "None" and spec.get("type") != "ExternalName":
        causes.append(("spec.ports", "Required value"))
    for i, port in enumerate(ports):
        number = port.get("port") if isinstance(port, dict) else None
        if not isinstance(number, int) or not 0 < number < 65536:
            causes.append((f"spec.ports[{i}].port", f"Invalid value: {number}: must be between 1 and 65535, inclusive"))
        if len(ports) > 1 and not (isinstance(port, dict) and port.get("name")):
            causes.append((f"spec.ports[{i}].name", "Required value"))
    stype = spec.get("type", "ClusterIP")
    if stype not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        causes.append(("spec.type", f'Unsupported value: "{stype}"'))
    return causes


def _validate_crd(obj: dict[str, Any]) -> Causes:
    spec = obj.get("spec") or {}
    names = spec.get("names") or {}
    causes: Causes = []
    for key in ("plural", "kind"):
        if not names.get(key):
            causes.append((f"spec.names.{key}", "Required value"))
    if not spec.get("group") or "." not in spec.get("group", ""):
        causes.append(("spec.group", "Invalid value: should be a domain with at least one dot"))
    if not spec.get("versions"):
        causes.append(("spec.versions", "Required value"))
    elif sum(1 for v in spec["versions"] if v.get("storage")) != 1:
        causes.append(("spec.versions", "Invalid value: must have exactly one version marked as storage version"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(
            ("spec.scope", f'Unsupported value: "{spec.get("scope")}": supported values: "Cluster", "Namespaced"')
        )
    expected = f"{names.get('plural')}.{spec.get('group')}"
    if obj["metadata"].get("name") != expected:
        causes.append(
            (
                "metadata.name",
                f'Invalid value: "{obj["metadata"].get("name")}": must be spec.names.plural+"."+spec.group',
            )
        )
    return causes


def _validate_pvc(obj: dict[str, Any]) -> Causes:
    spec = obj.get("spec") or {}
    causes: Causes = []
    if not spec.get("accessModes"):
        causes.append(("spec.accessModes", "Required value: at least 1 access mode is required"))
    if not ((spec.get("resources") or {}).get("requests") or {}).get("storage"):
        causes.append(("spec.resources.requests.storage", "Required value"))
    return causes


def _validate_cronjob(obj: dict[str, Any]) -> Causes:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from harness.embedded.cron import CronError
    from harness.embedded.cron import parse as parse_schedule

    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [("spec", "Required value")]
    causes: Causes = []
    schedule = spec.get("schedule")
    if not isinstance(schedule, str) or not schedule:
        causes.append(("spec.schedule", "Required value"))
    else:
        try:
            parse_schedule(schedule)
        except CronError as exc:
            causes.append(("spec.schedule", f'Invalid value: "{schedule}": {exc}'))
    zone = spec.get("timeZone")
    if zone is not None:
        try:
            ZoneInfo(str(zone))
        except (ZoneInfoNotFoundError, ValueError):
            causes.append(("spec.timeZone", f'Invalid value: "{zone}": unknown time zone {zone}'))
    policy = spec.get("concurrencyPolicy", "Allow")
    if policy not in ("Allow", "Forbid", "Replace"):
        causes.append(
            (
                "spec.concurrencyPolicy",
                f'Unsupported value: "{policy}": supported values: "Allow", "Forbid", "Replace"',
            )
        )
    job_template = spec.get("jobTemplate")
    if not isinstance(job_template, dict):
        return [*causes, ("spec.jobTemplate", "Required value")]
    for field, message in _validate_job({"spec": job_template.get("spec")}):
        causes.append((f"spec.jobTemplate.{field}", message))
    return causes


def _validate_replication_controller(obj: dict[str, Any]) -> Causes:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [("spec", "Required value")]
    template = spec.get("template")
    labels = ((template or {}).get("metadata") or {}).get("labels") or {} if isinstance(template, dict) else {}
    selector = spec.get("selector") or labels
    as_workload = {"spec": {**spec, "selector": {"matchLabels": selector}}}
    return _validate_selector_workload(as_workload)


def _validate_pdb(obj: dict[str, Any]) -> Causes:
    spec = obj.get("spec") or {}
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        return [("spec", "Invalid value: minAvailable and maxUnavailable cannot be both set")]
    return []


def _validate_hpa(obj: dict[str, Any]) -> Causes:
    spec = obj.get("spec") or {}
    causes: Causes = []
    target = spec.get("scaleTargetRef") or {}
    for key in ("kind", "name"):
        if not target.get(key):
            causes.append((f"spec.scaleTargetRef.{key}", "Required value"))
    maximum, minimum = spec.get("maxReplicas"), spec.get("minReplicas", 1)
    if not isinstance(maximum, int) or maximum < 1:
        causes.append(("spec.maxReplicas", f"Invalid value: {maximum}: must be greater than or equal to 1"))
    elif isinstance(minimum, int) and minimum > maximum:
        causes.append(("spec.maxReplicas", f"Invalid value: {maximum}: must be greater than or equal to `minReplicas`"))
    return causes


_VALIDATORS: dict[str, Callable[[dict[str, Any]], Causes]] = {
    "Pod": _validate_pod,
    "Job": _validate_job,
    "Deployment": _validate_selector_workload,
    "ReplicaSet": _validate_selector_workload,
    "DaemonSet": _validate_selector_workload,
    "StatefulSet": _validate_selector_workload,
    "Service": _validate_service,
    "CustomResourceDefinition": _validate_crd,
    "PersistentVolumeClaim": _validate_pvc,
    "CronJob": _validate_cronjob,
    "ReplicationController": _validate_replication_controller,
    "PodDisruptionBudget": _validate_pdb,
    "HorizontalPodAutoscaler": _validate_hpa,
}


# --------------------------------------------------------------------------- defaults
def _default_probe(probe: dict[str, Any]) -> None:
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    if "httpGet" in probe:
        probe["httpGet"].setdefault("scheme", "HTTP")
        probe["httpGet"].setdefault("path", "/")


def _default_container(container: dict[str, Any]) -> None:
    image = container.get("image", "")
    tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
    latest = not tagged or image.endswith(":latest")
    container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    resources = container.setdefault("resources", {})
    limits = resources.get("limits") or {}
    if limits:
        requests = resources.setdefault("requests", {})
        for name, value in limits.items():
            requests.setdefault(name, value)
    for port in container.get("ports") or []:
        port.setdefault("protocol", "TCP")
    for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
        if isinstance(container.get(kind), dict):
            _default_probe(container[kind])
    for env in container.get("env") or []:
        field_ref = (env.get("valueFrom") or {}).get("fieldRef")
        if field_ref:
            field_ref.setdefault("apiVersion", "v1")


def default_pod_spec(spec: dict[str, Any]) -> None:
    """Pod spec defaults (also applied to templates of Jobs and workloads, as kube does)."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for container in spec.get("initContainers") or []:
        _default_container(container)
    for container in spec.get("containers") or []:
        _default_container(container)


def _qos_class(spec: dict[str, Any]) -> str:
    requests_seen = limits_seen = False
    guaranteed = True
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        requests_seen |= bool(requests)
        limits_seen |= bool(limits)
        for res in ("cpu", "memory"):
            if res not in limits or requests.get(res, limits[res]) != limits[res]:
                guaranteed = False
    if not requests_seen and not limits_seen:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _default_pod(obj: dict[str, Any], ctx: AdmissionContext, uid: str, creating: bool) -> None:
    spec = obj["spec"]
    default_pod_spec(spec)
    if creating:
        spec.setdefault("serviceAccountName", "default")
        spec["serviceAccount"] = spec["serviceAccountName"]
        namespace = obj["metadata"].get("namespace", "")
        mount_service_account_token(spec, ctx.service_account(namespace, spec["serviceAccountName"]))
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        tolerations = spec.setdefault("tolerations", [])
        present = {t.get("key") for t in tolerations}
        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
            if key not in present:
                tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
        obj["status"] = {"phase": "Pending", "qosClass": _qos_class(spec)}


def _default_job(obj: dict[str, Any], ctx: AdmissionContext, uid: str, creating: bool) -> None:
    spec = obj["spec"]
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    template = spec["template"]
    default_pod_spec(template.setdefault("spec", {}))
    if creating and not spec.get("manualSelector"):
        labels = template.setdefault("metadata", {}).setdefault("labels", {})
        labels.update(
            {
                "batch.kubernetes.io/controller-uid": uid,
                "batch.kubernetes.io/job-name": obj["metadata"].get("name", ""),
                "controller-uid": uid,
                "job-name": obj["metadata"].get("name", ""),
            }
        )
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    if creating:
        obj["status"] = {}


def _default_workload(obj: dict[str, Any], ctx: AdmissionContext, uid: str, creating: bool) -> None:
    spec = obj["spec"]
    kind = obj["kind"]
    if kind != "DaemonSet":
        spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    default_pod_spec(spec["template"].setdefault("spec", {}))
    if kind == "Deployment":
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            strategy.setdefault("rollingUpdate", {"maxSurge": "25%", "maxUnavailable": "25%"})
    elif kind == "StatefulSet":
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
    elif kind == "DaemonSet":
        spec.setdefault(
            "updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
        )
    if creating:
        # kube serialises these status fields without omitempty, so a fresh object already carries them as 0
        # and the official client (which validates responses) requires them.
        obj["status"] = dict(_INITIAL_WORKLOAD_STATUS.get(kind, {}))


_INITIAL_WORKLOAD_STATUS: dict[str, dict[str, int]] = {
    "ReplicaSet": {"replicas": 0},
    "StatefulSet": {"replicas": 0, "availableReplicas": 0},
    "DaemonSet": {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0, "numberReady": 0},
}


def _default_service(obj: dict[str, Any], ctx: AdmissionContext, uid: str, creating: bool) -> None:
    spec = obj.setdefault("spec", {})
    stype = spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if stype == "ExternalName":
        return
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
        if stype in ("NodePort", "LoadBalancer") and creating:
            port.setdefault("nodePort", ctx.allocate_node_port())
    if creating:
        if spec.get("clusterIP") in (None, ""):
            spec["clusterIP"] = ctx.allocate_cluster_ip()
        spec["clusterIPs"] = [spec["clusterIP"]]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        if stype in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        obj["status"] = {"loadBalancer": {}}


def _default_namespace(obj: dict[str, Any], ctx: AdmissionContext, uid: str, creating: bool) -> None:
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"].get("name", "")
    if creating:
        obj["status"] = {"phase": "Active"}


def _default_pvc(obj: dict[str, Any], ctx: AdmissionContext, uid: str, creating: bool) -> None:
    spec = obj["spec"]
    spec.setdefault("volumeMode", "Filesystem")
    if creating and spec.get("storageClassName") is None:
        default = ctx.default_storage_class()
        if default:
            spec["storageClassName"] = default
    if creating:
        obj["status"] = {"phase": "Pending"}


def _default_secret(obj: dict[str, Any], ctx: AdmissionContext, uid: str, creating: bool) -> None:
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None) or {}
    data = obj.setdefault("data", {})
    for key, value in string_data.items():
        data[key] = base64.b64encode(str(value).encode()).decode()


def _default_crd(obj: dict[str, Any], ctx: AdmissionContext, uid: str, creating: bool) -> None:
    spec = obj["spec"]
    names = spec["names"]
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", f"{names['kind']}List")
    for version in spec["versions"]:
        version.setdefault("served", True)
    spec.setdefault("conversion", {"strategy": "None"})
    if creating:
        obj["status"] = {
            "acceptedNames": dict(names),
            "storedVersions": [v["name"] for v in spec["versions"] if v.get("storage")],
            "conditions": [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                    "lastTransitionTime": rfc3339(),
                },
                {
                    "type": "Established",
                    "status": "True",
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                    "lastTransitionTime": rfc3339(),
                },
            ],
        }


def _default_storage_class(obj: dict[str, Any], ctx: AdmissionContext, uid: str, creating: bool) -> None:
    obj.setdefault("reclaimPolicy", "Delete")
    obj.setdefault("volumeBindingMode", "Immediate")


def _default_priority_class(obj: dict[str, Any], ctx: AdmissionContext, uid: str, creating: bool) -> None:
    obj.setdefault("preemptionPolicy", "PreemptLowerPriority")


def _default_cronjob(obj: dict[str, Any], ctx: AdmissionContext, uid: str, creating: bool) -> None:
    spec = obj["spec"]
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    job_spec = spec["jobTemplate"].setdefault("spec", {})
    default_pod_spec(job_spec.setdefault("template", {}).setdefault("spec", {}))
    if creating:
        obj["status"] = {}


def _default_replication_controller(obj: dict[str, Any], ctx: AdmissionContext, uid: str, creating: bool) -> None:
    spec = obj["spec"]
    spec.setdefault("replicas", 1)
    template = spec["template"]
    if not spec.get("selector"):
        spec["selector"] = dict((template.get("metadata") or {}).get("labels") or {})
    if not obj["metadata"].get("labels"):
        obj["metadata"]["labels"] = dict((template.get("metadata") or {}).get("labels") or {})
    default_pod_spec(template.setdefault("spec", {}))
    if creating:
        obj["status"] = {"replicas": 0}


def _default_hpa(obj: dict[str, Any], ctx: AdmissionContext, uid: str, creating: bool) -> None:
    obj["spec"].setdefault("minReplicas", 1)
    if creating:
        obj["status"] = {"currentReplicas": 0, "desiredReplicas": 0}


def _default_pdb(obj: dict[str, Any], ctx: AdmissionContext, uid: str, creating: bool) -> None:
    if creating:
        obj["status"] = {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}


_DEFAULTERS: dict[str, Callable[[dict[str, Any], AdmissionContext, str, bool], None]] = {
    "Pod": _default_pod,
    "Job": _default_job,
    "Deployment": _default_workload,
    "ReplicaSet": _default_workload,
    "DaemonSet": _default_workload,
    "StatefulSet": _default_workload,
    "Service": _default_service,
    "Namespace": _default_namespace,
    "PersistentVolumeClaim": _default_pvc,
    "Secret": _default_secret,
    "CustomResourceDefinition": _default_crd,
    "StorageClass": _default_storage_class,
    "PriorityClass": _default_priority_class,
    "CronJob": _default_cronjob,
    "ReplicationController": _default_replication_controller,
    "HorizontalPodAutoscaler": _default_hpa,
    "PodDisruptionBudget": _default_pdb,
}


def create_admitted(
    store: Store, ctx: AdmissionContext, rtype: ResourceType, namespace: str, obj: dict[str, Any]
) -> dict[str, Any]:
    """Create ``obj`` as a client's request would be: a new uid, admission (defaults, validation), then the store;
    the stored object, or ApiError (a terminating namespace, a name taken...). Controllers, the provisioner and the
    in-process create of the embedded cluster all create through here."""
    uid = str(uuid.uuid4())
    admitted = admit(rtype, obj, namespace=namespace, ctx=ctx, uid=uid, creating=True)
    return store.create(rtype, namespace, admitted, uid=uid)
