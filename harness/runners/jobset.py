"""JobSet workloads (jobset.x-k8s.io/v1alpha2, the multi-host TPU form on GKE): apply the JobSet, wait for its
Completed condition, return every pod's log.

Why a runner of its own: the JobSet is not a Job; its child Jobs and pods come from the JobSet controller, and the
run labels must be put into each replicated Job's pod template by hand (the generic applier labels only the
top-level object and ``spec.template``). Failures are decided at once where possible: the JobSet's Failed
condition, an unschedulable pod (with the scheduler's message), a container that cannot start.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Mapping

from harness.catalog.render import Rendered
from harness.runners.custom import ConditionResource

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "jobset.x-k8s.io", "v1alpha2", "jobsets"


def with_pod_labels(rendered: Rendered, labels: Mapping[str, str]) -> Rendered:
    """The rendered documents with ``labels`` on the pod template of every replicated Job of every JobSet."""
    documents = []
    for original in rendered.documents:
        if original.get("kind") != "JobSet":
            documents.append(original)
            continue
        doc = copy.deepcopy(original)
        for replicated in (doc.get("spec") or {}).get("replicatedJobs") or []:
            job_spec = replicated.setdefault("template", {}).setdefault("spec", {})
            meta = job_spec.setdefault("template", {}).setdefault("metadata", {})
            meta["labels"] = {**(meta.get("labels") or {}), **labels}
        documents.append(doc)
    return dataclasses.replace(rendered, documents=tuple(documents))


JOBSET = ConditionResource(
    kind="JobSet", group=GROUP, version=VERSION, plural=PLURAL, succeeded="Completed", label_pods=with_pod_labels
)
