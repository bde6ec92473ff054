"""Kueue gang admission helpers against the embedded target with Kueue's CRDs (no Kueue controller: the test
plays its part by unsuspending an admitted Job): queue objects are valid-shaped and cleaned up, a gang the
"controller" never admits starts no pod, and an admitted gang is seen Running as a whole on emulated nodes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client

from harness.catalog.validate import ManifestValidator
from harness.cluster.namespaces import run_labels
from harness.cluster.target import Connection
from harness.probes.kueue import KUEUE_API, QUEUE_LABEL, dedicated_queue, gang_job, queue_objects, submit_gang

LABELS = run_labels("run-kueue", "kueue-test")
KINDS = {"ResourceFlavor": ("resourceflavors", "Cluster"), "ClusterQueue": ("clusterqueues", "Cluster"),
         "LocalQueue": ("localqueues", "Namespaced"), "Workload": ("workloads", "Namespaced")}  # fmt: skip


@pytest.fixture(scope="module")
def kueue_crds(fabric_api: client.ApiClient) -> Iterator[None]:
    ext = client.ApiextensionsV1Api(fabric_api)
    group, version = KUEUE_API.split("/")
    names = []
    for kind, (plural, scope) in KINDS.items():
        crd = {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {
                "group": group,
                "scope": scope,
                "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": f"{kind}List"},
                "versions": [{"name": version, "served": True, "storage": True,
                              "schema": {"openAPIV3Schema": {"type": "object",
                                                             "x-kubernetes-preserve-unknown-fields": True}}}],
            },
        }  # fmt: skip
        ext.create_custom_resource_definition(crd)
        names.append(crd["metadata"]["name"])
    time.sleep(0.5)  # discovery refresh of the embedded API server
    yield
    for name in names:
        ext.delete_custom_resource_definition(name)


def test_objects_have_the_quota_for_exactly_the_gang() -> None:
    flavor, cluster_queue, local_queue = queue_objects(name="q", namespace="ns-a", pods=3)
    assert flavor["kind"] == "ResourceFlavor" and local_queue["spec"] == {"clusterQueue": "q"}
    quotas = cluster_queue["spec"]["resourceGroups"][0]["flavors"][0]["resources"]
    assert quotas == [{"name": "cpu", "nominalQuota": "300m"}, {"name": "memory", "nominalQuota": "96Mi"}]
    assert cluster_queue["spec"]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "ns-a"}}
    job = gang_job(name="g", queue="q", size=3, image="docker.io/library/busybox:1.36.1")
    assert job["metadata"]["labels"] == {QUEUE_LABEL: "q"} and job["spec"]["suspend"] is True
    validator = ManifestValidator()
    assert not validator.problems(job, source="kueue gang")
    for obj in (flavor, cluster_queue, local_queue):  # against Kueue's real CRD schemas (harness/catalog/crd_regen)
        assert not validator.problems(obj, source="kueue queues"), obj["kind"]


def test_a_misspelt_queue_field_is_what_kueue_would_prune() -> None:
    _, cluster_queue, _ = queue_objects(name="q", namespace="ns-a", pods=3)
    cluster_queue["spec"]["namespaceSelecter"] = cluster_queue["spec"].pop("namespaceSelector")
    problems = ManifestValidator().problems(cluster_queue, source="kueue queues")
    assert problems and "'namespaceSelecter' was unexpected" in problems[0].message


def test_queue_is_created_and_removed(kueue_crds: None, fabric_api: client.ApiClient, fabric_ns: str) -> None:
    custom = client.CustomObjectsApi(fabric_api)
    group, version = KUEUE_API.split("/")
    with dedicated_queue(
        Connection(fabric_api), name="aibench-q1", namespace=fabric_ns, pods=2, labels=LABELS
    ) as queue:
        assert custom.get_cluster_custom_object(group, version, "clusterqueues", queue)["metadata"]["labels"]
        assert custom.get_namespaced_custom_object(group, version, fabric_ns, "localqueues", queue)
    for plural in ("clusterqueues", "resourceflavors"):
        with pytest.raises(client.ApiException) as gone:
            custom.get_cluster_custom_object(group, version, plural, "aibench-q1")
        assert gone.value.status == 404


def test_a_gang_never_admitted_starts_no_pod(kueue_crds: None, fabric_api: client.ApiClient, fabric_ns: str) -> None:
    job = gang_job(name="gang-big", queue="q", size=3, image="docker.io/library/busybox:1.36.1")
    outcome = submit_gang(
        Connection(fabric_api), job, namespace=fabric_ns, labels=LABELS, settle_s=2, expect_admission=False
    )
    assert (outcome.admitted, outcome.most_running, outcome.all_or_nothing) == (False, 0, True)


def test_an_admitted_gang_runs_as_a_whole(kueue_crds: None, fabric_api: client.ApiClient, fabric_ns: str) -> None:
    batch = client.BatchV1Api(fabric_api)

    def admit() -> None:  # what Kueue does once the quota is reserved: unsuspend the Job
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                batch.patch_namespaced_job("gang-fits", fabric_ns, {"spec": {"suspend": False}})
                return
            except client.ApiException:
                time.sleep(0.1)

    threading.Thread(target=admit, daemon=True).start()
    job = gang_job(name="gang-fits", queue="q", size=2, image="docker.io/library/busybox:1.36.1")
    outcome = submit_gang(
        Connection(fabric_api), job, namespace=fabric_ns, labels=LABELS, settle_s=20, expect_admission=True
    )
    assert (outcome.admitted, outcome.running, outcome.size) == (True, 2, 2)
