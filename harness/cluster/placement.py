"""Placement the harness adds to workloads: real measurements never land on emulated nodes.

On an embedded target with a cluster spec, emulated nodes stand beside the real host; their pods run through a
scripted runtime and can produce no measurement. Workloads that measure are therefore kept off them with a
required node-affinity term (``aibench.io/emulated DoesNotExist``), merged into whatever affinity the manifest has.
"""

from __future__ import annotations

from typing import Any

from harness.labels import EMULATED

EMULATED_LABEL = EMULATED
_REAL_NODE = {"key": EMULATED_LABEL, "operator": "DoesNotExist"}


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc.get("kind") == "Pod":
        spec = doc.setdefault("spec", {})
        return spec if isinstance(spec, dict) else None
    template = (doc.get("spec") or {}).get("template")
    if not isinstance(template, dict):
        return None
    spec = template.setdefault("spec", {})
    return spec if isinstance(spec, dict) else None


def keep_off_emulated_nodes(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The documents with every pod template restricted to non-emulated nodes (in place; returned for chaining)."""
    for doc in documents:
        spec = _pod_spec(doc)
        if spec is None:
            continue
        required = (
            spec.setdefault("affinity", {})
            .setdefault("nodeAffinity", {})
            .setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
        )
        terms = required.setdefault("nodeSelectorTerms", [])
        if not terms:
            terms.append({})
        for term in terms:  # terms are ORed: each must exclude emulated nodes
            expressions = term.setdefault("matchExpressions", [])
            if _REAL_NODE not in expressions:
                expressions.append(dict(_REAL_NODE))
    return documents
