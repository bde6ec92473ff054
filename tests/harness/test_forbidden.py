"""Forbidden answers, as real API servers worded them (strings from public issue threads and the Kubernetes docs),
turn into verb / group / resource / namespace and the rule to add to deploy/rbac.yaml."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from harness.cluster.forbidden import explain_forbidden, forbidden_from_body, forbidden_of, parse_forbidden
from harness.cluster.target import Connection

# flanksource/config-db#259
EXEC = (
    'pods "postgresql-0" is forbidden: User "system:serviceaccount:default:config-db-sa" cannot create resource '
    '"pods/exec" in API group "" in the namespace "default"'
)
# kubernetes/kube-state-metrics#1368 (an authorizer reason after the fixed part)
CLUSTER_LIST = (
    'endpoints is forbidden: User "system:serviceaccount:monitor:kube-state-metrics" cannot list resource '
    '"endpoints" in API group "" at the cluster scope: RBAC: clusterrole.rbac.authorization.k8s.io '
    '"kube-state-metrics" not found'
)
# kubernetes/minikube#6818
GROUPED = (
    'storageclasses.storage.k8s.io is forbidden: User "system:kube-scheduler" cannot list resource "storageclasses" '
    'in API group "storage.k8s.io" at the cluster scope'
)
# oam-dev/rudr#139
NAMED_CLUSTER = (
    'customresourcedefinitions.apiextensions.k8s.io "operationalconfigurations.core.hydra.io" is forbidden: User '
    '"system:serviceaccount:default:scylla" cannot get resource "customresourcedefinitions" in API group '
    '"apiextensions.k8s.io" at the cluster scope'
)
# kubernetes/website, validating-admission-policy.md
POLICY = (
    'deployments.apps "invalid" is forbidden: ValidatingAdmissionPolicy \'image-matches-namespace-environment.'
    "policy.example.com' with binding 'demo-binding-test.example.com' denied request: only prod images are allowed "
    "in namespace default"
)
# triggermesh/tm#49 (the pre-1.11 wording without "resource" and the group)
LEGACY = (
    'pods "onetwothree-bar-00002-2sd5z" is forbidden: User "system:serviceaccount:sebgoa:default" cannot create '
    'pods/exec in the namespace "sebgoa"'
)
# k8s.io/apiserver responsewriters.forbiddenMessage, non-resource branch
PATH = 'forbidden: User "system:serviceaccount:k8s-ai-bench:k8s-ai-bench" cannot get path "/metrics"'


def test_namespaced_subresource() -> None:
    found = parse_forbidden(EXEC)
    assert found is not None
    assert (found.verb, found.group, found.resource, found.subresource) == ("create", "", "pods", "exec")
    assert (found.namespace, found.name, found.user) == (
        "default",
        "postgresql-0",
        "system:serviceaccount:default:config-db-sa",
    )
    assert found.rule() == '- apiGroups: [""]\n  resources: [pods/exec]\n  verbs: [create]'
    text = found.explain()
    assert 'create pods/exec \'postgresql-0\' in API group "" (core) in namespace "default"' in text
    assert "add to deploy/rbac.yaml" in text


def test_cluster_scope_with_authorizer_reason() -> None:
    found = parse_forbidden(CLUSTER_LIST)
    assert found is not None
    assert (found.verb, found.resource, found.namespace, found.name) == ("list", "endpoints", "", "")
    assert found.reason == 'RBAC: clusterrole.rbac.authorization.k8s.io "kube-state-metrics" not found'
    assert "at the cluster scope" in found.explain()


def test_named_group() -> None:
    grouped, named = parse_forbidden(GROUPED), parse_forbidden(NAMED_CLUSTER)
    assert grouped is not None and named is not None
    assert grouped.rule() == "- apiGroups: [storage.k8s.io]\n  resources: [storageclasses]\n  verbs: [list]"
    assert (named.group, named.resource, named.name) == (
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        "operationalconfigurations.core.hydra.io",
    )


def test_admission_policy_denial() -> None:
    found = parse_forbidden(POLICY)
    assert found is not None and found.by_policy
    assert (found.group, found.resource, found.name) == ("apps", "deployments", "invalid")
    assert found.policy == "image-matches-namespace-environment.policy.example.com"
    assert found.binding == "demo-binding-test.example.com"
    assert found.denial == "only prod images are allowed in namespace default"
    assert "RBAC allowed it" in found.explain() and "add to deploy/rbac.yaml" not in found.explain()


def test_legacy_and_non_resource() -> None:
    legacy, path = parse_forbidden(LEGACY), parse_forbidden(PATH)
    assert legacy is not None and (legacy.verb, legacy.full_resource, legacy.namespace) == (
        "create",
        "pods/exec",
        "sebgoa",
    )
    assert path is not None and (path.verb, path.path) == ("get", "/metrics")
    assert path.rule() == "- nonResourceURLs: [/metrics]\n  verbs: [get]"


def test_not_forbidden() -> None:
    assert parse_forbidden('pods "x" not found') is None


def _status(message: str, code: int = 403) -> str:
    return json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": message, "reason": "Forbidden", "code": code})  # fmt: skip


def test_from_api_exception() -> None:
    exc = ApiException(status=403, reason="Forbidden")
    exc.body = _status(EXEC)
    found = forbidden_of(exc)
    assert found is not None and found.full_resource == "pods/exec"
    assert explain_forbidden(exc) == found.explain()
    not_found = ApiException(status=404, reason="Not Found")
    not_found.body = _status('pods "x" not found', 404)
    assert forbidden_of(not_found) is None and explain_forbidden(ValueError("x")) is None


@pytest.mark.parametrize(
    ("status", "body", "policy"),
    [
        (422, _status(POLICY, 422), True),  # a policy validation without reason: answers 422 Invalid
        (422, _status('Job.batch "x" is invalid: spec.template: Required value', 422), None),
        (403, b"<html>403 from the upstream behind the service proxy</html>", None),
        (403, b'{"error": "forbidden"}', None),
        (200, _status(EXEC), None),
    ],
)
def test_from_body(status: int, body: str | bytes, policy: bool | None) -> None:
    found = forbidden_from_body(status, body)
    assert (found.by_policy if found else None) == policy


# ------------------------------------------------------------------------------------------ where 403s surface
def _forbidden_exc(message: str = EXEC) -> ApiException:
    exc = ApiException(status=403, reason="Forbidden")
    exc.body = _status(message)
    return exc


class _RefusingResource:
    namespaced = True

    def create(self, **_: object) -> None:
        raise _forbidden_exc(
            'jobs.batch "trivial" is forbidden: User "system:serviceaccount:k8s-ai-bench:k8s-ai-bench" cannot create '
            'resource "jobs" in API group "batch" in the namespace "aib-x-1234"'
        )


def test_applier_names_the_missing_grant() -> None:
    from harness.cluster.manifests import Applier
    from harness.errors import AccessDenied

    applier = Applier.__new__(Applier)
    applier.resource = lambda api_version, kind: _RefusingResource()  # type: ignore[method-assign]
    doc = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "trivial"}}
    with pytest.raises(AccessDenied) as caught:
        applier.apply([doc], namespace="aib-x-1234", labels={})
    text = str(caught.value)
    assert text.startswith("creating Job trivial: Forbidden for system:serviceaccount:k8s-ai-bench:k8s-ai-bench")
    assert 'in namespace "aib-x-1234"' in text
    assert "- apiGroups: [batch]\n  resources: [jobs]\n  verbs: [create]" in text


class _Answer:
    def __init__(self, status: int, data: bytes) -> None:
        self.status, self.data = status, data

    def read(self) -> bytes:
        return self.data


class _ProxyClient:
    def __init__(self, answer: _Answer) -> None:
        self.answer = answer

    def param_serialize(self, method: str, path: str, **_: object) -> tuple[str, str, dict[str, str], None, None]:
        return method, path, {}, None, None

    def call_api(self, *_: object, **__: object) -> _Answer:
        return self.answer


def test_service_proxy_refusal_is_access_denied_not_no_data() -> None:
    from harness.cluster.prometheus import ServiceHttp
    from harness.errors import AccessDenied

    refused = (
        'services "prometheus-k8s:9090" is forbidden: User "system:serviceaccount:k8s-ai-bench:k8s-ai-bench" cannot '
        'get resource "services/proxy" in API group "" in the namespace "monitoring"'
    )
    proxy: Any = _ProxyClient(_Answer(403, _status(refused).encode()))
    http = ServiceHttp("monitoring/prometheus-k8s:9090", cluster=Connection(proxy))
    with pytest.raises(AccessDenied, match=r"resources: \[services/proxy\]"):
        http.get("/api/v1/query")
    grafana: Any = _ProxyClient(_Answer(403, b"<html>login</html>"))
    upstream = ServiceHttp("monitoring/grafana:80", cluster=Connection(grafana))
    assert upstream.get("/api/health")[0] == 403  # the service's own 403 passes through


def test_lost_logs_are_not_quiet() -> None:
    from harness.cluster.collect import container_logs
    from harness.errors import AccessDenied

    class Core:
        def read_namespaced_pod(self, name: str, namespace: str) -> object:
            raise _forbidden_exc(
                f'pods "{name}" is forbidden: User "u" cannot get resource "pods" in API group "" in the namespace '
                f'"{namespace}"'
            )

    with pytest.raises(AccessDenied, match=r"reading the log of pod ns/p"):
        container_logs(Core(), "ns", ["p"])  # type: ignore[arg-type]


def test_report_message_of_an_unhandled_forbidden() -> None:
    from harness.pytest_plugin import _failure_message

    assert _failure_message(_forbidden_exc()).startswith("Forbidden for system:serviceaccount:default:config-db-sa")
    assert _failure_message(ValueError(" plain ")) == "plain"
