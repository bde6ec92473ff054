"""The store's optimistic-concurrency answers: a write or delete naming a uid or resourceVersion the stored object no
longer has is a 409 Conflict with kube's message text (clients and kubectl show it verbatim)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.embedded import apierrors
from harness.embedded.resources import Registry
from harness.embedded.store import Store

NS = "t"


@pytest.fixture
def store() -> Store:
    store = Store(Registry.with_builtins())
    store.create(
        store.registry.get("", "namespaces"), "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    )
    return store


def _config_map(store: Store) -> dict[str, Any]:
    rtype = store.registry.get("", "configmaps")
    return store.create(rtype, NS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}, uid="u-1")


def _conflict(call: Any) -> str:
    with pytest.raises(apierrors.ApiError) as info:
        call()
    assert info.value.code == 409 and info.value.reason == "Conflict"
    return info.value.message


def test_replace_refuses_a_stale_resource_version_and_a_foreign_uid(store: Store) -> None:
    rtype = store.registry.get("", "configmaps")
    stored = _config_map(store)
    rv = stored["metadata"]["resourceVersion"]
    store.replace(rtype, NS, "c", {"metadata": {"name": "c"}, "data": {"k": "1"}}, expect_rv=rv)
    stale = _conflict(lambda: store.replace(rtype, NS, "c", {"metadata": {"name": "c"}}, expect_rv=rv))
    assert stale == (
        'Operation cannot be fulfilled on configmaps "c": the object has been modified; please apply your changes '
        "to the latest version and try again"
    )
    foreign = _conflict(lambda: store.replace(rtype, NS, "c", {"metadata": {"name": "c", "uid": "u-2"}}))
    assert foreign == (
        'Operation cannot be fulfilled on configmaps "c": Precondition failed: UID in precondition: u-2, '
        "UID in object meta: u-1"
    )
    assert store.get(rtype, NS, "c")["data"] == {"k": "1"}, "a refused write changed the object"


def test_delete_checks_uid_and_resource_version_preconditions(store: Store) -> None:
    rtype = store.registry.get("", "configmaps")
    rv = _config_map(store)["metadata"]["resourceVersion"]
    uid_message = _conflict(lambda: store.delete(rtype, NS, "c", precondition_uid="u-2"))
    assert uid_message.endswith('"c": Precondition failed: UID in precondition: u-2, UID in object meta: u-1')
    rv_message = _conflict(lambda: store.delete(rtype, NS, "c", precondition_rv="1"))
    assert rv_message.endswith(
        f'"c": Precondition failed: ResourceVersion in precondition: 1, ResourceVersion in object meta: {rv}'
    )
    assert store.find(rtype.key, NS, "c") is not None, "a refused delete removed the object"
    _, removed = store.delete(rtype, NS, "c", precondition_uid="u-1", precondition_rv=rv)
    assert removed and store.find(rtype.key, NS, "c") is None
