"""System services of the embedded target: real servers from this machine, run as ordinary pods in kube-system.

A real AI platform has an S3 store, a cache, Prometheus; the embedded target offers the same from host programs
(Debian's ``redis-server``, moto's S3 server, Debian's ``prometheus``...) when they are installed, deployed as a
Deployment + Service through the normal API, so suites find and use them exactly like on a cluster: by the
Service label ``aibench.io/system-service=<name>``. A program that is not installed is simply not offered, and
tests that need it skip saying which program to install.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.labels import SYSTEM_SERVICE_LABEL

log = logging.getLogger(__name__)

SYSTEM_NAMESPACE = "kube-system"
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemService:
    """One service: how to find its program, how to run it, what it is (shown in reports)."""

    name: str
    description: str
    port: int
    find: Callable[[], list[str] | None]  # argv prefix of the program, or None when it is not installed
    args: Callable[[int], list[str]]  # extra arguments given the port; $(POD_IP) is expanded by the kubelet
    env: Mapping[str, str] = field(default_factory=dict)
    install_hint: str = ""
    files: Mapping[str, str] = field(default_factory=dict)  # config files, mounted from a ConfigMap at config_dir
    scratch: bool = False  # an emptyDir at data_dir (a TSDB, a cache)
    #: which HTTP path answers when the service is ready (a TCP connect only says the port is open)
    ready_path: str = ""

    @property
    def config_dir(self) -> str:
        return f"/etc/aibench/{self.name}"

    @property
    def data_dir(self) -> str:
        return f"/var/lib/aibench/{self.name}"

    def manifests(self, command: list[str]) -> list[dict[str, Any]]:
        labels = {"app.kubernetes.io/name": self.name, SYSTEM_SERVICE_LABEL: self.name}
        mounts: list[dict[str, Any]] = []
        volumes: list[dict[str, Any]] = []
        extra: list[dict[str, Any]] = []
        if self.files:
            config_map = f"aibench-{self.name}-config"
            volumes.append({"name": "config", "configMap": {"name": config_map}})
            mounts.append({"name": "config", "mountPath": self.config_dir, "readOnly": True})
            extra.append(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": config_map, "namespace": SYSTEM_NAMESPACE, "labels": labels},
                    "data": dict(self.files),
                }
            )
        if self.scratch:
            volumes.append({"name": "data", "emptyDir": {}})
            mounts.append({"name": "data", "mountPath": self.data_dir})
        probe: dict[str, Any] = (
            {"httpGet": {"path": self.ready_path, "port": self.port}}
            if self.ready_path
            else {"tcpSocket": {"port": self.port}}
        )
        container: dict[str, Any] = {
            "name": self.name,
            "image": f"aibench.io/host/{self.name}:host",  # the embedded kubelet runs the host program
            "command": [*command, *self.args(self.port)],
            "env": [
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                *({"name": k, "value": v} for k, v in self.env.items()),
            ],
            "ports": [{"name": "main", "containerPort": self.port}],
            "readinessProbe": {**probe, "periodSeconds": 1},
            **({"volumeMounts": mounts} if mounts else {}),
        }
        pod_spec: dict[str, Any] = {"containers": [container], **({"volumes": volumes} if volumes else {})}
        return [
            *extra,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": f"aibench-{self.name}",
                    "namespace": SYSTEM_NAMESPACE,
                    "labels": labels,
                    "annotations": {"aibench.io/description": self.description},
                },
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app.kubernetes.io/name": self.name}},
                    "template": {"metadata": {"labels": labels}, "spec": pod_spec},
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": self.name,
                    "namespace": SYSTEM_NAMESPACE,
                    "labels": labels,
                    "annotations": {"aibench.io/description": self.description},
                },
                "spec": {
                    "selector": {"app.kubernetes.io/name": self.name},
                    "ports": [{"name": "main", "port": self.port, "targetPort": "main"}],
                },
            },
        ]


def _on_path(program: str) -> Callable[[], list[str] | None]:
    def find() -> list[str] | None:
        path = shutil.which(program)
        return [path] if path else None

    return find


def _tools_venv_program(program: str, env_var: str) -> Callable[[], list[str] | None]:
    """A program from the tools environment (``.venv-tools``): tools whose dependencies cannot share the
    harness's environment (moto needs botocore, which pins python-dateutil below what the kubernetes client
    requires)."""

    def find() -> list[str] | None:
        explicit = os.environ.get(env_var)
        for candidate in (explicit, REPO_ROOT / ".venv-tools" / "bin" / program):
            if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
                return [str(candidate)]
        return None

    return find


_DATA_SERVICES: tuple[SystemService, ...] = (
    SystemService(
        name="s3",
        description="moto S3-compatible server (moto[server], in-memory) standing in for MinIO/Ceph RGW",
        port=9000,
        find=_tools_venv_program("moto_server", "AIBENCH_MOTO_SERVER"),
        args=lambda port: ["-H", "$(POD_IP)", "-p", str(port)],
        install_hint="python3 -m venv .venv-tools && .venv-tools/bin/pip install 'moto[server]==5.2.1'",
    ),
    SystemService(
        name="redis",
        description="redis-server from this machine (no persistence) as the cache tier",
        port=6379,
        find=_on_path("redis-server"),
        args=lambda port: [
            "--bind",
            "$(POD_IP)",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
        ],
        install_hint="apt-get install -y redis-server",
    ),
)


PROMETHEUS_SCRAPE_INTERVAL_S = 5  # short, so a suite sees fresh samples within seconds (clusters use 15-60 s)


def _prometheus_config() -> str:
    """Scrape jobs named like kube-prometheus-stack's, so checks written for clusters read the same job names."""
    domain = f"{SYSTEM_NAMESPACE}.svc.cluster.local"
    jobs = {"prometheus": f"prometheus.{domain}:9090", "node-exporter": f"node-exporter.{domain}:9100"}
    lines = [
        "global:",
        f"  scrape_interval: {PROMETHEUS_SCRAPE_INTERVAL_S}s",
        f"  evaluation_interval: {PROMETHEUS_SCRAPE_INTERVAL_S}s",
        "  external_labels: {cluster: aibench-embedded}",
        "scrape_configs:",
    ]
    for job, target in jobs.items():
        lines += [f"  - job_name: {job}", "    static_configs:", f"      - targets: ['{target}']"]
    # Services annotated prometheus.io/scrape=true, listed by the embedded controller scrape-targets (Debian's
    # build has no kubernetes_sd_configs); each target's own job label names its Service.
    lines += [
        "  - job_name: annotated-services",
        "    file_sd_configs:",
        "      - files: ['/etc/aibench/prometheus/targets.json']",
        f"        refresh_interval: {PROMETHEUS_SCRAPE_INTERVAL_S}s",
    ]
    return "\n".join(lines) + "\n"


