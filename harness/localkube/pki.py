"""The real control plane's certificates and keys, made fresh at each start (EC P-256: milliseconds each).

One CA signs the API server's serving certificate, every component's client certificate (the API server maps the
subject's CN to the user and O to groups, so ``system:kube-scheduler`` gets exactly the scheduler's built-in RBAC)
and the operators' webhook serving certificate. The ServiceAccount signing key pair lets the API server issue the
TokenRequest tokens the suite authenticates with. Private keys are written mode 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertPair", "ClusterPki", "make_pki"]

VALIDITY = dt.timedelta(days=7)
SERVER_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """Key usage of the CA (signs certificates and CRLs) or of a leaf certificate (TLS: digital signature and key
    encipherment), one place so the two differ only where a CA and a leaf do."""
    return x509.KeyUsage(
        digital_signature=True,
        key_encipherment=not ca,
        key_cert_sign=ca,
        crl_sign=ca,
        content_commitment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class CertPair:
    """A certificate and its key as files."""

    cert: Path
    key: Path


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterPki:
    """Every credential file of one start, under one directory."""

    ca: Path
    ca_pem: bytes
    apiserver: CertPair
    webhook: CertPair  # serving certificate of the operators' webhook servers on 127.0.0.1
    sa_public: Path
    sa_private: Path
    clients: dict[str, CertPair]  # by role: admin, controller-manager, scheduler, kubelet-client, kwok, operator


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


class _Authority:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aibench-local-kube-ca")])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now)
            .not_valid_after(self.now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def issue(
        self,
        directory: Path,
        stem: str,
        *,
        common_name: str,
        groups: tuple[str, ...] = (),
        server_names: tuple[str, ...] = (),
        server_ips: tuple[str, ...] = (),
    ) -> CertPair:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups]
        subject.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        serving = bool(server_names or server_ips)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(subject))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now)
            .not_valid_after(self.now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH] if serving else [ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if serving:
            alt: list[x509.GeneralName] = [x509.DNSName(n) for n in server_names]
            alt += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in server_ips]
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        pair = CertPair(cert=directory / f"{stem}.crt", key=directory / f"{stem}.key")
        pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(pair.key, key)
        return pair


def make_pki(directory: Path, *, service_ip: str) -> ClusterPki:
    """Write a fresh CA, serving, client and ServiceAccount credentials into ``directory`` (created 0700)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca = _Authority()
    ca_pem = ca.cert.public_bytes(serialization.Encoding.PEM)
    ca_path = directory / "ca.crt"
    ca_path.write_bytes(ca_pem)
    _write_key(directory / "ca.key", ca.key)
    apiserver = ca.issue(
        directory,
        "apiserver",
        common_name="kube-apiserver",
        server_names=SERVER_NAMES,
        server_ips=("127.0.0.1", service_ip),
    )
    webhook = ca.issue(
        directory, "webhook", common_name="aibench-webhooks", server_names=("localhost",), server_ips=("127.0.0.1",)
    )
    clients = {
        "admin": ca.issue(directory, "admin", common_name="kubernetes-admin", groups=("system:masters",)),
        "controller-manager": ca.issue(directory, "controller-manager", common_name="system:kube-controller-manager"),
        "scheduler": ca.issue(directory, "scheduler", common_name="system:kube-scheduler"),
        "kubelet-client": ca.issue(
            directory, "kubelet-client", common_name="kube-apiserver-kubelet-client", groups=("system:masters",)
        ),
        # kwok and the operators act for whole controllers whose own RBAC manifests are not what is under test here.
        "kwok": ca.issue(directory, "kwok", common_name="aibench-kwok", groups=("system:masters",)),
        "operator": ca.issue(directory, "operator", common_name="aibench-operators", groups=("system:masters",)),
    }
    sa_key = ec.generate_private_key(ec.SECP256R1())
    sa_private = directory / "sa.key"
    sa_public = directory / "sa.pub"
    _write_key(sa_private, sa_key)
    sa_public.write_bytes(
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return ClusterPki(
        ca=ca_path,
        ca_pem=ca_pem,
        apiserver=apiserver,
        webhook=webhook,
        sa_public=sa_public,
        sa_private=sa_private,
        clients=clients,
    )
