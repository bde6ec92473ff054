"""deploy/rbac.yaml grants exactly what harness/cluster/access.py says the code needs, and the code needs no more.

Why both directions: a grant the code lacks is a Forbidden in a nightly run; a grant the code does not use is
privilege nobody reviews. The source scan ties the list to the code: a typed-client call or an applied kind that
has no entry in access.py fails here first.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.cluster.access import (
    ACCESSES,
    APPLIED_KINDS,
    CLIENT_CALLS,
    CLUSTER_SCOPED_WRITES,
    NON_RESOURCE_URLS,
    NOT_GRANTED,
    needed,
)

ROOT = Path(__file__).resolve().parents[2]
RBAC = ROOT / "deploy" / "rbac.yaml"
SA = ("k8s-ai-bench", "k8s-ai-bench")
ROLES = {"read": "k8s-ai-bench-read", "write": "k8s-ai-bench-write", "secret-read": "k8s-ai-bench-secret-read"}
# typed-client methods, called or passed on (to stream(), watch, _optional()): <verb>_<thing>; look-alikes by name
_CALL = re.compile(r"\.((?:list|read|create|delete|patch|replace|connect_[a-z]+|get)_[a-z_]+)\s*[(,)]")
_NOT_API = {"read_text", "read_stdout", "read_stderr", "list_kube_config_contexts", "get_closest_marker",
            "get_result", "get_close_matches", "read_bytes", "get_json", "get_logger",
            "get_retry_after", "get_return_type", "create_default_context", "get_plugin",
            "get_template", "get_type_hints"}  # fmt: skip


def _documents() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(RBAC.read_text()) if d]


def _by(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in _documents() if d["kind"] == kind and d["metadata"]["name"] == name)


def _granted(role: str) -> set[tuple[str, str, str]]:
    rules = _by("ClusterRole", ROLES[role])["rules"]
    return {
        (group, resource, verb)
        for rule in rules
        if "resources" in rule
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def _sources() -> Iterator[Path]:
    for top in ("harness", "suites"):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            # the targets themselves (and the kubeconfig files they write) act as their own admin, not as the suite;
            # so does the node's pod network (harness/podnet: the NAD CRD the embedded target serves); the node agent
            # acts with the kubeconfig it is given (docs/node-agent.md lists what that needs)
            if (
                rel.startswith(("harness/embedded/", "harness/localkube/", "harness/node/", "harness/podnet/"))
                or rel == "harness/kubeconfig.py"
            ):
                continue
            yield path


@pytest.mark.parametrize("role", sorted(ROLES))
def test_cluster_role_grants_exactly_the_needed_accesses(role: str) -> None:
    granted, wanted = _granted(role), needed(role)  # type: ignore[arg-type]
    assert not wanted - granted, f"{ROLES[role]} lacks (add to {RBAC.name}): {sorted(wanted - granted)}"
    assert not granted - wanted, f"{ROLES[role]} grants what no code uses (remove it): {sorted(granted - wanted)}"


def test_rules_use_no_wildcards() -> None:
    for role in ROLES.values():
        for rule in _by("ClusterRole", role)["rules"]:
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(key, []), f"{role}: wildcard in {key}: {rule}"


def test_read_role_grants_the_discovery_urls() -> None:
    urls = [r for r in _by("ClusterRole", ROLES["read"])["rules"] if "nonResourceURLs" in r]
    assert urls == [{"nonResourceURLs": list(NON_RESOURCE_URLS), "verbs": ["get"]}]


def test_bindings_bind_the_service_account() -> None:
    subject = {"kind": "ServiceAccount", "name": SA[1], "namespace": SA[0]}
    for role in ("read", "write"):
        binding = _by("ClusterRoleBinding", ROLES[role])
        assert binding["roleRef"]["name"] == ROLES[role] and binding["subjects"] == [subject]
    secret = _by("RoleBinding", ROLES["secret-read"])
    assert secret["metadata"]["namespace"] == SA[0], "Secrets are readable only where the binding lives"
    assert secret["roleRef"]["name"] == ROLES["secret-read"] and secret["subjects"] == [subject]


def test_no_verb_the_code_never_uses() -> None:
    verbs = {v for a in ACCESSES for v in a.verbs}
    assert verbs <= {"get", "list", "watch", "create", "patch", "delete"}
    assert not any(a.role != "write" and set(a.verbs) & {"create", "patch", "delete"} for a in ACCESSES)


def test_every_typed_client_call_is_listed() -> None:
    unknown: dict[str, list[str]] = {}
    seen: set[str] = set()
    for path in _sources():
        for method in _CALL.findall(path.read_text()):
            seen.add(method)
            if method not in _NOT_API and method not in CLIENT_CALLS:
                unknown.setdefault(method, []).append(path.relative_to(ROOT).as_posix())
    assert not unknown, f"API calls missing from harness/cluster/access.py CLIENT_CALLS: {unknown}"
    stale = sorted(set(CLIENT_CALLS) - seen)
    assert not stale, f"CLIENT_CALLS lists calls no code makes any more (drop them and their grants): {stale}"


def test_every_listed_client_call_is_granted() -> None:
    wanted = needed()
    for method, accesses in CLIENT_CALLS.items():
        if method in NOT_GRANTED:
            continue
        missing = [a for a in accesses if a not in wanted]
        assert not missing, f"{method} needs {missing}, not in ACCESSES"


def test_not_granted_calls_stay_unused() -> None:
    """exec_in_pod is library code without a caller on a suite path; the day one appears, grant pods/exec."""
    users = [
        path.relative_to(ROOT).as_posix()
        for path in _sources()
        if re.search(r"from harness\.cluster\.podexec import|podexec\.exec_in_pod\(", path.read_text())
    ]
    assert set(NOT_GRANTED) == {"connect_get_namespaced_pod_exec"}
    assert not users, f"{users} use exec_in_pod: grant pods/exec (create, get) and cover CONNECT in the policy"


def _workload_kinds() -> set[tuple[str, str]]:
    kinds = set()
    for path in sorted((ROOT / "workloads").rglob("*.yaml")):
        if path.name == "workload.yaml":
            continue
        text = re.sub(r"\$\{[^}]*\}", "x", path.read_text())
        for doc in yaml.safe_load_all(text):
            if isinstance(doc, dict) and "kind" in doc:
                group = str(doc.get("apiVersion", "")).rpartition("/")[0]
                kinds.add((group, str(doc["kind"])))
    return kinds


def test_every_applied_kind_is_listed_and_granted() -> None:
    built = {
        kind
        for path in _sources()
        if path.is_relative_to(ROOT / "harness")
        for kind in re.findall(r'"kind": "([A-Z][A-Za-z]+)"', path.read_text())
    }
    by_kind = {kind: group for group, kind in APPLIED_KINDS}
    missing = sorted(k for k in _workload_kinds() if k not in APPLIED_KINDS)
    missing += sorted(k for k in built if k not in by_kind)
    assert not missing, f"kinds the harness creates but access.py APPLIED_KINDS lacks: {missing}"
    writes = needed("write")
    for (group, _kind), resource in APPLIED_KINDS.items():
        assert (group, resource, "create") in writes, f"create {group}/{resource} is not granted"


def test_applier_kinds_can_be_patched_on_conflict() -> None:
    """The Applier merge-patches an object that already exists (409), so every workload kind needs patch too."""
    writes = needed("write")
    for group, kind in _workload_kinds():
        assert (group, APPLIED_KINDS[(group, kind)], "patch") in writes, f"patch {group}/{kind}"
    for group, resource in CLUSTER_SCOPED_WRITES:  # kueue.dedicated_queue deletes them by name
        assert (group, resource, "delete") in writes


def test_admission_policy_admits_exactly_the_suite_cluster_scoped_kinds() -> None:
    policy = _by("ValidatingAdmissionPolicy", "k8s-ai-bench-own-namespaces-only")
    spec = policy["spec"]
    assert spec["failurePolicy"] == "Fail"
    assert spec["matchConditions"][0]["expression"].endswith(f'"system:serviceaccount:{SA[0]}:{SA[1]}"')
    variables = {v["name"]: " ".join(v["expression"].split()) for v in spec["variables"]}
    for group, resource in CLUSTER_SCOPED_WRITES:
        assert group in variables["allowedClusterKind"] and f'"{resource}"' in variables["allowedClusterKind"]
    assert "object != null" in variables["newOwned"] and "oldObject != null" in variables["oldOwned"]
    assert "namespaceObject != null" in variables["ownNamespace"]
    assert all(v.get("reason") == "Forbidden" for v in spec["validations"]), "denials should be 403, not 422"
    binding = _by("ValidatingAdmissionPolicyBinding", "k8s-ai-bench-own-namespaces-only")
    assert binding["spec"] == {"policyName": policy["metadata"]["name"], "validationActions": ["Deny"]}


def test_suite_labels_match_the_policy() -> None:
    """The policy admits what carries app.kubernetes.io/managed-by=k8s-ai-bench: the label run_labels puts on
    every namespace and every applied object (ClusterQueue and ResourceFlavor included)."""
    from harness.cluster.namespaces import MANAGED_LABEL, MANAGER, run_labels

    assert run_labels("r", "t")[MANAGED_LABEL] == MANAGER
    text = RBAC.read_text()
    assert f'labels["{MANAGED_LABEL}"] == "{MANAGER}"' in text


def test_docs_table_is_generated_from_access_list() -> None:
    """docs/rbac.md carries harness.cluster.access.markdown_table() verbatim: regenerate it when the list changes."""
    from harness.cluster.access import markdown_table

    assert markdown_table() in (ROOT / "docs" / "rbac.md").read_text()
