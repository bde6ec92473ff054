"""ServiceAccount tokens and the in-cluster environment: what an in-cluster client (``load_incluster_config``)
needs from the embedded target, in every namespace."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from eventually import eventually
from kubernetes import client
from kubernetes.config.incluster_config import InClusterConfigLoader

from harness.embedded.cluster import EmbeddedCluster
from harness.embedded.podenv import master_service_env
from harness.embedded.serviceaccounts import SERVICE_ACCOUNT_MOUNT
from harness.embedded.volumes import VolumeError, prepare_volume

SCRIPT = """\
from kubernetes import client, config
config.load_incluster_config()
pods = client.CoreV1Api().list_namespaced_pod(open("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read())
print("IN-CLUSTER", len(pods.items))
"""


def _pod(name: str, command: list[str], **spec: Any) -> dict[str, Any]:
    container = {"name": "c", "image": "python", "command": command}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [container], **spec}}


def _token_volume(pod: Any) -> dict[str, Any]:
    volumes = [v for v in pod["spec"]["volumes"] if v["name"].startswith("kube-api-access-")]
    assert len(volumes) == 1, pod["spec"].get("volumes")
    return dict(volumes[0])


def _lookup(cluster: EmbeddedCluster) -> Any:
    keys = {"ConfigMap": ("", "configmaps"), "Secret": ("", "secrets")}
    return lambda kind, namespace, name: cluster.store.find(keys[kind], namespace, name)


def test_pods_get_kubes_projected_token_volume(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    created = api.sanitize_for_serialization(core.create_namespaced_pod(ns, _pod("p", ["sleep", "60"])))
    volume = _token_volume(created)
    sources = volume["projected"]["sources"]
    assert sources[0] == {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"
    assert sources[2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"] == "metadata.namespace"
    mount = created["spec"]["containers"][0]["volumeMounts"][0]
    assert mount == {"name": volume["name"], "readOnly": True, "mountPath": SERVICE_ACCOUNT_MOUNT}
    opted_out = core.create_namespaced_pod(ns, _pod("q", ["sleep", "60"], automountServiceAccountToken=False))
    assert not opted_out.spec.volumes
    core.create_namespaced_service_account(
        ns,
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "quiet"},
            "automountServiceAccountToken": False,
        },
    )
    quiet = core.create_namespaced_pod(ns, _pod("r", ["sleep", "60"], serviceAccountName="quiet"))
    assert not quiet.spec.volumes


def test_in_cluster_client_with_the_projected_files(
    host_cluster: EmbeddedCluster, api: client.ApiClient, ns: str, tmp_path: Path
) -> None:
    """The projected volume as the kubelet writes it, then ``load_incluster_config`` exactly as in a pod."""
    core = client.CoreV1Api(api)
    pod = api.sanitize_for_serialization(core.create_namespaced_pod(ns, _pod("client", ["sleep", "60"])))
    pod = host_cluster.store.find(("", "pods"), ns, "client")
    directory = prepare_volume(
        pod, _token_volume(pod), tmp_path, _lookup(host_cluster), tokens=host_cluster.api.pod_token
    )
    assert (directory / "namespace").read_text() == ns
    assert (directory / "ca.crt").read_text().startswith("-----BEGIN CERTIFICATE-----")
    host, port = host_cluster.server_url.removeprefix("https://").split(":")
    loader = InClusterConfigLoader(
        token_filename=str(directory / "token"),
        cert_filename=str(directory / "ca.crt"),
        environ=master_service_env(host, int(port)),
    )
    configuration = client.Configuration()
    loader.load_and_set(configuration)
    in_cluster = client.ApiClient(configuration)
    names = [p.metadata.name for p in client.CoreV1Api(in_cluster).list_namespaced_pod(ns).items]
    assert "client" in names
    review = client.AuthenticationV1Api(in_cluster).create_self_subject_review(client.V1SelfSubjectReview())
    assert review.status.user_info.username == f"system:serviceaccount:{ns}:default"
    assert review.status.user_info.extra["authentication.kubernetes.io/pod-name"] == ["client"]
    # The token is bound to the pod: it stops working when the pod is gone.
    core.delete_namespaced_pod("client", ns, grace_period_seconds=0)
    eventually(lambda: host_cluster.store.find(("", "pods"), ns, "client") is None, what="pod gone")
    with pytest.raises(client.ApiException) as exc:
        client.CoreV1Api(in_cluster).list_namespaced_pod(ns)
    assert exc.value.status == 401


def test_no_token_for_a_missing_service_account(host_cluster: EmbeddedCluster, ns: str) -> None:
    pod = {"metadata": {"name": "x", "namespace": ns, "uid": "u"}, "spec": {"serviceAccountName": "ghost"}}
    with pytest.raises(VolumeError, match='serviceaccounts "ghost" not found'):
        host_cluster.api.pod_token(pod, {"path": "token"})


def test_master_service_env_names_the_api_server() -> None:
    env = master_service_env("127.0.0.1", 6443)
    assert env["KUBERNETES_SERVICE_HOST"] == "127.0.0.1" and env["KUBERNETES_SERVICE_PORT"] == "6443"
    assert env["KUBERNETES_PORT_6443_TCP"] == "tcp://127.0.0.1:6443"


def test_in_cluster_client_inside_a_pod(api: client.ApiClient, ns: str) -> None:
    """End to end: a pod in a fresh namespace runs the official client's in-cluster config."""
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(ns, _pod("incluster", [sys.executable, "-c", SCRIPT], restartPolicy="Never"))
    phase = eventually(
        lambda: (
            core.read_namespaced_pod("incluster", ns).status.phase in ("Succeeded", "Failed")
            and core.read_namespaced_pod("incluster", ns).status.phase
        ),
        timeout_s=60,
        what="the in-cluster client pod to finish",
    )
    log = core.read_namespaced_pod_log("incluster", ns)
    assert phase == "Succeeded" and "IN-CLUSTER" in log, log