_PROMETHEUS = SystemService(
    name="prometheus",
    description="Prometheus from this machine (Debian's prometheus), scraping itself and node-exporter",
    port=9090,
    find=_on_path("prometheus"),
    args=lambda port: [
        "--config.file=/etc/aibench/prometheus/prometheus.yml",
        "--storage.tsdb.path=/var/lib/aibench/prometheus",
        "--storage.tsdb.retention.time=2h",
        f"--web.listen-address=$(POD_IP):{port}",
        "--log.level=warn",
    ],
    files={"prometheus.yml": _prometheus_config(), "targets.json": "[]\n"},
    scratch=True,
    ready_path="/-/ready",
    install_hint="apt-get install -y prometheus",
)
_NODE_EXPORTER = SystemService(
    name="node-exporter",
    description="prometheus-node-exporter from this machine: the host node's CPU, memory, disk and network metrics",
    port=9100,
    find=_on_path("prometheus-node-exporter"),
    args=lambda port: [f"--web.listen-address=$(POD_IP):{port}", "--log.level=warn"],
    ready_path="/",
    install_hint="apt-get install -y prometheus-node-exporter",
)
SERVICES: tuple[SystemService, ...] = (*_DATA_SERVICES, _NODE_EXPORTER, _PROMETHEUS)


def available(services: tuple[SystemService, ...] = SERVICES) -> list[tuple[SystemService, list[str]]]:
    """The services whose program is installed here, with the argv prefix to run it."""
    found = []
    for service in services:
        command = service.find()
        if command is None:
            log.info(
                "embedded system service %s not offered: %s",
                service.name,
                service.install_hint or "program not installed",
            )
            continue
        found.append((service, command))
    return found
