"""HarnessConfig resolution: precedence, parsing and the one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import TargetKind, new_run_id, resolve
from harness.errors import ConfigError


def test_defaults() -> None:
    cfg = resolve({}, {}, {})
    assert cfg.target is TargetKind.EMBEDDED and cfg.timeout_scale == 1.0 and not cfg.keep_namespaces
    assert cfg.reports_dir == Path("reports") and cfg.run_id and cfg.run_dir == Path("reports") / cfg.run_id
    assert cfg.sources["target"] == "default"


def test_precedence_cli_over_env_over_ini() -> None:
    ini = {"aibench_timeout_scale": "2", "aibench_run_id": "from-ini"}
    env = {"AIBENCH_TIMEOUT_SCALE": "3"}
    cfg = resolve({}, env, ini)
    assert cfg.timeout_scale == 3.0 and cfg.run_id == "from-ini"
    assert cfg.sources == {**cfg.sources, "timeout_scale": "env", "run_id": "ini"}
    cfg = resolve({"timeout_scale": "4"}, env, ini)
    assert cfg.timeout_scale == 4.0 and cfg.sources["timeout_scale"] == "cli"
    assert cfg.timeout(10) == 40.0


@pytest.mark.parametrize(
    ("cli", "env", "message"),
    [
        ({"timeout_scale": "fast"}, {}, "--timeout-scale: must be a positive number (got 'fast')"),
        ({}, {"AIBENCH_TIMEOUT_SCALE": "-1"}, "AIBENCH_TIMEOUT_SCALE: must be a positive number (got '-1')"),
        ({"target": "k3s"}, {}, "--target: must be one of embedded, local-kube, kube (got 'k3s')"),
        ({"target": "kube"}, {}, "--target kube: needs --kube-context"),
        ({"kube_context": "prod"}, {}, "--kube-context: given with --target embedded"),
        ({"run_id": "bad id!"}, {}, "--run-id: must be 1-63 letters"),
        ({"cluster_spec": "/no/such/spec.yaml"}, {}, "--cluster-spec: no such file: /no/such/spec.yaml"),
        ({"image_registry": "https://mirror"}, {}, "--image-registry: must be a registry host"),
        ({}, {"AIBENCH_KEEP_NAMESPACES": "maybe"}, "AIBENCH_KEEP_NAMESPACES: must be true or false (got 'maybe')"),
    ],
)
def test_bad_values_are_one_line_errors(cli: dict, env: dict, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        resolve(cli, env, {})
    assert str(exc.value).startswith(message) and "\n" not in str(exc.value)


def test_ini_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"^ini aibench_timeout_scale: must be a positive number"):
        resolve({}, {}, {"aibench_timeout_scale": "0"})


def test_kube_target_needs_explicit_context(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    cfg = resolve({"target": "kube", "kube_context": "lab", "kubeconfig": str(kubeconfig)}, {}, {})
    assert cfg.target is TargetKind.KUBE and cfg.kube_context == "lab" and cfg.kubeconfig == kubeconfig
    with pytest.raises(ConfigError, match="--cluster-spec: only applies to --target embedded"):
        resolve({"target": "kube", "kube_context": "lab", "cluster_spec": str(kubeconfig)}, {}, {})


def test_run_ids_sort_by_time() -> None:
    from datetime import UTC, datetime

    early = new_run_id(datetime(2026, 1, 1, tzinfo=UTC))
    late = new_run_id(datetime(2026, 1, 2, tzinfo=UTC))
    assert early < late and early.startswith("20260101-000000-")
