"""Server-side Table output must look like a real cluster's `kubectl get` (harness/embedded/tables.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from harness.embedded.tables import human_duration, parse_timestamp, to_table

NOW = datetime(2025, 1, 10, 12, 0, 0, tzinfo=UTC)


def ts(ago: timedelta) -> str:
    return (NOW - ago).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, ago: timedelta = timedelta(minutes=5), **extra: object) -> dict:
    return {"name": name, "namespace": "team-a", "uid": f"uid-{name}", "creationTimestamp": ts(ago), **extra}


def table(kind: str, *items: dict, **kwargs: object) -> dict:
    return to_table(kind, list(items), now=NOW, list_meta={"resourceVersion": "42"}, **kwargs)


def cells(kind: str, item: dict) -> dict[str, object]:
    """Cells keyed by column name, so assertions read like kubectl output."""
    result = table(kind, item)
    names = [c["name"] for c in result["columnDefinitions"]]
    (row,) = result["rows"]
    assert len(row["cells"]) == len(names)
    return dict(zip(names, row["cells"], strict=True))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-0.5, "0s"),
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (182, "3m2s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600 + 60 * 5, "3h5m"),
        (5 * 3600, "5h"),
        (20 * 3600, "20h"),
        (2 * 86400 + 3 * 3600, "2d3h"),
        (3 * 86400, "3d"),
        (30 * 86400, "30d"),
        (3 * 365 * 86400 + 10 * 86400, "3y10d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_parse_timestamp_variants() -> None:
    assert parse_timestamp("2025-01-10T12:00:00Z") == NOW
    assert parse_timestamp("2025-01-10T12:00:00.000000Z") == NOW
    assert parse_timestamp(None) is None
    assert parse_timestamp("garbage") is None


def test_table_envelope_and_include_object() -> None:
    pod = {"kind": "Pod", "apiVersion": "v1", "metadata": meta("p"), "spec": {"containers": [{"name": "c"}]}}
    result = table("Pod", pod)
    assert result["kind"] == "Table"
    assert result["apiVersion"] == "meta.k8s.io/v1"
    assert result["metadata"] == {"resourceVersion": "42"}
    for column in result["columnDefinitions"]:
        assert set(column) == {"name", "type", "format", "description", "priority"}
    assert result["rows"][0]["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": pod["metadata"],
    }
    assert table("Pod", pod, include_object="Object")["rows"][0]["object"] == pod
    assert "object" not in table("Pod", pod, include_object="None")["rows"][0]
    with pytest.raises(ValueError, match="includeObject"):
        table("Pod", pod, include_object="Everything")


def test_pod_columns_and_wide_priorities() -> None:
    result = table("Pod")
    assert [(c["name"], c["priority"]) for c in result["columnDefinitions"]] == [
        ("Name", 0),
        ("Ready", 0),
        ("Status", 0),
        ("Restarts", 0),
        ("Age", 0),
        ("IP", 1),
        ("Node", 1),
        ("Nominated Node", 1),
        ("Readiness Gates", 1),
    ]
    assert result["rows"] == []


def running(name: str, *, ready: bool = True, restarts: int = 0, last_finished: str | None = None) -> dict:
    status: dict = {"name": name, "ready": ready, "restartCount": restarts, "state": {"running": {}}}
    if last_finished:
        status["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": last_finished}}
    return status


def test_pod_running_partially_ready_with_restarts() -> None:
    pod = {
        "metadata": meta("web-0", timedelta(hours=2)),
        "spec": {
            "nodeName": "node-1",
            "containers": [{"name": "app"}, {"name": "side"}],
            "readinessGates": [{"conditionType": "example.com/lb"}],
        },
        "status": {
            "phase": "Running",
            "podIP": "127.0.10.2",
            "podIPs": [{"ip": "127.0.10.2"}],
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "example.com/lb", "status": "True"}],
            "containerStatuses": [
                running("app", restarts=3, last_finished=ts(timedelta(seconds=5))),
                running("side", ready=False, restarts=2),
            ],
        },
    }
    row = cells("Pod", pod)
    assert row == {
        "Name": "web-0",
        "Ready": "1/2",
        "Status": "Running",
        "Restarts": "5 (5s ago)",
        "Age": "120m",
        "IP": "127.0.10.2",
        "Node": "node-1",
        "Nominated Node": "<none>",
        "Readiness Gates": "1/1",
    }


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"waiting": {"reason": "CrashLoopBackOff"}}, "CrashLoopBackOff"),
        ({"waiting": {"reason": "ContainerCreating"}}, "ContainerCreating"),
        ({"terminated": {"exitCode": 0, "reason": "Completed"}}, "Completed"),
        ({"terminated": {"exitCode": 2, "reason": "Error"}}, "Error"),
        ({"terminated": {"exitCode": 137}}, "ExitCode:137"),
        ({"terminated": {"exitCode": 0, "signal": 9}}, "Signal:9"),
    ],
)
def test_pod_status_from_container_state(state: dict, expected: str) -> None:
    pod = {
        "metadata": meta("p"),
        "spec": {"containers": [{"name": "c"}]},
        "status": {"phase": "Running", "containerStatuses": [{"name": "c", "ready": False, "state": state}]},
    }
    assert cells("Pod", pod)["Status"] == expected


def test_pod_pending_unscheduled() -> None:
    pod = {"metadata": meta("p"), "spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Pending"}}
    row = cells("Pod", pod)
    assert (row["Ready"], row["Status"], row["Restarts"], row["Node"], row["IP"]) == (
        "0/1",
        "Pending",
        "0",
        "<none>",
        "<none>",
    )


def test_pod_init_containers() -> None:
    base = {
        "metadata": meta("p"),
        "spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "c"}]},
    }
    waiting = {
        **base,
        "status": {
            "phase": "Pending",
            "initContainerStatuses": [
                {"name": "i1", "state": {"terminated": {"exitCode": 0}}},
                {"name": "i2", "state": {"running": {}}},
            ],
        },
    }
    assert cells("Pod", waiting)["Status"] == "Init:1/2"
    failing = {
        **base,
        "status": {
            "phase": "Pending",
            "initContainerStatuses": [
                {"name": "i1", "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
            ],
        },
    }
    row = cells("Pod", failing)
    assert (row["Status"], row["Restarts"]) == ("Init:CrashLoopBackOff", "4")
    errored = {
        **base,
        "status": {
            "phase": "Pending",
            "initContainerStatuses": [{"name": "i1", "state": {"terminated": {"exitCode": 3}}}],
        },
    }
    assert cells("Pod", errored)["Status"] == "Init:ExitCode:3"


def test_pod_sidecar_init_container_counts_as_container() -> None:
    pod = {
        "metadata": meta("p"),
        "spec": {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}], "containers": [{"name": "c"}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
            "initContainerStatuses": [
                {"name": "proxy", "started": True, "ready": True, "restartCount": 1, "state": {"running": {}}}
            ],
            "containerStatuses": [running("c")],
        },
    }
    row = cells("Pod", pod)
    assert (row["Ready"], row["Status"], row["Restarts"]) == ("2/2", "Running", "1")


def test_pod_terminating_and_completed_conditions() -> None:
    pod = {
        "metadata": meta("p", deletionTimestamp=ts(timedelta(seconds=1))),
        "spec": {"containers": [{"name": "c"}]},
        "status": {"phase": "Running", "containerStatuses": [running("c")]},
    }
    assert cells("Pod", pod)["Status"] == "Terminating"
    done = {
        "metadata": meta("job-x"),
        "spec": {"containers": [{"name": "c"}]},
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [{"name": "c", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
        },
    }
    (row,) = table("Pod", done)["rows"]
    assert row["cells"][1:3] == ["0/1", "Completed"]
    assert row["conditions"][0]["type"] == "Completed"


def test_node_row() -> None:
    node = {
        "metadata": meta(
            "gpu-1",
            timedelta(days=2, hours=3),
            labels={"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/worker": "", "x": "y"},
        ),
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": "gpu-1"}],
            "nodeInfo": {"kubeletVersion": "v1.31.0", "osImage": "Ubuntu 22.04", "kernelVersion": "6.5.0"},
        },
    }
    assert cells("Node", node) == {
        "Name": "gpu-1",
        "Status": "Ready,SchedulingDisabled",
        "Roles": "control-plane,worker",
        "Age": "2d3h",
        "Version": "v1.31.0",
        "Internal-IP": "127.0.0.1",
        "External-IP": "<none>",
        "OS-Image": "Ubuntu 22.04",
        "Kernel-Version": "6.5.0",
        "Container-Runtime": "<unknown>",
    }
    not_ready = {"metadata": meta("n"), "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}
    row = cells("Node", not_ready)
    assert (row["Status"], row["Roles"]) == ("NotReady", "<none>")
    assert cells("Node", {"metadata": meta("n")})["Status"] == "Unknown"


def job(conditions: list[dict], **status: object) -> dict:
    return {
        "metadata": meta("train", timedelta(minutes=10)),
        "spec": {
            "completions": 4,
            "parallelism": 2,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}},
            "template": {"spec": {"containers": [{"name": "t", "image": "python:3.11"}, {"name": "s", "image": "x"}]}},
        },
        "status": {"conditions": conditions, **status},
    }


def test_job_rows() -> None:
    running_job = job([], startTime=ts(timedelta(minutes=3, seconds=2)), succeeded=1)
    assert cells("Job", running_job) == {
        "Name": "train",
        "Status": "Running",
        "Completions": "1/4",
        "Duration": "3m2s",
        "Age": "10m",
        "Containers": "t,s",
        "Images": "python:3.11,x",
        "Selector": "batch.kubernetes.io/controller-uid=abc",
    }
    complete = job(
        [{"type": "Complete", "status": "True"}],
        startTime=ts(timedelta(minutes=9)),
        completionTime=ts(timedelta(minutes=8, seconds=55)),
        succeeded=4,
    )
    row = cells("Job", complete)
    assert (row["Status"], row["Completions"], row["Duration"]) == ("Complete", "4/4", "5s")
    assert cells("Job", job([{"type": "Failed", "status": "True"}]))["Status"] == "Failed"
    assert cells("Job", job([{"type": "Suspended", "status": "True"}]))["Status"] == "Suspended"
    assert cells("Job", job([{"type": "Complete", "status": "False"}]))["Duration"] == ""
    no_completions = job([])
    del no_completions["spec"]["completions"]
    assert cells("Job", no_completions)["Completions"] == "0/1 of 2"


def test_workload_rows() -> None:
    template = {"spec": {"containers": [{"name": "app", "image": "nginx"}]}}
    deploy = {
        "metadata": meta("web"),
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    assert list(cells("Deployment", deploy).values()) == ["web", "2/3", 3, 2, "5m", "app", "nginx", "app=web"]
    rs = {"metadata": meta("web-abc"), "spec": {"replicas": 3, "template": template}, "status": {"replicas": 3}}
    assert list(cells("ReplicaSet", rs).values())[:4] == ["web-abc", 3, 3, 0]
    assert cells("ReplicaSet", rs)["Selector"] == ""  # kube prints nothing, not <none>, for an empty one
    rs["spec"]["selector"] = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "Exists"}],
    }
    assert cells("ReplicaSet", rs)["Selector"] == "app=web,tier"
    rc = {
        "metadata": meta("legacy"),
        "spec": {"replicas": 2, "selector": {"tier": "db", "app": "web"}, "template": template},
        "status": {"replicas": 2, "readyReplicas": 1},
    }
    assert list(cells("ReplicationController", rc).values()) == [
        "legacy", 2, 2, 1, "5m", "app", "nginx", "app=web,tier=db"
    ]  # fmt: skip
    del rc["spec"]["selector"]
    assert cells("ReplicationController", rc)["Selector"] == "<none>"
    sts = {"metadata": meta("db"), "spec": {"template": template}, "status": {"readyReplicas": 1}}
    assert list(cells("StatefulSet", sts).values()) == ["db", "1/1", "5m", "app", "nginx"]
    ds = {
        "metadata": meta("agent"),
        "spec": {"template": {"spec": {"nodeSelector": {"gpu": "true"}, "containers": []}}},
        "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1},
    }
    row = cells("DaemonSet", ds)
    assert (row["Desired"], row["Ready"], row["Node Selector"], row["Selector"]) == (2, 1, "gpu=true", "<none>")


def test_service_rows() -> None:
    svc = {
        "metadata": meta("web"),
        "spec": {
            "type": "NodePort",
            "clusterIP": "127.0.20.1",
            "clusterIPs": ["127.0.20.1"],
            "selector": {"app": "web"},
            "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}, {"port": 53, "protocol": "UDP"}],
        },
    }
    assert cells("Service", svc) == {
        "Name": "web",
        "Type": "NodePort",
        "Cluster-IP": "127.0.20.1",
        "External-IP": "<none>",
        "Port(s)": "80:30080/TCP,53/UDP",
        "Age": "5m",
        "Selector": "app=web",
    }
    lb = {"metadata": meta("lb"), "spec": {"type": "LoadBalancer", "clusterIPs": ["None"], "ports": [{"port": 80}]}}
    row = cells("Service", lb)
    assert (row["External-IP"], row["Cluster-IP"], row["Port(s)"], row["Selector"]) == (
        "<pending>",
        "None",
        "80/TCP",
        "<none>",
    )


def test_endpoints_rows() -> None:
    subsets = [{"addresses": [{"ip": f"127.0.10.{i}"} for i in range(1, 6)], "ports": [{"port": 8080}]}]
    row = cells("Endpoints", {"metadata": meta("web"), "subsets": subsets})
    assert row["Endpoints"] == "127.0.10.1:8080,127.0.10.2:8080,127.0.10.3:8080 + 2 more..."
    assert cells("Endpoints", {"metadata": meta("none")})["Endpoints"] == "<none>"


def test_config_and_namespace_rows() -> None:
    ns = {"metadata": meta("team-a", timedelta(seconds=30)), "status": {"phase": "Active"}}
    assert list(cells("Namespace", ns).values()) == ["team-a", "Active", "30s"]
    cm = {"metadata": meta("cfg"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}
    assert list(cells("ConfigMap", cm).values()) == ["cfg", 3, "5m"]
    secret = {"metadata": meta("tok"), "type": "kubernetes.io/service-account-token", "data": {"token": "eA=="}}
    assert list(cells("Secret", secret).values()) == ["tok", "kubernetes.io/service-account-token", 1, "5m"]


def test_storage_rows() -> None:
    pvc = {
        "metadata": meta("data"),
        "spec": {"storageClassName": "local-path", "volumeName": "pv-1", "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": "Bound", "accessModes": ["ReadWriteMany", "ReadWriteOnce"], "capacity": {"storage": "2Gi"}},
    }
    row = cells("PersistentVolumeClaim", pvc)
    assert (row["Status"], row["Volume"], row["Capacity"], row["Access Modes"], row["StorageClass"]) == (
        "Bound",
        "pv-1",
        "2Gi",
        "RWO,RWX",
        "local-path",
    )
    pending = {"metadata": meta("p"), "spec": {"storageClassName": "local-path"}, "status": {"phase": "Pending"}}
    row = cells("PersistentVolumeClaim", pending)
    assert (row["Volume"], row["Capacity"], row["Access Modes"]) == ("", "", "")
    pv = {
        "metadata": meta("pv-1"),
        "spec": {
            "capacity": {"storage": "2Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "claimRef": {"namespace": "team-a", "name": "data"},
            "storageClassName": "local-path",
        },
        "status": {"phase": "Bound"},
    }
    row = cells("PersistentVolume", pv)
    assert (row["Capacity"], row["Access Modes"], row["Reclaim Policy"], row["Status"], row["Claim"]) == (
        "2Gi",
        "RWO",
        "Delete",
        "Bound",
        "team-a/data",
    )
    sc = {
        "metadata": meta("local-path", annotations={"storageclass.kubernetes.io/is-default-class": "true"}),
        "provisioner": "rancher.io/local-path",
        "volumeBindingMode": "WaitForFirstConsumer",
    }
    assert list(cells("StorageClass", sc).values()) == [
        "local-path (default)",
        "rancher.io/local-path",
        "Delete",
        "WaitForFirstConsumer",
        False,
        "5m",
    ]


def test_event_rows() -> None:
    event = {
        "metadata": meta("p.123"),
        "type": "Warning",
        "reason": "FailedScheduling",
        "message": "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.\n",
        "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": ""},
        "source": {"component": "default-scheduler"},
        "firstTimestamp": ts(timedelta(minutes=4)),
        "lastTimestamp": ts(timedelta(seconds=20)),
        "count": 7,
    }
    assert cells("Event", event) == {
        "Last Seen": "20s",
        "Type": "Warning",
        "Reason": "FailedScheduling",
        "Object": "pod/p",
        "Subobject": "",
        "Source": "default-scheduler",
        "Message": "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.",
        "First Seen": "4m",
        "Count": 7,
        "Name": "p.123",
    }
    micro = {
        "metadata": meta("e2"),
        "eventTime": (NOW - timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "involvedObject": {"kind": "Node"},
        "reportingComponent": "kubelet",
        "reportingInstance": "node-1",
    }
    row = cells("Event", micro)
    assert (row["Last Seen"], row["First Seen"], row["Object"], row["Source"], row["Count"]) == (
        "3s",
        "3s",
        "node",
        "kubelet, node-1",
        1,
    )


def test_crd_and_default_rows() -> None:
    crd = {"metadata": meta("widgets.example.com")}
    result = table("CustomResourceDefinition", crd)
    assert [c["name"] for c in result["columnDefinitions"]] == ["Name", "Created At"]
    assert result["columnDefinitions"][1]["type"] == "date"
    assert result["rows"][0]["cells"] == ["widgets.example.com", crd["metadata"]["creationTimestamp"]]
    for kind in ("Role", "ClusterRole"):
        role = {"metadata": meta("reader")}
        assert cells(kind, role) == {"Name": "reader", "Created At": role["metadata"]["creationTimestamp"]}
    sa = {"metadata": meta("default", timedelta(days=400))}
    assert cells("ServiceAccount", sa) == {"Name": "default", "Age": "400d"}
    assert cells("ServiceAccount", {"metadata": {"name": "x"}})["Age"] == "<unknown>"


def test_custom_resource_printer_columns() -> None:
    widget = {
        "metadata": meta("w1"),
        "spec": {"size": 3, "enabled": True, "replicas": [{"zone": "a"}]},
        "status": {"phase": "Ready"},
    }
    columns = [
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
        {"name": "Enabled", "type": "string", "jsonPath": ".spec.enabled", "priority": 1},
        {"name": "Zone", "type": "string", "jsonPath": ".spec.replicas[0].zone"},
        {"name": "Missing", "type": "string", "jsonPath": ".spec.nothing"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    result = table("Widget", widget, printer_columns=columns)
    assert [c["name"] for c in result["columnDefinitions"]] == [
        "Name",
        "Phase",
        "Size",
        "Enabled",
        "Zone",
        "Missing",
        "Age",
    ]
    assert result["columnDefinitions"][3]["priority"] == 1
    assert result["rows"][0]["cells"] == ["w1", "Ready", 3, "true", "a", None, widget["metadata"]["creationTimestamp"]]
