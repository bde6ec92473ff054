"""Apply and delete manifests through the dynamic client, built-in kinds and custom resources alike.

Every applied object gets the run/test labels (and its pod templates too, so pods are findable by run), lands in
the test's namespace when namespaced, and is remembered as an :class:`AppliedRef` for teardown and evidence.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes import client, dynamic
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from harness.cluster.forbidden import access_denied
from harness.errors import WorkloadFailed

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class AppliedRef:
    api_version: str
    kind: str
    name: str
    namespace: str | None


def _with_labels(obj: dict[str, Any], labels: Mapping[str, str]) -> dict[str, Any]:
    metadata = obj.setdefault("metadata", {})
    metadata["labels"] = {**(metadata.get("labels") or {}), **labels}
    template = (obj.get("spec") or {}).get("template")
    if isinstance(template, dict):
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), **labels}
    return obj


class Applier:
    """One dynamic client per target (discovery is cached inside it)."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.dynamic = dynamic.DynamicClient(api_client)

    def resource(self, api_version: str, kind: str) -> Any:
        try:
            return self.dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            self.dynamic.resources.invalidate_cache()
            try:
                return self.dynamic.resources.get(api_version=api_version, kind=kind)
            except ResourceNotFoundError:
                raise WorkloadFailed(
                    f"the target does not serve {kind} ({api_version}); is its CRD installed?"
                ) from None

    def apply(self, docs: Iterable[dict[str, Any]], *, namespace: str, labels: Mapping[str, str]) -> list[AppliedRef]:
        """Create each object (server-side merge patch when it already exists); returns refs in order."""
        refs: list[AppliedRef] = []
        for doc in docs:
            obj = _with_labels(dict(doc), labels)
            api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
            resource = self.resource(api_version, kind)
            ns = namespace if resource.namespaced else None
            if ns:
                obj["metadata"]["namespace"] = ns
            name = obj["metadata"].get("name", "")
            try:
                created = resource.create(body=obj, namespace=ns)
                name = created.metadata.name
            except ApiException as exc:
                if denied := access_denied(exc, f"creating {kind} {name}"):
                    raise denied from None
                if exc.status != 409:
                    raise WorkloadFailed(f"creating {kind} {name}: {exc.status} {_reason(exc)}") from None
                try:
                    resource.patch(body=obj, name=name, namespace=ns, content_type="application/merge-patch+json")
                except ApiException as patch_exc:
                    if denied := access_denied(patch_exc, f"patching existing {kind} {name}"):
                        raise denied from None
                    raise
            refs.append(AppliedRef(api_version=api_version, kind=kind, name=name, namespace=ns))
            log.debug("applied %s %s/%s", kind, ns, name)
        return refs

    def delete(self, refs: Sequence[AppliedRef]) -> None:
        """Delete in reverse order, foreground; objects already gone are fine."""
        for ref in reversed(refs):
            try:
                self.resource(ref.api_version, ref.kind).delete(
                    name=ref.name, namespace=ref.namespace, propagation_policy="Foreground"
                )
            except ApiException as exc:
                if denied := access_denied(exc, f"deleting {ref.kind} {ref.name}"):
                    raise denied from None
                if exc.status != 404:
                    raise


def _reason(exc: ApiException) -> str:
    import json

    try:
        return str(json.loads(exc.body or "").get("message", exc.reason))
    except (TypeError, ValueError):
        return str(exc.reason)
