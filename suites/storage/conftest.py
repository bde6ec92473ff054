"""Storage suite plumbing: one test instance per StorageClass of the target, and the fio results shared by the
tiering check (measured once per class, ranked once)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.pytest_plugin import SESSION_KEY


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "storage_class" not in metafunc.fixturenames:
        return
    classes = [sc.name for sc in metafunc.config.stash[SESSION_KEY].capabilities.storage_classes]
    if not classes:
        metafunc.parametrize(
            "storage_class",
            [
                pytest.param(
                    "",
                    marks=pytest.mark.skip(
                        reason="the target has no StorageClass: nothing can be provisioned dynamically"
                    ),
                )
            ],
            ids=["none"],
        )
        return
    metafunc.parametrize("storage_class", classes, ids=classes)


@pytest.fixture(scope="session")
def fio_by_class() -> dict[str, dict[str, Any]]:
    """StorageClass -> headline fio numbers, filled by the fio matrix tests, read by the tiering check."""
    return {}
