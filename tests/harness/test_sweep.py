"""`sweep` removes the namespaces of dead runs and keeps those of live ones."""

from __future__ import annotations

from pathlib import Path

from eventually import eventually
from kubernetes import client

from harness.cluster.namespaces import delete_namespace, run_labels
from harness.cluster.sweep import mark_alive, sweep


def test_sweep_deletes_only_dead_runs(api: client.ApiClient, tmp_path: Path) -> None:
    core = client.CoreV1Api(api)
    reports = tmp_path / "reports"
    mark_alive(reports / "live-run")
    for name, run in (("aib-dead", "dead-run"), ("aib-live", "live-run")):
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=run_labels(run, "t"))))
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="not-ours")))
    try:
        result = sweep(api, reports, timeout_s=30)
        assert result.deleted == ("aib-dead",) and result.kept == ("aib-live",)
        names = {n.metadata.name for n in core.list_namespace().items}
        assert "aib-dead" not in names and {"aib-live", "not-ours"} <= names
        assert sweep(api, reports, everything=True, timeout_s=30).deleted == ("aib-live",)
    finally:
        for name in ("aib-live", "not-ours"):
            delete_namespace(api, name, timeout_s=30, wait=False)  # already gone is fine
        eventually(
            lambda: not {"aib-live", "not-ours"} & {n.metadata.name for n in core.list_namespace().items},
            what="cleanup",
        )
