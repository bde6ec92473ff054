"""Volume provisioning conformance: a default class exists, every class provisions dynamically within its bar,
WaitForFirstConsumer classes bind where the pod runs, and the CSI drivers in use are on record."""

from __future__ import annotations

import pytest

from harness.fixture_types import Capabilities, HarnessConfig, Target, TestRecord
from harness.measurement import Measurement
from harness.probes.storage import csi_drivers, probe_binding, probe_first_consumer

BIND_TIMEOUT_S = 60.0  # a dynamically provisioned claim that is not Bound within a minute is broken, not slow
CONSUMER_IMAGE = "docker.io/library/busybox:1.36.1"


@pytest.mark.conformance
@pytest.mark.storage
def test_default_storage_class(capabilities: Capabilities, target: Target, record: TestRecord) -> None:
    """Exactly one StorageClass is marked default, so claims without a class get storage."""
    defaults = [sc.name for sc in capabilities.storage_classes if sc.default]
    drivers = csi_drivers(target)
    record.add(
        params={
            "default_classes": ",".join(defaults) or "none",
            "csi_drivers": ",".join(drivers) or "none",
            "classes": ",".join(f"{sc.name}={sc.provisioner}" for sc in capabilities.storage_classes),
        }
    )
    assert defaults, "no StorageClass is annotated storageclass.kubernetes.io/is-default-class=true"
    assert len(defaults) == 1, f"{len(defaults)} StorageClasses claim to be the default: {', '.join(defaults)}"


@pytest.mark.conformance
@pytest.mark.storage
def test_dynamic_provisioning(
    storage_class: str,
    capabilities: Capabilities,
    target: Target,
    namespace: str,
    harness_config: HarnessConfig,
    record: TestRecord,
) -> None:
    """A claim of the class is provisioned and Bound within a minute (Immediate classes), with the time recorded."""
    info = next(sc for sc in capabilities.storage_classes if sc.name == storage_class)
    if info.binding_mode == "WaitForFirstConsumer":
        pytest.skip(f"class {storage_class} binds on first use (WaitForFirstConsumer): see test_first_consumer_binding")
    result = probe_binding(target, namespace, storage_class, timeout_s=harness_config.timeout(BIND_TIMEOUT_S))
    record.add(
        params={"storage_class": storage_class, "provisioner": info.provisioner},
        measurements=[
            Measurement(metric="pvc_bind_time", value=result.seconds, unit="s", labels={"storage_class": storage_class})
        ]
        if result.bound
        else [],
    )
    assert result.bound, f"a claim of class {storage_class} did not bind: {result.problem}"


@pytest.mark.conformance
@pytest.mark.storage
def test_first_consumer_binding(
    storage_class: str,
    capabilities: Capabilities,
    target: Target,
    namespace: str,
    harness_config: HarnessConfig,
    record: TestRecord,
) -> None:
    """A WaitForFirstConsumer class provisions the volume on the node where the consuming pod was scheduled."""
    info = next(sc for sc in capabilities.storage_classes if sc.name == storage_class)
    if info.binding_mode != "WaitForFirstConsumer":
        pytest.skip(f"class {storage_class} binds immediately ({info.binding_mode}); nothing to check here")
    result = probe_first_consumer(
        target,
        namespace,
        storage_class,
        image=CONSUMER_IMAGE,
        timeout_s=harness_config.timeout(2 * BIND_TIMEOUT_S),
    )
    record.add(
        params={
            "storage_class": storage_class,
            "pod_node": result.pod_node,
            "volume_nodes": ",".join(result.volume_nodes),
        }
    )
    assert result.bound, f"the first-consumer claim of class {storage_class} did not bind: {result.problem}"
    assert not result.volume_nodes or result.pod_node in result.volume_nodes, (
        f"class {storage_class} put the volume on {', '.join(result.volume_nodes)} but the pod ran on {result.pod_node}"
    )
