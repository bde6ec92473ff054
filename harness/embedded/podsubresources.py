"""The pod subresources of the embedded API server: ``log``, ``binding``, ``eviction`` (with PodDisruptionBudgets),
``exec`` and ``portforward`` targets, and ServiceAccount ``token`` requests (also the kubelet's, for projected
tokens).

They answer from the store and hand what runs to the kubelet's hooks (its log source, its exec hook); the API
server decodes requests and wraps the answers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from harness.embedded import apierrors
from harness.embedded.identity import DEFAULT_AUDIENCES, ServiceAccountTokens
from harness.embedded.identity import DEFAULT_EXPIRATION_S as DEFAULT_TOKEN_EXPIRATION_S
from harness.embedded.identity import MAX_EXPIRATION_S as MAX_TOKEN_EXPIRATION_S
from harness.embedded.identity import MIN_EXPIRATION_S as MIN_TOKEN_EXPIRATION_S
from harness.embedded.objects import rfc3339
from harness.embedded.store import Store

if TYPE_CHECKING:
    from harness.embedded.runtime import ExecStream

__all__ = ["ExecHook", "ExecTarget", "LogSource", "PodSubresources"]

_PODS = ("", "pods")


class LogSource(Protocol):
    """What the kubelet offers the log subresource."""

    def stream(self, pod: dict[str, Any], container: str, query: Mapping[str, str]) -> Iterator[bytes]: ...

    def read(self, pod: dict[str, Any], container: str, query: Mapping[str, str]) -> bytes: ...


class ExecTarget(Protocol):
    """A running container that can start an interactive command (the runtime's ContainerProcess)."""

    def open_exec(self, argv: tuple[str, ...], *, stdin: bool, tty: bool) -> ExecStream: ...


class ExecHook(Protocol):
    """Finds the running container of a pod that exec enters; raises ApiError when there is none."""

    def __call__(self, pod: dict[str, Any], container: str) -> ExecTarget: ...


class PodSubresources:
    """Answers the pod subresources from ``store``; ``logs`` and ``exec_hook`` are the kubelet's (None: not served)."""

    def __init__(
        self,
        store: Store,
        *,
        tokens: ServiceAccountTokens,
        logs: LogSource | None = None,
        exec_hook: ExecHook | None = None,
    ) -> None:
        self.store = store
        self.tokens = tokens
        self.logs = logs
        self.exec_hook = exec_hook

    def _pod(self, namespace: str, name: str) -> dict[str, Any]:
        return self.store.get(self.store.registry.get(*_PODS), namespace, name)

    def log(self, namespace: str, name: str, query: Mapping[str, str]) -> bytes | Iterator[bytes]:
        """``pods/log``: the log (followed with ``follow=true``) of the named or only container."""
        pod = self._pod(namespace, name)
        names = [c["name"] for c in pod["spec"].get("containers", [])]
        init_names = [c["name"] for c in pod["spec"].get("initContainers") or []]
        container = query.get("container", "")
        if not container:
            if len(names) != 1:
                raise apierrors.bad_request(
                    f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]"
                    + (f" or one of the init containers: [{' '.join(init_names)}]" if init_names else "")
                )
            container = names[0]
        elif container not in names and container not in init_names:
            raise apierrors.bad_request(f"container {container} is not valid for pod {name}")
        if self.logs is None:
            raise apierrors.bad_request("no kubelet serves logs on this server")
        if query.get("follow") in ("true", "1"):
            return self.logs.stream(pod, container, query)
        return self.logs.read(pod, container, query)

    def bind(self, namespace: str, name: str, binding: dict[str, Any]) -> None:
        """``pods/binding``: set the pod's node, once (a bound pod is a conflict)."""
        target = (binding.get("target") or {}).get("name")
        pod_name = name or (binding.get("metadata") or {}).get("name")
        if not target or not pod_name:
            raise apierrors.invalid("", "Binding", pod_name or "", [("target.name", "Required value")])
        pods = self.store.registry.get(*_PODS)

        def change(pod: dict[str, Any]) -> bool:
            if pod["spec"].get("nodeName"):
                raise apierrors.conflict(
                    "", "pods", pod_name, f'pod {pod_name} is already assigned to node "{pod["spec"]["nodeName"]}"'
                )
            pod["spec"]["nodeName"] = target
            return True

        if self.store.mutate(pods, namespace, pod_name, change) is None:
            raise apierrors.not_found("", "pods", pod_name)

    def respect_disruption_budget(self, pod: dict[str, Any]) -> None:
        """kube's eviction rules: at most one PodDisruptionBudget may cover the pod; an eviction it does not allow
        is a 429; one it allows uses up one of its ``disruptionsAllowed`` at once (before the controller recounts)."""
        from harness.embedded.controllers.disruption import PDBS, matching_budgets
        from harness.embedded.podstate import pod_ready

        budgets = matching_budgets(self.store, pod)
        if not budgets:
            return
        if len(budgets) > 1:
            raise apierrors.ApiError(
                500,
                "InternalError",
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            )
        budget = budgets[0]
        status = budget.get("status") or {}
        if not pod_ready(pod) and status.get("currentHealthy", 0) >= status.get("desiredHealthy", 0):
            return  # an unhealthy pod may go while the budget is met (unhealthyPodEvictionPolicy IfHealthyBudget)
        name = budget["metadata"]["name"]

        def take(obj: dict[str, Any]) -> bool:
            current = obj.get("status") or {}
            if int(current.get("disruptionsAllowed") or 0) <= 0:
                raise apierrors.ApiError(
                    429,
                    "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                    details={
                        "causes": [
                            {
                                "reason": "DisruptionBudget",
                                "message": f"The disruption budget {name} needs {current.get('desiredHealthy', 0)} "
                                f"healthy pods and has {current.get('currentHealthy', 0)} currently",
                            }
                        ]
                    },
                )
            current["disruptionsAllowed"] = int(current["disruptionsAllowed"]) - 1
            obj["status"] = current
            return True

        self.store.mutate(
            self.store.registry.get(*PDBS), budget["metadata"]["namespace"], name, take, subresource="status"
        )

    def token_request(self, namespace: str, name: str, request: dict[str, Any]) -> dict[str, Any]:
        """``serviceaccounts/token`` (TokenRequest): a signed token for the ServiceAccount, bound to a pod when
        ``boundObjectRef`` names one, as kube's TokenRequest API answers."""
        account = self.store.get(self.store.registry.get("", "serviceaccounts"), namespace, name)
        given = request.get("spec")
        spec: dict[str, Any] = given if isinstance(given, dict) else {}
        expiration = spec.get("expirationSeconds") or DEFAULT_TOKEN_EXPIRATION_S
        if not isinstance(expiration, int) or expiration < MIN_TOKEN_EXPIRATION_S:
            raise apierrors.invalid(
                "authentication.k8s.io",
                "TokenRequest",
                "",
                [("spec.expirationSeconds", "Invalid value: may not specify a duration less than 10 minutes")],
            )
        expiration = min(expiration, MAX_TOKEN_EXPIRATION_S)
        audiences = tuple(spec.get("audiences") or ()) or DEFAULT_AUDIENCES
        bound = spec.get("boundObjectRef") or None
        pod = None
        if bound:
            if bound.get("kind") != "Pod":
                raise apierrors.bad_request(f"cannot bind a token to a {bound.get('kind')}: only Pods are served")
            pod = self.store.get(self.store.registry.get(*_PODS), namespace, bound.get("name", ""))
            if bound.get("uid") and bound["uid"] != pod["metadata"]["uid"]:
                raise apierrors.conflict("", "pods", bound.get("name", ""), "the object's uid does not match")
        token, expiry = self.tokens.issue(account, audiences=audiences, expiration_s=expiration, pod=pod)
        spec = dict(spec, audiences=list(audiences), expirationSeconds=expiration)
        if pod is not None:
            spec["boundObjectRef"] = {
                "kind": "Pod",
                "apiVersion": "v1",
                "name": pod["metadata"]["name"],
                "uid": pod["metadata"]["uid"],
            }
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
            "status": {"token": token, "expirationTimestamp": rfc3339(datetime.fromtimestamp(expiry, UTC))},
        }

    def pod_token(self, pod: dict[str, Any], projection: dict[str, Any]) -> str:
        """The kubelet's TokenRequest for a projected ``serviceAccountToken`` volume source: a token of the pod's
        ServiceAccount bound to the pod (the :data:`harness.embedded.volumes.TokenSource` the kubelet passes)."""
        from harness.embedded.volumes import VolumeError

        namespace = pod["metadata"].get("namespace", "")
        name = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        account = self.store.find(("", "serviceaccounts"), namespace, name)
        if account is None:
            raise VolumeError(f'failed to fetch token: serviceaccounts "{name}" not found')
        audience = projection.get("audience")
        expiration = max(MIN_TOKEN_EXPIRATION_S, int(projection.get("expirationSeconds") or DEFAULT_TOKEN_EXPIRATION_S))
        token, _ = self.tokens.issue(
            account, audiences=(audience,) if audience else DEFAULT_AUDIENCES, expiration_s=expiration, pod=pod
        )
        return token

    def exec_target(self, namespace: str, name: str, container: str) -> ExecTarget:
        """``pods/exec``: the running container of the pod that the command enters (the first when none is named)."""
        pod = self._pod(namespace, name)
        names = [c["name"] for c in pod["spec"].get("containers", [])]
        if not container:
            container = names[0]
        elif container not in names:
            raise apierrors.bad_request(f"container {container} is not valid for pod {name}")
        if self.exec_hook is None:
            raise apierrors.bad_request("no kubelet serves exec on this server")
        return self.exec_hook(pod, container)

    def portforward_target(self, namespace: str, name: str) -> tuple[str, str]:
        """``pods/portforward``: (pod IP, uid) of a running pod whose address may be dialled from this machine."""
        from harness.embedded.portforward import destination_allowed

        pod = self._pod(namespace, name)
        if (pod["metadata"].get("annotations") or {}).get("aibench.io/emulated") == "true":
            raise apierrors.bad_request(f"pod {name} runs on an emulated node: there is no process to forward to")
        status = pod.get("status") or {}
        if status.get("phase") != "Running":
            raise apierrors.bad_request(
                f"unable to forward port because pod is not running. Current status={status.get('phase', 'Pending')}"
            )
        pod_ip = status.get("podIP") or ""
        if not destination_allowed(pod_ip):
            raise apierrors.bad_request(
                f"port-forward to pod {name} refused: its IP {pod_ip or '(none)'} is outside 127.0.0.0/8 and "
                "198.18.0.0/15, the only addresses the embedded target connects to"
            )
        return pod_ip, str(pod["metadata"].get("uid", ""))
