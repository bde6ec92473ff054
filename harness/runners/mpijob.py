"""Multi-node MPI workloads through the MPI Operator: apply an MPIJob (kubeflow.org/v2beta1), wait for it to
succeed, return its launcher's and workers' logs.

Why a runner of its own: the MPIJob is not a Job, its pods come from the operator (launcher Job + worker pods),
and the run labels must be put into its replica templates by hand (the generic applier labels only
``spec.template``). Failures are decided at once where possible (the MPIJob's Failed condition, an unschedulable
worker, a container that cannot start); a run that never finishes times out with the launcher's last log lines,
which for NCCL are the ranks' last words before the hang. A target without the operator fails before anything is
applied, naming the CRD (suites skip on ``requires('mpijob')`` first).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Mapping

from harness.catalog.render import Rendered
from harness.cluster.collect import Evidence
from harness.runners.custom import ConditionResource

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "kubeflow.org", "v2beta1", "mpijobs"
LAUNCHER_TAIL_LINES = 20


def with_replica_labels(rendered: Rendered, labels: Mapping[str, str]) -> Rendered:
    """The rendered documents with ``labels`` added to every MPIJob replica's pod template (so the run's pods
    carry the run and test labels like every other workload's)."""
    documents = []
    for original in rendered.documents:
        doc = copy.deepcopy(original) if original.get("kind") == "MPIJob" else original
        if doc is not original:
            for replica in ((doc.get("spec") or {}).get("mpiReplicaSpecs") or {}).values():
                meta = replica.setdefault("template", {}).setdefault("metadata", {})
                meta["labels"] = {**(meta.get("labels") or {}), **labels}
        documents.append(doc)
    return dataclasses.replace(rendered, documents=tuple(documents))


def _launcher_tail(evidence: Evidence) -> str:
    """The launcher's last lines: for NCCL, the ranks' last words before a hang."""
    return "; ".join(
        f"last lines of {k}: " + " / ".join(line for line in text.splitlines()[-LAUNCHER_TAIL_LINES:] if line)
        for k, text in evidence.logs.items()
        if "launcher" in k
    )


MPIJOB = ConditionResource(
    kind="MPIJob",
    group=GROUP,
    version=VERSION,
    plural=PLURAL,
    succeeded="Succeeded",
    label_pods=with_replica_labels,
    explain=_launcher_tail,
)
