"""The kinds kube serves that operators and kubectl rely on beyond workloads: Lease, RBAC, batch CronJob etc.

Driven through the official client over real HTTP against the session's embedded target.
"""

from __future__ import annotations

from datetime import UTC, datetime

from kubernetes import client

from harness.embedded.tables import to_table


def test_lease_heartbeat_round_trip(api: client.ApiClient, ns: str) -> None:
    """A node agent's heartbeat: create a Lease, renew it with an optimistic update, read it back."""
    coordination = client.CoordinationV1Api(api)
    now = datetime.now(UTC)
    lease = client.V1Lease(
        metadata=client.V1ObjectMeta(name="node-a"),
        spec=client.V1LeaseSpec(holder_identity="node-a", lease_duration_seconds=40, renew_time=now),
    )
    created = coordination.create_namespaced_lease(ns, lease)
    assert created.spec.holder_identity == "node-a" and created.metadata.resource_version
    created.spec.renew_time = datetime.now(UTC)
    renewed = coordination.replace_namespaced_lease("node-a", ns, created)
    assert int(renewed.metadata.resource_version) > int(created.metadata.resource_version)
    assert [item.metadata.name for item in coordination.list_namespaced_lease(ns).items] == ["node-a"]
    resources = {r.name for r in coordination.get_api_resources().resources}
    assert "leases" in resources


def test_lease_table_has_holder_column() -> None:
    lease = {"metadata": {"name": "n", "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"holderIdentity": "h"}}
    table = to_table("Lease", [lease], now=datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC), list_meta={})
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Holder", "Age"]
    assert table["rows"][0]["cells"] == ["n", "h", "5s"]
