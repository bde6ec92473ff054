"""Fixtures of the practices suite: one read-only snapshot of the platform per session."""

from __future__ import annotations

import pytest

from harness.fixture_types import Target
from harness.practices.checks import ai_namespaces
from harness.practices.snapshot import PlatformSnapshot, read_platform


@pytest.fixture(scope="session")
def platform(target: Target) -> PlatformSnapshot:
    return read_platform(target)


@pytest.fixture(scope="session")
def ai_namespace_names(platform: PlatformSnapshot) -> list[str]:
    """Namespaces running accelerator workloads (skip when there are none: the namespace practices need one)."""
    names = ai_namespaces(platform.pods)
    if not names:
        pytest.skip(
            "no namespace runs pods that request nvidia.com/gpu, google.com/tpu or amd.com/gpu "
            "(system namespaces and DaemonSet pods excluded)"
        )
    return names
