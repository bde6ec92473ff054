"""Typed reads of the kubernetes client's models (harness/cluster/fields.py) and the evidence built from them: a pod
the server has not reported a status for yet (or a container with no state) is summarised, not a crash on the
failure path that is meant to explain a failure."""

from __future__ import annotations

from kubernetes import client

from harness.cluster.collect import _pod_summary, pod_phases
from harness.cluster.fields import (
    annotations_of,
    container_state,
    container_statuses,
    labels_of,
    name_of,
    pod_spec,
    pod_status,
)


def test_a_pod_without_status_or_spec_reads_as_empty() -> None:
    pod = client.V1Pod(metadata=client.V1ObjectMeta(name="p"))
    assert name_of(pod) == "p"
    assert labels_of(pod) == {} and annotations_of(pod) == {}
    assert pod_status(pod).phase is None
    assert pod_spec(pod).node_name is None and pod_spec(pod).containers == []
    assert container_statuses(pod) == []


def test_an_object_without_metadata_has_an_empty_name() -> None:
    assert name_of(client.V1Namespace()) == ""


def test_init_containers_come_first_and_a_missing_state_is_neither_waiting_nor_terminated() -> None:
    init = client.V1ContainerStatus(name="init", image="i", image_id="", ready=False, restart_count=0)
    main = client.V1ContainerStatus(name="main", image="i", image_id="", ready=False, restart_count=0)
    pod = client.V1Pod(status=client.V1PodStatus(init_container_statuses=[init], container_statuses=[main]))
    assert [cs.name for cs in container_statuses(pod)] == ["init", "main"]
    state = container_state(main)
    assert state.waiting is None and state.terminated is None and state.running is None


def test_evidence_of_a_pod_with_no_status_yet() -> None:
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="p", annotations={"aibench.io/emulated": "true"}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="main")]),
    )
    summary = _pod_summary(pod)
    assert (summary.name, summary.phase, summary.node, summary.reasons, summary.emulated) == (
        "p",
        "Unknown",
        "",
        (),
        True,
    )
    assert pod_phases([pod, pod]) == "2 Unknown"


def test_evidence_names_an_oom_killed_container_whose_state_is_set() -> None:
    terminated = client.V1ContainerStateTerminated(exit_code=137, reason="OOMKilled")
    status = client.V1ContainerStatus(
        name="main",
        image="i",
        image_id="",
        ready=False,
        restart_count=0,
        state=client.V1ContainerState(terminated=terminated),
    )
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="p"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="main")], node_name="n1"),
        status=client.V1PodStatus(phase="Failed", container_statuses=[status]),
    )
    summary = _pod_summary(pod)
    assert (summary.phase, summary.node, summary.reasons) == ("Failed", "n1", ("main: OOMKilled (exit 137)",))
