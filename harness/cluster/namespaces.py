"""Per-test namespaces labelled with the run and the test, removed afterwards whatever happened.

Labels (``aibench.io/run-id``, ``aibench.io/test``) make every object of a run findable, so teardown, the
``sweep`` command and people debugging with kubectl all select the same set.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.cluster.wait import wait_for

log = logging.getLogger(__name__)

RUN_LABEL = "aibench.io/run-id"
TEST_LABEL = "aibench.io/test"
# which catalog workload an object (and its pods) belongs to: readable in kubectl, and how the embedded target picks
# a pod's emulated output on emulated nodes (harness.embedded.emulated_workloads reads the same key)
WORKLOAD_LABEL = "aibench.io/workload"
MANAGED_LABEL = "app.kubernetes.io/managed-by"
MANAGER = "k8s-ai-bench"


def label_value(text: str) -> str:
    """A valid label value for any text (test node ids hold '/', '::', brackets): sanitised, hash-suffixed if cut."""
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")
    if len(clean) <= 63:
        return clean or "x"
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return clean[:54].rstrip("-_.") + "-" + digest


def namespace_name(run_id: str, test: str) -> str:
    """``aib-<short test>-<hash>``: a DNS label, unique per run and test, readable in ``kubectl get ns``."""
    digest = hashlib.sha256(f"{run_id}/{test}".encode()).hexdigest()[:8]
    short = re.sub(r"[^a-z0-9-]+", "-", test.rsplit("::", maxsplit=1)[-1].lower()).strip("-")[:40].strip("-")
    return f"aib-{short}-{digest}" if short else f"aib-{digest}"


def run_labels(run_id: str, test: str, *, workload: str = "") -> dict[str, str]:
    """The labels of everything a test creates; ``workload`` (a catalog name) also for what a workload run applies."""
    labels = {RUN_LABEL: label_value(run_id), TEST_LABEL: label_value(test), MANAGED_LABEL: MANAGER}
    if workload:
        labels[WORKLOAD_LABEL] = label_value(workload)
    return labels


def delete_namespace(api_client: client.ApiClient, name: str, *, timeout_s: float, wait: bool = True) -> None:
    """Delete and (by default) wait until it is gone; a namespace that is already gone is fine."""
    core = client.CoreV1Api(api_client)
    try:
        core.delete_namespace(name, propagation_policy="Foreground")
    except ApiException as exc:
        if exc.status == 404:
            return
        raise
    if not wait:
        return

    def gone() -> bool:
        try:
            core.read_namespace(name)
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return False

    wait_for(gone, timeout_s=timeout_s, describe=f"namespace {name} to be deleted", state=lambda _: "still present")


@contextmanager
def scoped_namespace(
    api_client: client.ApiClient,
    *,
    run_id: str,
    test: str,
    keep: bool = False,
    delete_timeout_s: float = 120.0,
    unreachable: Callable[[], str] | None = None,
) -> Iterator[str]:
    """Create the namespace of one test; delete it on exit (also on failure or Ctrl-C) unless ``keep``, or unless
    ``unreachable()`` says why the target can no longer be asked (it was lost mid-run: ``sweep`` removes it later)."""
    name = namespace_name(run_id, test)
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=run_labels(run_id, test))))
    log.info("created namespace %s for %s", name, test)
    try:
        yield name
    finally:
        gone = unreachable() if unreachable is not None else ""
        if keep:
            log.info("keeping namespace %s (--keep-namespaces)", name)
        elif gone:
            log.warning("namespace %s not deleted: %s (k8s-ai-bench sweep removes it later)", name, gone)
        else:
            delete_namespace(api_client, name, timeout_s=delete_timeout_s)
