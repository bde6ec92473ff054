"""Answers to "may I?" and "who am I?" (SelfSubjectAccessReview, SelfSubjectRulesReview, SelfSubjectReview).

The embedded target authenticates but does not authorize: RBAC objects are stored and listed, never evaluated. So
every access review is answered *allowed*, with a reason that says why (no authorizer), never a pretend RBAC
decision; rules reviews list one allow-everything rule and name the same cause in ``evaluationError``. A client that
must know whether its RBAC is right (the suite's ``deploy/rbac.yaml``) has to ask a real control plane. Nothing is
stored: like kube, these kinds are create-only and the answer is the request with its status filled in.
"""

from __future__ import annotations

from typing import Any

from harness.embedded import apierrors
from harness.embedded.identity import UserInfo
from harness.embedded.resources import ResourceType

NO_AUTHORIZATION = (
    "the embedded target (k8s-ai-bench) does not authorize: every authenticated request is allowed and RBAC "
    "objects are stored, not evaluated"
)
REVIEW_KINDS = frozenset(("SelfSubjectAccessReview", "SelfSubjectRulesReview", "SelfSubjectReview"))


def answer(rtype: ResourceType, body: Any, user: UserInfo) -> dict[str, Any]:
    """The review with its status, as kube-apiserver returns it (201)."""
    if not isinstance(body, dict):
        raise apierrors.bad_request(f"the body of the request must be a JSON object, not {type(body).__name__}")
    out: dict[str, Any] = {"kind": rtype.kind, "apiVersion": rtype.api_version, "metadata": {}}
    raw_spec = body.get("spec")
    spec: dict[str, Any] = raw_spec if isinstance(raw_spec, dict) else {}
    if rtype.kind == "SelfSubjectReview":
        out["status"] = {"userInfo": user.to_dict()}
        return out
    out["spec"] = spec
    if rtype.kind == "SelfSubjectAccessReview":
        if not spec.get("resourceAttributes") and not spec.get("nonResourceAttributes"):
            raise apierrors.invalid(
                rtype.group,
                rtype.kind,
                "",
                [
                    (
                        "spec.resourceAttributes",
                        "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
                    )
                ],
            )
        out["status"] = {"allowed": True, "reason": NO_AUTHORIZATION}
        return out
    out["status"] = {
        "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
        "incomplete": False,
        "evaluationError": NO_AUTHORIZATION,
    }
    return out
