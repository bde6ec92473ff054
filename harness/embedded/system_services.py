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

log = logging.getLogger(__name__)

SYSTEM_SERVICE_LABEL = "aibench.io/system-service"
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

    def manifests(self, command: list[str]) -> list[dict[str, Any]]:
        labels = {"app.kubernetes.io/name": self.name, SYSTEM_SERVICE_LABEL: self.name}
        container = {
            "name": self.name,
            "image": f"aibench.io/host/{self.name}:host",  # the embedded kubelet runs the host program
            "command": [*command, *self.args(self.port)],
            "env": [
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                *({"name": k, "value": v} for k, v in self.env.items()),
            ],
            "ports": [{"name": "main", "containerPort": self.port}],
            "readinessProbe": {"tcpSocket": {"port": self.port}, "periodSeconds": 1},
        }
        return [
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
                    "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
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


SERVICES: tuple[SystemService, ...] = (
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


def missing_hint(name: str) -> str:
    """What to install to get system service ``name`` on the embedded target (for skip messages)."""
    for service in SERVICES:
        if service.name == name:
            return service.install_hint
    return ""
