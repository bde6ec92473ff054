"""The real operators run as processes beside the control plane: how each is configured, checked and hooked in.

Each is the upstream controller binary built from the pinned module, configured the way its own release manifests
configure it in a cluster, with three changes that running out of a pod needs: the kubeconfig comes from
``KUBECONFIG``, leader election is off (one replica), and admission webhooks are served on 127.0.0.1 with a
certificate from the control plane's CA instead of an in-cluster Service with cert rotation. The webhook
configurations are the operators' own ``config/components/webhook/manifests.yaml``, re-pointed at that URL.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.localkube.assets import Assets

__all__ = ["OPERATORS", "Operator", "webhook_configurations"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Operator:
    """One operator: its program, the namespaces it expects, its configuration file and readiness endpoint."""

    name: str
    program: str
    namespaces: tuple[str, ...] = ()
    config_kind: str | None = None  # apiVersion of its Configuration file, when it takes one
    extra_config: dict[str, Any] = field(default_factory=dict)
    webhooks: bool = False
    flags: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    #: a directory the binary reads a serving certificate from at a fixed path (Kueue v0.17's metrics server loads
    #: /etc/kueue/metrics/certs whenever its internal cert management is off, even with metrics disabled)
    fixed_cert_dir: Path | None = None
    #: a port the binary always listens on, on every interface (MPI Operator v0.8.0's health check: :8080); such an
    #: operator runs in a network namespace of its own (harness.localkube.netns), so the port never collides
    fixed_port: int | None = None
    #: it serves /readyz on a health port we choose (MPI Operator v0.8.0 has no such option: it is only kept alive)
    readyz: bool = True

    def ports(self, free_port: Callable[[], int]) -> dict[str, int]:
        ports = {"health": free_port()} if self.readyz else {}
        if self.webhooks:
            ports["webhook"] = free_port()
        return ports

    def ready_url(self, ports: dict[str, int]) -> str | None:
        return f"http://127.0.0.1:{ports['health']}/readyz" if "health" in ports else None

    def argv(
        self, *, program: str, kubeconfig: Path, cert_dir: Path, ports: dict[str, int], config_dir: Path
    ) -> list[str]:
        argv = [program, *self.flags]
        if self.name == "kuberay":
            argv += [f"--health-probe-bind-address=127.0.0.1:{ports['health']}", "--metrics-addr=0"]
        if self.name == "mpi-operator":
            argv += [f"--kubeConfig={kubeconfig}"]
        if self.config_kind is not None:
            config: dict[str, Any] = {
                "apiVersion": self.config_kind,
                "kind": "Configuration",
                "leaderElection": {"leaderElect": False},
                "internalCertManagement": {"enable": False},
                "metrics": {"bindAddress": "0"},
                "health": {"healthProbeBindAddress": f"127.0.0.1:{ports['health']}"},
                **copy.deepcopy(self.extra_config),
            }
            if self.webhooks:
                config["webhook"] = {"port": ports["webhook"], "host": "127.0.0.1", "certDir": str(cert_dir)}
            config_dir.mkdir(parents=True, exist_ok=True)
            path = config_dir / f"{self.name}.yaml"
            path.write_text(yaml.safe_dump(config, sort_keys=False))
            argv.append(f"--config={path}")
        return argv


OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in (
        Operator(
            name="jobset",
            program="jobset",
            namespaces=("jobset-system",),
            config_kind="config.jobset.x-k8s.io/v1alpha1",
            webhooks=True,
            env={"NAMESPACE": "jobset-system"},
        ),
        Operator(
            name="kueue",
            program="kueue",
            namespaces=("kueue-system",),
            config_kind="config.kueue.x-k8s.io/v1beta2",
            extra_config={
                "namespace": "kueue-system",
                # The on-demand visibility API is an aggregated API server serving from /visibility in its image;
                # the suite never reads it, and out of a pod it has neither that certificate nor an APIService.
                "featureGates": {"VisibilityOnDemand": False},
                "integrations": {
                    "frameworks": [
                        "batch/job",
                        "jobset.x-k8s.io/jobset",
                        "kubeflow.org/mpijob",
                        "ray.io/rayjob",
                        "ray.io/raycluster",
                    ]
                },
            },
            webhooks=True,
            fixed_cert_dir=Path("/etc/kueue/metrics/certs"),
        ),
        Operator(name="kuberay", program="kuberay", flags=("--enable-leader-election=false",)),
        Operator(
            name="mpi-operator",
            program="mpi-operator",
            namespaces=("mpi-operator",),
            flags=("--threadiness=2",),
            fixed_port=8080,
            readyz=False,
        ),
    )
}


def webhook_configurations(
    assets: Assets, operator: Operator, ports: dict[str, int], ca_pem: bytes
) -> list[dict[str, Any]]:
    """The operator's own webhook configurations, each webhook pointed at ``https://127.0.0.1:<port><path>``.

    Names get the operator as prefix: upstream names (``mutating-webhook-configuration``) are the same for every
    kubebuilder project and would overwrite each other.
    """
    if not operator.webhooks:
        return []
    import base64

    path = assets.root / "webhooks" / operator.name / "manifests.yaml"
    out: list[dict[str, Any]] = []
    for original in yaml.safe_load_all(path.read_text()):
        if not isinstance(original, dict) or not original.get("webhooks"):
            continue
        doc = copy.deepcopy(original)
        doc["metadata"] = {"name": f"{operator.name}-{doc['metadata']['name']}"}
        for hook in doc["webhooks"]:
            service_path = hook.get("clientConfig", {}).get("service", {}).get("path", "/")
            hook["clientConfig"] = {
                "url": f"https://127.0.0.1:{ports['webhook']}{service_path}",
                "caBundle": base64.b64encode(ca_pem).decode(),
            }
        out.append(doc)
    return out
