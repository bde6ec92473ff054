"""The real control plane for the lane's tests: started once per test module, skipped (or failed, in CI) without it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import config
from real_lane import LANE_SPEC, Lane, require_assets

from harness.localkube.controlplane import LocalKube, LocalKubeOptions
from harness.localkube.identity import SUITE_ACCOUNT, SUITE_CONTEXT, apply_rbac, suite_token


@pytest.fixture(scope="module")
def lane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lane]:
    require_assets()
    spec = tmp_path_factory.mktemp("lane") / "spec.yaml"
    spec.write_text(LANE_SPEC)
    options = LocalKubeOptions(state_dir=tmp_path_factory.mktemp("local-kube"), spec_path=spec)
    with LocalKube(options) as cluster:
        assert cluster.rest is not None
        apply_rbac(cluster.rest)
        kubeconfig: Path = cluster.kubeconfig_path
        cluster.add_token_context(
            kubeconfig, context=SUITE_CONTEXT, token=suite_token(cluster.rest), namespace=SUITE_ACCOUNT[0]
        )
        admin = config.new_client_from_config(config_file=str(kubeconfig))
        suite = config.new_client_from_config(config_file=str(kubeconfig), context=SUITE_CONTEXT)
        try:
            yield Lane(cluster, admin, suite)
        finally:
            admin.close()
            suite.close()
