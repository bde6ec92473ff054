"""Kubernetes API errors as `metav1.Status` bodies.

Every failure the embedded API server reports travels as an :class:`ApiError`; the HTTP layer turns it into the
Status object a real kube-apiserver would send, so that clients (the official Python client, kubectl) see the
reason and code they branch on (``AlreadyExists`` vs ``Conflict``, ``Expired`` for a stale watch, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class ApiError(Exception):
    """A request the server refuses; carries everything a `metav1.Status` needs."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: Mapping[str, Any] | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = dict(details or {})
        self.retry_after_s = retry_after_s

    def to_status(self) -> dict[str, Any]:
        """The Status body; ``details`` only when there is something in it, like the real server."""
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            status["details"] = self.details
        if self.retry_after_s is not None:
            status.setdefault("details", {})["retryAfterSeconds"] = self.retry_after_s
        return status


def _details(group: str, kind: str, name: str | None) -> dict[str, Any]:
    details: dict[str, Any] = {"kind": kind}
    if group:
        details["group"] = group
    if name:
        details["name"] = name
    return details


def not_found(group: str, plural: str, name: str) -> ApiError:
    """404 as kube words it: ``pods "x" not found``."""
    resource = f"{plural}.{group}" if group else plural
    return ApiError(404, "NotFound", f'{resource} "{name}" not found', details=_details(group, plural, name))


def already_exists(group: str, plural: str, name: str) -> ApiError:
    """409 AlreadyExists on a create of a name that is taken."""
    resource = f"{plural}.{group}" if group else plural
    return ApiError(409, "AlreadyExists", f'{resource} "{name}" already exists', details=_details(group, plural, name))


def conflict(group: str, plural: str, name: str, why: str) -> ApiError:
    """409 Conflict: optimistic concurrency lost (stale resourceVersion) or a UID precondition failed."""
    resource = f"{plural}.{group}" if group else plural
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource} "{name}": {why}',
        details=_details(group, plural, name),
    )


def invalid(group: str, kind: str, name: str, causes: Sequence[tuple[str, str]]) -> ApiError:
    """422 Invalid with one cause per bad field: ``(field path, message)``."""
    text = "; ".join(f"{field}: {message}" for field, message in causes)
    details = _details(group, kind, name or None)
    details["causes"] = [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes]
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {text}', details=details)


def bad_request(message: str) -> ApiError:
    """400 for bodies that cannot be decoded or requests that make no sense."""
    return ApiError(400, "BadRequest", message)


def expired(message: str) -> ApiError:
    """410 Gone: a watch or list asked for a resourceVersion that has been compacted away."""
    return ApiError(410, "Expired", message)


def forbidden(message: str) -> ApiError:
    """403, e.g. creating content in a namespace that is being terminated."""
    return ApiError(403, "Forbidden", message)


def unauthorized() -> ApiError:
    """401 for a request without the server's bearer token."""
    return ApiError(401, "Unauthorized", "Unauthorized")


def method_not_allowed(verb: str, resource: str) -> ApiError:
    """405 for a verb the resource does not serve."""
    return ApiError(
        405, "MethodNotAllowed", f"the server does not allow this method on the requested resource: {verb} {resource}"
    )


def unsupported_media_type(content_type: str) -> ApiError:
    """415, e.g. a strategic merge patch sent to a custom resource (as kube answers)."""
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml "
        f'(got "{content_type}")',
    )
