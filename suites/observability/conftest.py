"""Fixtures of the observability suite: the Prometheus under test, found once per session."""

from __future__ import annotations

import pytest

from harness.cluster.prometheus import Prometheus, choose_endpoint
from harness.fixture_types import Capabilities, HarnessConfig, Target


@pytest.fixture(scope="session")
def prometheus(target: Target, capabilities: Capabilities, harness_config: HarnessConfig) -> Prometheus:
    """``--prometheus-url`` when given, else the first discovered Prometheus Service (skip when there is none)."""
    endpoint = choose_endpoint(harness_config.prometheus_url, capabilities.prometheus)
    if endpoint is None:
        hint = " (embedded target: apt-get install -y prometheus)" if capabilities.embedded else ""
        pytest.skip(
            "no Prometheus: no Service named *prometheus* with port 9090 was found and --prometheus-url was not "
            f"given{hint}"
        )
    return Prometheus(endpoint, cluster=target)


@pytest.fixture(scope="session")
def prometheus_if_any(target: Target, capabilities: Capabilities, harness_config: HarnessConfig) -> Prometheus | None:
    """The same Prometheus, or None: for tests that still report something useful without one."""
    endpoint = choose_endpoint(harness_config.prometheus_url, capabilities.prometheus)
    return Prometheus(endpoint, cluster=target) if endpoint else None
