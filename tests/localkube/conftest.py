"""The real control plane for the lane's tests: started once per test module, skipped (or failed, in CI) without it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import config
from real_lane import LANE_SPEC, Lane, require_assets

from harness.localkube.controlplane import LocalKube, LocalKubeOptions
from harness.localkube.identity import add_suite_context


@pytest.fixture(scope="module")
def lane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lane]:
    require_assets()
    spec = tmp_path_factory.mktemp("lane") / "spec.yaml"
    spec.write_text(LANE_SPEC)
    options = LocalKubeOptions(state_dir=tmp_path_factory.mktemp("local-kube"), spec_path=spec)
    with LocalKube(options) as cluster:
        context = add_suite_context(cluster)
        kubeconfig: Path = cluster.kubeconfig_path
        admin = config.new_client_from_config(config_file=str(kubeconfig))
        suite = config.new_client_from_config(config_file=str(kubeconfig), context=context)
        try:
            yield Lane(cluster, admin, suite)
        finally:
            admin.close()
            suite.close()
