"""Turn the API server's Forbidden answers into one sentence naming the missing grant and the rule that adds it.

Why: the suite runs as the least-privilege ServiceAccount of ``deploy/rbac.yaml``, so a Forbidden during a run is a
defect of that file (or of ``harness/cluster/access.py``), not of the cluster. A raw ``ApiException`` shows HTTP
headers and a JSON body; what the reader needs is the verb, the group/resource[/subresource], the namespace, and the
lines to paste. The API server builds the message from the same attributes the authorizer matched on, in fixed
shapes (``k8s.io/apiserver`` ``responsewriters.forbiddenMessage`` wrapped by ``apierrors.NewForbidden``)::

    <resource>[.<group>] ["<name>"] is forbidden: User "<user>" cannot <verb> resource "<resource>[/<sub>]"
        in API group "<group>" in the namespace "<ns>"          (namespaced)
        in API group "<group>" at the cluster scope              (cluster-scoped, or a list across namespaces)
    forbidden: User "<user>" cannot <verb> path "<path>"         (non-resource URLs: /version, /apis)

optionally followed by ``: <authorizer reason>``. An admission denial by a ValidatingAdmissionPolicy reads
``<resource>[.<group>] "<name>" is forbidden: ValidatingAdmissionPolicy '<policy>' with binding '<binding>' denied
request: <message>``; RBAC cannot fix that one, so its explanation points at the policy instead.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from harness.errors import AccessDenied

__all__ = [
    "Forbidden",
    "access_denied",
    "explain_forbidden",
    "forbidden_from_body",
    "forbidden_of",
    "parse_forbidden",
]

RBAC_FILE = "deploy/rbac.yaml"

_RBAC = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>[a-z]+) resource "(?P<resource>[^"]+)" in API group "(?P<group>[^"]*)"'
    r'(?: in the namespace "(?P<namespace>[^"]*)"| at the cluster scope)(?:: (?P<reason>.*))?',
    re.DOTALL,
)
_PATH = re.compile(r'User "(?P<user>[^"]*)" cannot (?P<verb>[a-z]+) path "(?P<path>[^"]*)"(?:: (?P<reason>.*))?')
# Before 1.11 (and in some aggregated API servers) the word "resource" and the group were left out.
_LEGACY = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>[a-z]+) (?P<resource>[a-z0-9.-]+(?:/[a-z0-9-]+)?)'
    r'(?: in the namespace "(?P<namespace>[^"]*)"| at the cluster scope)?'
)
_POLICY = re.compile(
    r"ValidatingAdmissionPolicy '(?P<policy>[^']*)' with binding '(?P<binding>[^']*)' denied request: (?P<denial>.*)",
    re.DOTALL,
)
_SUBJECT = re.compile(r'^(?P<qualified>[a-z0-9.-]+)(?: "(?P<name>[^"]*)")? is forbidden: ')


@dataclass(frozen=True, slots=True, kw_only=True)
class Forbidden:
    """One refused request, as the API server described it."""

    verb: str = ""
    group: str = ""
    resource: str = ""  # plural, without the subresource
    subresource: str = ""
    namespace: str = ""  # empty: cluster scope
    name: str = ""
    user: str = ""
    path: str = ""  # non-resource requests only
    policy: str = ""  # admission denials only
    binding: str = ""
    denial: str = ""
    reason: str = ""  # what the authorizer added after the fixed part, if anything
    message: str = ""

    @property
    def by_policy(self) -> bool:
        return bool(self.policy)

    @property
    def full_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    @property
    def where(self) -> str:
        return f'in namespace "{self.namespace}"' if self.namespace else "at the cluster scope"

    def rule(self) -> str:
        """The ClusterRole rule that grants exactly this request, in the flow style ``deploy/rbac.yaml`` uses."""
        if self.path:
            return f"- nonResourceURLs: [{self.path}]\n  verbs: [{self.verb}]"
        group = f'"{self.group}"' if not self.group else self.group
        return f"- apiGroups: [{group}]\n  resources: [{self.full_resource}]\n  verbs: [{self.verb}]"

    def explain(self) -> str:
        """One message a JUnit line or a log line can carry: what was refused, and what to change."""
        if self.by_policy:
            target = self.full_resource + (f".{self.group}" if self.group else "")
            return (
                f"Forbidden by admission: ValidatingAdmissionPolicy {self.policy!r} (binding {self.binding!r}) "
                f"denied a write to {target} {self.name!r}: {self.denial}. RBAC allowed it; the "
                f"policy in {RBAC_FILE} admits writes only inside namespaces labelled "
                "app.kubernetes.io/managed-by=k8s-ai-bench and to the suite's own cluster-scoped objects: "
                "label the object as the suite's, or extend the policy"
            )
        who = f" for {self.user}" if self.user else ""
        if self.path:
            what = f"{self.verb} path {self.path}"
        else:
            group = self.group or '"" (core)'
            name = f" {self.name!r}" if self.name else ""
            what = f"{self.verb} {self.full_resource}{name} in API group {group} {self.where}"
        tail = f" ({self.reason})" if self.reason else ""
        return (
            f"Forbidden{who}: {what}{tail}. The suite's RBAC lacks this grant: add to {RBAC_FILE} "
            f"(and to harness/cluster/access.py):\n{self.rule()}"
        )


def parse_forbidden(message: str) -> Forbidden | None:
    """The parts of a Forbidden message (RBAC, non-resource path or admission-policy denial); None otherwise."""
    subject = _SUBJECT.match(message)
    qualified, name = (subject.group("qualified"), subject.group("name") or "") if subject else ("", "")
    plural, _, qualified_group = qualified.partition(".")
    if policy := _POLICY.search(message):
        return Forbidden(
            verb="",
            group=qualified_group,
            resource=plural,
            name=name,
            policy=policy.group("policy"),
            binding=policy.group("binding"),
            denial=policy.group("denial").strip(),
            message=message,
        )
    if rbac := _RBAC.search(message):
        resource, _, subresource = rbac.group("resource").partition("/")
        return Forbidden(
            verb=rbac.group("verb"),
            group=rbac.group("group"),
            resource=resource,
            subresource=subresource,
            namespace=rbac.group("namespace") or "",
            name=name,
            user=rbac.group("user"),
            reason=(rbac.group("reason") or "").strip(),
            message=message,
        )
    if path := _PATH.search(message):
        return Forbidden(
            verb=path.group("verb"),
            path=path.group("path"),
            user=path.group("user"),
            reason=(path.group("reason") or "").strip(),
            message=message,
        )
    if legacy := _LEGACY.search(message):
        resource, _, subresource = legacy.group("resource").partition("/")
        return Forbidden(
            verb=legacy.group("verb"),
            group=qualified_group,
            resource=resource,
            subresource=subresource,
            namespace=legacy.group("namespace") or "",
            name=name,
            user=legacy.group("user"),
            message=message,
        )
    return None


def forbidden_from_body(status: int, body: bytes | str | None) -> Forbidden | None:
    """A Forbidden from an API server answer: HTTP 403 (or the 422 of a policy denial without ``reason``) whose
    body is a ``Status`` object. An upstream's own 403 through the service proxy has no Status body: None."""
    if status not in (403, 422) or not body:
        return None
    try:
        document: Any = json.loads(body)
    except (TypeError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("kind") != "Status":
        return None
    found = parse_forbidden(str(document.get("message", "")))
    if found is None or (status == 422 and not found.by_policy):
        return None
    return found


def forbidden_of(exc: BaseException) -> Forbidden | None:
    """The Forbidden an ``ApiException`` (or anything with ``status`` and ``body``) carries; None for any other."""
    status, body = getattr(exc, "status", None), getattr(exc, "body", None)
    if not isinstance(status, int):
        return None
    return forbidden_from_body(status, body)


def explain_forbidden(exc: BaseException) -> str | None:
    """:meth:`Forbidden.explain` of ``exc``, or None when it is not a Forbidden answer."""
    found = forbidden_of(exc)
    return found.explain() if found is not None else None


def access_denied(exc: BaseException, doing: str = "") -> AccessDenied | None:
    """An :class:`AccessDenied` for ``exc`` when it is a Forbidden answer (raise it ``from None``), else None;
    ``doing`` says what the harness was about (``creating Job x``)."""
    found = forbidden_of(exc)
    if found is None:
        return None
    return AccessDenied(f"{doing}: {found.explain()}" if doing else found.explain())
