"""The suite's own identity on the real control plane: ``deploy/rbac.yaml`` applied, a TokenRequest token minted.

A suite run against the real control plane authenticates exactly as the nightly CronJob does on a user's cluster
(the ServiceAccount ``k8s-ai-bench/k8s-ai-bench`` bound to the least-privilege ClusterRoles and fenced by the
ValidatingAdmissionPolicy), never as the admin that brought the control plane up. That way every Forbidden the
suite would meet on a real cluster is met here first.
"""

from __future__ import annotations

import ssl
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from harness.errors import ConfigError, TargetUnavailable
from harness.localkube.rest import AdminRest, ApiError

if TYPE_CHECKING:
    from harness.localkube.controlplane import LocalKube

__all__ = [
    "RBAC_MANIFEST",
    "SUITE_ACCOUNT",
    "SUITE_CONTEXT",
    "add_suite_context",
    "apply_rbac",
    "await_policy_enforced",
    "suite_token",
]

RBAC_MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "rbac.yaml"
SUITE_ACCOUNT = ("k8s-ai-bench", "k8s-ai-bench")  # namespace, name
SUITE_CONTEXT = "k8s-ai-bench"
TOKEN_LIFETIME_S = 6 * 3600
POLICY = "k8s-ai-bench-own-namespaces-only"  # deploy/rbac.yaml's ValidatingAdmissionPolicy


def apply_rbac(rest: AdminRest, manifest: Path = RBAC_MANIFEST) -> list[dict[str, Any]]:
    """Server-side apply every object of ``manifest`` in file order; returns them."""
    try:
        docs = [d for d in yaml.safe_load_all(manifest.read_text()) if isinstance(d, dict)]
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{manifest}: cannot read the suite's RBAC ({exc})") from None
    for doc in docs:
        try:
            rest.apply(doc)
        except ApiError as exc:
            kind, name = doc.get("kind"), doc.get("metadata", {}).get("name")
            raise TargetUnavailable(f"{manifest}: {kind} {name} refused by kube-apiserver: {exc}") from None
    return docs


def suite_token(rest: AdminRest, *, lifetime_s: int = TOKEN_LIFETIME_S, timeout_s: float = 30.0) -> str:
    """A TokenRequest token for the suite's ServiceAccount (bound to nothing, expiring after ``lifetime_s``)."""
    namespace, name = SUITE_ACCOUNT
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": lifetime_s}}
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            answer = rest.create(f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", body)
            return str(answer["status"]["token"])
        except ApiError as exc:
            # The ServiceAccount was applied a moment ago; the API may not serve it to the token endpoint yet.
            if exc.status != 404 or time.monotonic() > deadline:
                raise TargetUnavailable(f"TokenRequest for {namespace}/{name}: {exc}") from None
            time.sleep(0.2)


def add_suite_context(cluster: LocalKube) -> str:
    """Apply the suite's RBAC to a started control plane and add the ServiceAccount's token context to its
    kubeconfig; returns the context name (what ``--target local-kube``, ``cluster up`` and the lane tests use)."""
    assert cluster.rest is not None and cluster.pki is not None, "the control plane is not started"
    apply_rbac(cluster.rest)
    token = suite_token(cluster.rest)
    as_suite = AdminRest(
        cluster.rest.host, cluster.rest.port, ssl.create_default_context(cafile=str(cluster.pki.ca)), token
    )
    await_policy_enforced(as_suite)
    cluster.add_token_context(cluster.kubeconfig_path, context=SUITE_CONTEXT, token=token, namespace=SUITE_ACCOUNT[0])
    return SUITE_CONTEXT


def await_policy_enforced(as_suite: AdminRest, *, timeout_s: float = 30.0) -> None:
    """Wait until the admission policy fences the suite's account: kube-apiserver loads a new policy asynchronously,
    so writes right after applying it could still pass. Probed with a dry-run ConfigMap in ``default`` (RBAC allows
    it; only the policy denies it), which persists nothing."""
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "aibench-policy-probe"}}
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            as_suite.request("POST", "/api/v1/namespaces/default/configmaps", body, query={"dryRun": "All"})
            last = "a write outside the suite's namespaces was admitted"
        except ApiError as exc:
            if exc.status == 403 and POLICY in exc.message:
                return
            last = str(exc)
        time.sleep(0.2)
    raise TargetUnavailable(f"admission policy {POLICY} not enforced after {timeout_s:.0f} s ({last})")
