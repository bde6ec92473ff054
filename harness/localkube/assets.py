"""Where the real control plane's programs and CRDs are: one directory that ``deploy/local-kube/build.sh`` fills.

Like envtest's ``KUBEBUILDER_ASSETS``, ``AIBENCH_KUBE_ASSETS`` points at a prebuilt directory; without it the build
script's default cache directory is used. A missing program is a :class:`ConfigError` (exit 2) naming the build
command, because the only fix is to run it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError

__all__ = ["ASSETS_ENV", "BUILD_COMMAND", "PROGRAMS", "Assets", "Provenance", "default_assets_dir", "find_assets"]

ASSETS_ENV = "AIBENCH_KUBE_ASSETS"
BUILD_COMMAND = "bash deploy/local-kube/build.sh"
PROGRAMS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "jobset",
    "kueue",
    "kuberay",
    "mpi-operator",
    "local-path-provisioner",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Provenance:
    """Where one copied file came from: ``module@version`` and its path inside the module."""

    kind: str  # crds | stages | webhooks/* | storage
    name: str
    module: str
    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Assets:
    """A complete assets directory (every program present and executable)."""

    root: Path

    def program(self, name: str) -> Path:
        return self.root / "bin" / name

    @property
    def crd_dir(self) -> Path:
        return self.root / "crds"

    def provenance(self) -> list[Provenance]:
        """The build's record of each CRD file's module and path (empty when the directory was made by hand)."""
        table = self.root / "provenance.tsv"
        if not table.is_file():
            return []
        out = []
        for line in table.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) == 4:
                out.append(Provenance(kind=parts[0], name=parts[1], module=parts[2], path=parts[3]))
        return out


def default_assets_dir() -> Path:
    """The build script's default: ``${XDG_CACHE_HOME:-~/.cache}/k8s-ai-bench/local-kube``."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "k8s-ai-bench" / "local-kube"


def find_assets(env: dict[str, str] | None = None) -> Assets:
    """The assets directory, checked complete; otherwise a one-line error naming what is missing and the fix."""
    env = dict(os.environ) if env is None else env
    given = env.get(ASSETS_ENV)
    root = Path(given) if given else default_assets_dir()
    where = f"{ASSETS_ENV}={root}" if given else str(root)
    missing = [name for name in PROGRAMS if not os.access(root / "bin" / name, os.X_OK)]
    if missing:
        raise ConfigError(
            f"real control plane: {', '.join(missing)} not built in {where}; build them with `{BUILD_COMMAND}` "
            f"(needs Go 1.26 and the Go module proxy) or point {ASSETS_ENV} at prebuilt binaries"
        )
    if not any((root / "crds").glob("*.yaml")):
        raise ConfigError(f"real control plane: no CRDs in {where}/crds; run `{BUILD_COMMAND}`")
    return Assets(root=root)
