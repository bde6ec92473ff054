"""Image pull preflight: before the first workload, can every image the selected tests need be pulled on the target?

Without it an unpublished or unmirrored image costs a whole workload timeout in ImagePullBackOff, test after test.
With it ``run`` stops at once with one line per image, naming the node, the kubelet's pull error and the remedy
(``images build --push REGISTRY``, then ``--image-registry REGISTRY``); ``doctor`` prints the same lines.

Which images: each selected test's workloads, found in its source (:func:`workloads_of`), less the tests and
workloads whose requirements the target lacks (they will skip, pulling nothing); each reference rewritten by
``--image-registry`` exactly as the run will render it.

How: one short-lived pod per image per node class (nodes sharing architecture, OS and pool), bound to one node of
the class with ``nodeName`` (so the scheduler's placement cannot hide a node that cannot pull), tolerating every
taint, ``imagePullPolicy: IfNotPresent`` and ``command: ["true"]``. Its container status and the kubelet's events
say ``pulled`` (running, terminated, or waiting for a reason that comes after the pull) or ``failed``
(:data:`PULL_FAILURES`: ErrImagePull, ImagePullBackOff, InvalidImageName...); a pull still running after
:data:`PULL_WAIT_S` is said and not counted as a failure (a 20 GB CUDA image can take minutes; the workload's own
pull continues where the probe's stopped). The pods live in one labelled namespace, deleted afterwards whatever
happened.

Nodes that never pull an image do not take part, and a target made only of them gets the sentence why: nodes
whose runtime is ``aibench-process://`` (the embedded target and this project's node agent run containers as host
processes; a container with only an image is CreateContainerError there) and emulated nodes (scripted output).
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import logging
import re
import textwrap
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.catalog.render import rewrite_image
from harness.catalog.spec import catalog_root, load_workload

log = logging.getLogger(__name__)

#: Container waiting reasons the kubelet sets when it cannot get the image (pkg/kubelet/images/types.go).
PULL_FAILURES = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "RegistryUnavailable",
        "ImageInspectError",
        "SignatureValidationFailed",
    }
)
#: Waiting reasons before the image is there (the pull may still be running).
_BEFORE_PULL = frozenset({"", "ContainerCreating", "PodInitializing"})
#: How long the probe waits for pulls that neither finish nor fail.
PULL_WAIT_S = 120.0
PROCESS_RUNTIME = "aibench-process://"
PREFLIGHT_TEST = "image-preflight"
_POOL_LABELS = (
    "cloud.google.com/gke-nodepool",
    "eks.amazonaws.com/nodegroup",
    "karpenter.sh/nodepool",
    "kubernetes.azure.com/agentpool",
    "node.kubernetes.io/instance-type",
)
_ACCELERATORS = {"gpu": ("nvidia.com/gpu", "amd.com/gpu"), "tpu": ("google.com/tpu",)}
REMEDY = "k8s-ai-bench images build --push REGISTRY, then run with --image-registry REGISTRY"


# ----------------------------------------------------------------------------- which images the tests need
def workloads_of(item: Any, names: frozenset[str]) -> set[str]:
    """Catalog workloads a collected test uses: workload names found in the source of its function and of every
    fixture it requests (string literals; module constants, mappings and sequences they name; helper functions of
    the same module, recursively; and the ``WORKLOAD`` constant of any module whose class or function they use, the
    way :mod:`harness.runners.load` owns inference-load), plus parametrize values that are workload names.

    Static, so it needs no marker on every test and cannot drift from what the test calls; it over-approximates
    at worst (a name in a branch the test does not take), which costs a probe, never a missed image."""
    found: set[str] = set()
    functions: list[Any] = []
    if (obj := getattr(item, "obj", None)) is not None:
        functions.append(obj)
    fixtureinfo = getattr(item, "_fixtureinfo", None)
    for name in getattr(item, "fixturenames", ()):
        for fixturedef in fixtureinfo.name2fixturedefs.get(name, ()) if fixtureinfo else ():
            functions.append(fixturedef.func)
    seen: set[int] = set()
    for function in functions:
        found |= _names_in(function, names, seen)
    callspec = getattr(item, "callspec", None)
    for value in callspec.params.values() if callspec is not None else ():
        if isinstance(value, str) and value in names:
            found.add(value)
    return found


def _names_in(function: Any, names: frozenset[str], seen: set[int]) -> set[str]:
    function = inspect.unwrap(function)
    if id(function) in seen or not inspect.isfunction(function):
        return set()
    seen.add(id(function))
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        log.warning("image preflight: no source for %s; its workloads are not known", function)
        return set()
    found: set[str] = set()
    module = function.__globals__
    definition = tree.body[0] if tree.body else tree
    # the body only: decorators (``parametrize("workload", list(BENCHMARKS))``) list every case, and the item's own
    # case comes from its callspec
    body = definition.body if isinstance(definition, ast.FunctionDef | ast.AsyncFunctionDef) else [definition]
    nodes = [sub for statement in body for sub in ast.walk(statement)]
    # ``BENCHMARKS[workload]`` looks one entry up by a key the test already has: the mapping's keys are not uses
    looked_up = {id(n.value) for n in nodes if isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name)}
    for node in nodes:
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
            found.add(node.value)
        elif isinstance(node, ast.Name) and node.id in module:
            value = module[node.id]
            if id(node) in looked_up and isinstance(value, Mapping):
                value = list(value.values())
            found |= _names_of_value(value, names, function, seen)
    return found


def _names_of_value(value: Any, names: frozenset[str], origin: Any, seen: set[int]) -> set[str]:
    if isinstance(value, str):
        return {value} if value in names else set()
    if isinstance(value, Mapping):
        return {k for k in value if isinstance(k, str) and k in names} | {
            v for v in value.values() if isinstance(v, str) and v in names
        }
    if isinstance(value, list | tuple | set | frozenset):
        return {v for v in value if isinstance(v, str) and v in names}
    if inspect.isfunction(value) and value.__module__ == origin.__module__:
        return _names_in(value, names, seen)
    module_name = getattr(value, "__module__", None)
    if (inspect.isfunction(value) or inspect.isclass(value)) and module_name:
        import sys

        owner = sys.modules.get(module_name)
        workload = getattr(owner, "WORKLOAD", None)
        if isinstance(workload, str) and workload in names:
            return {workload}
    return set()


@dataclass(slots=True)
class ImageNeed:
    """One image (as the run will render it) and who needs it."""

    ref: str
    workloads: set[str] = field(default_factory=set)
    accelerators: set[str] | None = None  # every use needs one of these ("gpu", "tpu"); None: any node can run it


def needed_images(
    items: Sequence[Any],
    *,
    missing: Callable[[str], str | None],
    requirements: Callable[[Any], list[str]],
    image_registry: str | None,
) -> dict[str, ImageNeed]:
    """The images the selected tests will pull: tests and workloads the target cannot run (``missing`` returns
    why) are left out, as they will skip before creating anything."""
    names = frozenset(p.parent.name for p in catalog_root().glob("*/workload.yaml"))
    needs: dict[str, ImageNeed] = {}
    for item in items:
        item_requires = requirements(item)
        if any(missing(req) for req in item_requires):
            continue
        for workload in sorted(workloads_of(item, names)):
            spec = load_workload(workload)
            if any(missing(req) for req in spec.requires):
                continue
            wants = {acc for acc in _ACCELERATORS if acc in spec.requires or acc in item_requires}
            for ref in spec.images.values():
                need = needs.setdefault(
                    rewrite_image(ref, image_registry), ImageNeed(ref=rewrite_image(ref, image_registry))
                )
                need.workloads.add(workload)
                if not wants:
                    need.accelerators = set()
                elif need.accelerators is None:
                    need.accelerators = set(wants)
                elif need.accelerators:
                    need.accelerators &= wants
    return needs


# ----------------------------------------------------------------------------- node classes
@dataclass(frozen=True, slots=True, kw_only=True)
class NodeClass:
    """Nodes expected to pull alike: same architecture, OS and pool; ``node`` is the one the probe pod runs on."""

    key: str  # "amd64/linux pool=gpu-a100"
    node: str
    accelerators: frozenset[str]


def node_classes(nodes: Iterable[Any]) -> tuple[list[NodeClass], list[str]]:
    """Ready, image-pulling nodes grouped into classes, and why the other nodes were left out (one phrase each)."""
    classes: dict[str, NodeClass] = {}
    left_out: list[str] = []
    for node in sorted(nodes, key=lambda n: n.metadata.name):
        labels = node.metadata.labels or {}
        name = node.metadata.name
        runtime = (
            node.status.node_info.container_runtime_version if node.status and node.status.node_info else ""
        ) or ""
        if runtime.startswith(PROCESS_RUNTIME):
            left_out.append(f"{name}: runs containers as host processes ({runtime}), never pulls images")
            continue
        if labels.get("aibench.io/emulated") == "true":
            left_out.append(f"{name}: emulated (scripted output), pulls nothing")
            continue
        ready = any(c.type == "Ready" and c.status == "True" for c in (node.status.conditions or []))
        if not ready or (node.spec and node.spec.unschedulable):
            left_out.append(f"{name}: not ready or cordoned")
            continue
        pool = next((f"{k.rsplit('/', 1)[-1]}={labels[k]}" for k in _POOL_LABELS if k in labels), "")
        key = f"{labels.get('kubernetes.io/arch', '?')}/{labels.get('kubernetes.io/os', '?')}" + (
            f" {pool}" if pool else ""
        )
        allocatable = node.status.allocatable or {}
        accelerators = frozenset(
            acc
            for acc, resources in _ACCELERATORS.items()
            if any(str(allocatable.get(r, "0")) not in ("0", "") for r in resources)
        )
        classes.setdefault(key, NodeClass(key=key, node=name, accelerators=accelerators))
    return list(classes.values()), left_out


# ----------------------------------------------------------------------------- the probe pods
@dataclass(frozen=True, slots=True, kw_only=True)
class PullResult:
    image: str
    node: str
    node_class: str
    state: str  # "pulled", "failed" or "pending"
    reason: str = ""
    message: str = ""

    def line(self) -> str:
        where = f"node {self.node} ({self.node_class})"
        if self.state == "failed":
            return f"image {self.image} cannot be pulled on {where}: {self.reason}: {self.message} -- remedy: {REMEDY}"
        if self.state == "pending":
            return (
                f"image {self.image} on {where}: still pulling after {self.message} (not counted as a failure: the "
                "workload's own pull goes on)"
            )
        return f"image {self.image} pulled on {where}"


def classify(pod: Any, events: Sequence[Any]) -> tuple[str, str, str]:
    """``(state, reason, message)`` of one probe pod from its container status and the kubelet's events about it.

    The message is the kubelet's own text: the ``Failed`` event's ``Failed to pull image "...": <error>`` when there
    is one (it keeps the registry's answer), else the waiting message (``Back-off pulling image "..."`` says less)."""
    status = pod.status
    for cs in (status.container_statuses or []) if status else []:
        state = cs.state
        if state is None:
            continue
        if state.running is not None or state.terminated is not None:
            return "pulled", "", ""
        waiting = state.waiting
        reason = (waiting.reason or "") if waiting else ""
        if reason in PULL_FAILURES:
            pulled_error = [
                e.message for e in events if e.reason in ("Failed", "InspectFailed") and "image" in (e.message or "")
            ]
            text = pulled_error[-1] if pulled_error else (waiting.message or "") if waiting else ""
            return "failed", reason, " ".join(str(text).split())
        if reason not in _BEFORE_PULL:  # e.g. CreateContainerConfigError, RunContainerError: the image is there
            return "pulled", "", ""
    if status is not None and status.phase == "Failed":
        return "failed", status.reason or "Failed", " ".join((status.message or "pod failed before the pull").split())
    if any(e.reason == "Pulled" for e in events):
        return "pulled", "", ""
    return "pending", "", ""


def probe_pod(name: str, image: str, node: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """A pod that only pulls: bound to ``node``, every taint tolerated, restricted-profile security context (a
    namespace under Pod Security ``restricted`` admits it), no resource requests, ``true`` as its command."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "tolerations": [{"operator": "Exists"}],
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 0,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "pull",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["true"],
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                }
            ],
        },
    }


def probe_pulls(
    api_client: client.ApiClient,
    namespace: str,
    needs: Mapping[str, ImageNeed],
    classes: Sequence[NodeClass],
    *,
    labels: Mapping[str, str],
    wait_s: float = PULL_WAIT_S,
    poll_s: float = 1.0,
) -> list[PullResult]:
    """Create every probe pod at once, then poll pods and events until each pulled, failed, or ``wait_s`` passed."""
    core = client.CoreV1Api(api_client)
    pods: dict[str, tuple[str, NodeClass]] = {}
    for ref, need in sorted(needs.items()):
        for node_class in classes:
            if need.accelerators and not (need.accelerators & node_class.accelerators):
                continue  # a GPU-only image is pulled where GPU workloads run
            digest = hashlib.sha256(f"{ref}/{node_class.node}".encode()).hexdigest()[:10]
            stem = re.sub(r"[^a-z0-9-]+", "-", ref.rsplit("/", 1)[-1].split("@")[0].lower()).strip("-")[:40]
            name = f"pull-{stem}-{digest}".replace("--", "-")
            body: Any = probe_pod(name, ref, node_class.node, labels)
            core.create_namespaced_pod(namespace, body)
            pods[name] = (ref, node_class)
    results: dict[str, PullResult] = {}
    deadline = time.monotonic() + wait_s
    while pods.keys() - results.keys():
        by_name = {p.metadata.name: p for p in core.list_namespaced_pod(namespace).items if p.metadata}
        events: dict[str, list[Any]] = {}
        for event in core.list_namespaced_event(namespace).items:
            events.setdefault(event.involved_object.name or "", []).append(event)
        for name in sorted(pods.keys() - results.keys()):
            ref, node_class = pods[name]
            pod = by_name.get(name)
            if pod is None:
                continue
            state, reason, message = classify(pod, sorted(events.get(name, []), key=_event_time))
            if state != "pending":
                results[name] = PullResult(
                    image=ref,
                    node=node_class.node,
                    node_class=node_class.key,
                    state=state,
                    reason=reason,
                    message=message,
                )
        if time.monotonic() >= deadline:
            break
        time.sleep(poll_s)
    for name in pods.keys() - results.keys():
        ref, node_class = pods[name]
        results[name] = PullResult(
            image=ref, node=node_class.node, node_class=node_class.key, state="pending", message=f"{wait_s:.0f} s"
        )
    return sorted(results.values(), key=lambda r: (r.state != "failed", r.image, r.node))


def _event_time(event: Any) -> float:
    when = event.last_timestamp or event.event_time or event.first_timestamp or event.metadata.creation_timestamp
    return when.timestamp() if when is not None else 0.0


# ----------------------------------------------------------------------------- the preflight as run and doctor see it
@dataclass(slots=True)
class Report:
    """What the preflight found: ``applies`` False with the reason as the only line when no node pulls images."""

    applies: bool
    lines: list[str]
    failed: int = 0

    def failure(self) -> str:
        """The run's refusal text: a headline, then one line per image that cannot be pulled."""
        failed = [line for line in self.lines if " cannot be pulled " in line]
        return f"image preflight: {self.failed} image pull(s) failed\n" + "\n".join(f"  {line}" for line in failed)


def preflight(
    api_client: client.ApiClient,
    items: Sequence[Any],
    *,
    missing: Callable[[str], str | None],
    requirements: Callable[[Any], list[str]],
    image_registry: str | None,
    run_id: str,
    delete_timeout_s: float = 120.0,
    wait_s: float = PULL_WAIT_S,
) -> Report:
    """Work out the images, the node classes, probe, clean up, and say it all in :class:`Report` lines."""
    from harness.cluster.namespaces import run_labels, scoped_namespace

    nodes = client.CoreV1Api(api_client).list_node().items
    classes, left_out = node_classes(nodes)
    if not classes:
        why = "; ".join(left_out) or "the target lists no nodes"
        return Report(
            applies=False,
            lines=[f"image preflight: does not apply here -- no node pulls images ({why})"],
        )
    needs = needed_images(items, missing=missing, requirements=requirements, image_registry=image_registry)
    if not needs:
        return Report(applies=True, lines=["image preflight: the selected tests need no image on this target"])
    labels = run_labels(run_id, PREFLIGHT_TEST)
    with scoped_namespace(api_client, run_id=run_id, test=PREFLIGHT_TEST, delete_timeout_s=delete_timeout_s) as ns:
        results = probe_pulls(api_client, ns, needs, classes, labels=labels, wait_s=wait_s)
    failed = sum(r.state == "failed" for r in results)
    pulled = sum(r.state == "pulled" for r in results)
    head = (
        f"image preflight: {len(needs)} image(s) on {len(classes)} node class(es): {pulled} pulled, "
        f"{failed} failed, {len(results) - pulled - failed} still pulling"
        + (f" (nodes left out: {'; '.join(left_out)})" if left_out else "")
    )
    return Report(applies=True, lines=[head, *(r.line() for r in results)], failed=failed)


def run_preflight(state: Any, items: Sequence[Any], requirements: Callable[[Any], list[str]]) -> Report:
    """The plugin's call: the session's target, capabilities and options."""
    caps = state.capabilities
    try:
        return preflight(
            state.target.api_client,
            items,
            missing=caps.missing,
            requirements=requirements,
            image_registry=state.config.image_registry,
            run_id=state.config.run_id,
            delete_timeout_s=state.config.timeout(120),
        )
    except ApiException as exc:
        return Report(
            applies=True,
            lines=[
                f"image preflight: the target refused the probe ({exc.status} {exc.reason}); pulls were not checked"
            ],
        )
