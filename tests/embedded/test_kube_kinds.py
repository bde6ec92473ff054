"""The kinds kube serves that operators and kubectl rely on beyond workloads: Lease, RBAC, batch CronJob etc.

Driven through the official client over real HTTP against the session's embedded target.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubernetes import client

from harness.embedded.cluster import EmbeddedCluster
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


# ----------------------------------------------------------------------------- RBAC stored; reviews answered honestly
REPO = Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on PATH")


def _kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True, timeout=60, check=False
    )


@needs_kubectl
def test_kubectl_applies_the_suites_rbac_and_lists_it(kubeconfig: Path, api: client.ApiClient) -> None:
    done = _kubectl(kubeconfig, "apply", "-f", str(REPO / "deploy" / "rbac.yaml"))
    assert done.returncode == 0, done.stderr
    assert "clusterrole.rbac.authorization.k8s.io/k8s-ai-bench-read" in done.stdout
    # The admission policy is kept but not evaluated, and kubectl tells the user so.
    assert "does not evaluate admission policies" in done.stderr
    rbac = client.RbacAuthorizationV1Api(api)
    read = rbac.read_cluster_role("k8s-ai-bench-read")
    assert any("pods" in (rule.resources or []) for rule in read.rules)
    binding = rbac.read_namespaced_role_binding("k8s-ai-bench-secret-read", "k8s-ai-bench")
    assert binding.subjects[0].name == "k8s-ai-bench" and binding.role_ref.kind == "ClusterRole"
    done = _kubectl(kubeconfig, "get", "clusterrolebinding", "k8s-ai-bench-read", "-o", "wide")
    assert "ClusterRole/k8s-ai-bench-read" in done.stdout and "k8s-ai-bench/k8s-ai-bench" in done.stdout


@needs_kubectl
def test_kubectl_auth_can_i_and_whoami(kubeconfig: Path, ns: str) -> None:
    done = _kubectl(kubeconfig, "auth", "can-i", "create", "pods", "-n", ns)
    assert (done.returncode, done.stdout.strip()) == (0, "yes"), done.stderr
    done = _kubectl(kubeconfig, "auth", "whoami", "-o", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"]["userInfo"]["username"] == "kubernetes-admin"
    # A ServiceAccount token minted through TokenRequest authenticates as that ServiceAccount.
    done = _kubectl(kubeconfig, "create", "token", "default", "-n", ns)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    done = _kubectl(kubeconfig, "--token", token, "auth", "whoami", "-o", "json")
    assert done.returncode == 0, done.stderr
    user = json.loads(done.stdout)["status"]["userInfo"]
    assert user["username"] == f"system:serviceaccount:{ns}:default"
    assert f"system:serviceaccounts:{ns}" in user["groups"]


def test_access_review_says_why_it_is_allowed(api: client.ApiClient) -> None:
    review = client.AuthorizationV1Api(api).create_self_subject_access_review(
        client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(verb="delete", resource="nodes")
            )
        )
    )
    assert review.status.allowed is True and "does not authorize" in review.status.reason
    rules = client.AuthorizationV1Api(api).create_self_subject_rules_review(
        client.V1SelfSubjectRulesReview(spec=client.V1SelfSubjectRulesReviewSpec(namespace="default"))
    )
    assert rules.status.resource_rules[0].verbs == ["*"] and "does not authorize" in rules.status.evaluation_error


def test_service_account_tokens_expire_and_die_with_their_account(
    host_cluster: EmbeddedCluster, api: client.ApiClient, ns: str
) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_service_account(ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="robot")))
    answer = core.create_namespaced_service_account_token(
        "robot",
        ns,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=["vault"], expiration_seconds=900)
        ),
    )
    assert answer.spec.audiences == ["vault"] and answer.spec.expiration_seconds == 900
    token = answer.status.token
    assert answer.status.expiration_timestamp > datetime.now(UTC)
    assert host_cluster.api.tokens.authenticate(token) is not None
    assert host_cluster.api.tokens.authenticate(token, now=time.time() + 901) is None  # expired
    assert host_cluster.api.tokens.authenticate(token[:-4] + "AAAA") is None  # signature broken
    core.delete_namespaced_service_account("robot", ns)
    assert host_cluster.api.tokens.authenticate(token) is None  # the account is gone


@needs_kubectl
def test_kubectl_sees_every_added_kind(kubeconfig: Path) -> None:
    done = _kubectl(kubeconfig, "api-resources", "-o", "name")
    assert done.returncode == 0, done.stderr
    names = set(done.stdout.split())
    assert {
        "leases.coordination.k8s.io",
        "roles.rbac.authorization.k8s.io",
        "clusterroles.rbac.authorization.k8s.io",
        "rolebindings.rbac.authorization.k8s.io",
        "clusterrolebindings.rbac.authorization.k8s.io",
        "selfsubjectaccessreviews.authorization.k8s.io",
        "selfsubjectreviews.authentication.k8s.io",
        "cronjobs.batch",
        "endpointslices.discovery.k8s.io",
        "poddisruptionbudgets.policy",
        "horizontalpodautoscalers.autoscaling",
        "replicationcontrollers",
    } <= names
    done = _kubectl(kubeconfig, "explain", "cronjob.spec.concurrencyPolicy")
    assert done.returncode == 0 and "Forbid" in done.stdout, done.stderr
