"""The real control plane's parts that need no binaries: assets lookup, PKI, kwok nodes, operator webhooks."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness.errors import ConfigError
from harness.localkube.assets import ASSETS_ENV, BUILD_COMMAND, PROGRAMS, find_assets
from harness.localkube.kwok import KWOK_ANNOTATION, default_spec, kwok_nodes
from harness.localkube.operators import OPERATORS, webhook_configurations
from harness.localkube.pki import make_pki
from harness.localkube.rest import object_path


def _fake_assets(root: Path, programs: tuple[str, ...] = PROGRAMS) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "crds").mkdir()
    (root / "crds" / "x.yaml").write_text("kind: CustomResourceDefinition\n")
    for name in programs:
        path = root / "bin" / name
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    return root


def test_missing_programs_name_the_build_command(tmp_path: Path) -> None:
    root = _fake_assets(tmp_path / "assets", programs=("etcd",))
    with pytest.raises(ConfigError) as info:
        find_assets({ASSETS_ENV: str(root)})
    message = str(info.value)
    assert BUILD_COMMAND in message
    assert "kube-apiserver" in message and f"{ASSETS_ENV}={root}" in message
    assert "\n" not in message


def test_complete_assets_directory_is_found(tmp_path: Path) -> None:
    root = _fake_assets(tmp_path / "assets")
    assets = find_assets({ASSETS_ENV: str(root)})
    assert assets.program("kwok") == root / "bin" / "kwok"


def test_pki_chain_identities_and_key_modes(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki", service_ip="198.19.128.1")
    ca = x509.load_pem_x509_certificate(pki.ca_pem)
    serving = x509.load_pem_x509_certificate(pki.apiserver.cert.read_bytes())
    serving.verify_directly_issued_by(ca)
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "kubernetes.default.svc" in names.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "198.19.128.1"]
    scheduler = x509.load_pem_x509_certificate(pki.clients["scheduler"].cert.read_bytes())
    assert scheduler.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:kube-scheduler"
    usage = scheduler.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    admin = x509.load_pem_x509_certificate(pki.clients["admin"].cert.read_bytes())
    assert admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    for key in [pki.sa_private, pki.apiserver.key, *(pair.key for pair in pki.clients.values())]:
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600, key


def test_kwok_nodes_carry_pool_capacity_labels_and_the_kwok_annotation() -> None:
    nodes = kwok_nodes(default_spec())
    assert [n["metadata"]["name"] for n in nodes] == ["h100-0", "h100-1"]  # CPU work goes to this machine's node
    assert default_spec().host.include
    gpu = nodes[0]
    assert gpu["metadata"]["annotations"][KWOK_ANNOTATION] == "fake"
    assert gpu["metadata"]["labels"]["aibench.io/emulated"] == "true"
    assert gpu["status"]["capacity"]["nvidia.com/gpu"] == "8"
    assert gpu["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    assert "uid" not in gpu["metadata"] and "resourceVersion" not in gpu["metadata"]


def test_webhooks_are_pointed_at_loopback_with_the_cluster_ca(tmp_path: Path) -> None:
    hooks = tmp_path / "webhooks" / "jobset"
    hooks.mkdir(parents=True)
    upstream = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "mutating-webhook-configuration"},
        "webhooks": [
            {
                "name": "mjobset.kb.io",
                "clientConfig": {"service": {"name": "webhook-service", "namespace": "system", "path": "/mutate-x"}},
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
            }
        ],
    }
    (hooks / "manifests.yaml").write_text(yaml.safe_dump_all([upstream]))
    from harness.localkube.assets import Assets

    configs = webhook_configurations(Assets(root=tmp_path), OPERATORS["jobset"], {"webhook": 9555}, b"PEM")
    assert len(configs) == 1
    assert configs[0]["metadata"] == {"name": "jobset-mutating-webhook-configuration"}
    client_config = configs[0]["webhooks"][0]["clientConfig"]
    assert client_config == {"url": "https://127.0.0.1:9555/mutate-x", "caBundle": base64.b64encode(b"PEM").decode()}
    assert upstream["webhooks"][0]["clientConfig"]["service"]["path"] == "/mutate-x"  # input untouched


def test_operator_configuration_files(tmp_path: Path) -> None:
    ports = {"health": 1111, "webhook": 2222}
    argv = OPERATORS["kueue"].argv(
        program="/x/kueue", kubeconfig=tmp_path / "k", cert_dir=tmp_path / "certs", ports=ports, config_dir=tmp_path
    )
    config = yaml.safe_load((tmp_path / "kueue.yaml").read_text())
    assert argv == ["/x/kueue", f"--config={tmp_path / 'kueue.yaml'}"]
    assert config["apiVersion"] == "config.kueue.x-k8s.io/v1beta2"
    assert config["webhook"] == {"port": 2222, "host": "127.0.0.1", "certDir": str(tmp_path / "certs")}
    assert config["leaderElection"] == {"leaderElect": False}
    assert "jobset.x-k8s.io/jobset" in config["integrations"]["frameworks"]


@pytest.mark.parametrize(
    ("obj", "path"),
    [
        ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}, "/api/v1/namespaces/a"),
        (
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "a", "namespace": "n"}},
            "/api/v1/namespaces/n/serviceaccounts/a",
        ),
        (
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicy",
                "metadata": {"name": "p"},
            },
            "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/p",
        ),
        (
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "b"}},
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/b",
        ),
    ],
)
def test_object_paths(obj: dict[str, object], path: str) -> None:
    assert object_path(obj) == path  # type: ignore[arg-type]


def test_emulated_logs_are_written_in_the_cri_format_kwok_serves() -> None:
    from datetime import UTC, datetime

    from harness.localkube.emulation import cri_log

    text = cri_log("GPU 0: NVIDIA H100\n\nend", now=datetime(2026, 12, 6, 12, 0, 0, 123456, tzinfo=UTC))
    assert text.splitlines() == [
        "2026-12-06T12:00:00.123456Z stdout F GPU 0: NVIDIA H100",
        "2026-12-06T12:00:00.123456Z stdout F ",
        "2026-12-06T12:00:00.123456Z stdout F end",
    ]


def test_our_kwok_stage_marks_pods_bound_to_kwok_nodes_emulated() -> None:
    from harness.localkube.kwok import EMULATED_POD_STAGE

    stage = yaml.safe_load(EMULATED_POD_STAGE)
    assert stage["kind"] == "Stage" and stage["spec"]["resourceRef"] == {"apiGroup": "v1", "kind": "Pod"}
    keys = {e["key"]: e["operator"] for e in stage["spec"]["selector"]["matchExpressions"]}
    assert keys == {".spec.nodeName": "Exists", '.metadata.annotations["aibench.io/emulated"]': "DoesNotExist"}
    patch = stage["spec"]["next"]["patches"][0]
    assert patch["root"] == "metadata"
    assert yaml.safe_load(patch["template"]) == {"annotations": {"aibench.io/emulated": "true"}}
