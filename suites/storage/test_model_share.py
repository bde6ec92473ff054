"""Shared model volume: one writer, N concurrent readers on different nodes, every byte verified.

One test per StorageClass of the target (``storage_class`` is parametrized by ``suites/storage/conftest.py`` from
the session's capabilities). A class whose provisioner is known to provide ReadWriteOnce volumes only is skipped
with that reason; any other class is asked for a ReadWriteMany claim, and a class that cannot provide one fails as
a conformance finding carrying the provisioner's event text (the runner fails fast on ProvisioningFailed).
"""

from __future__ import annotations

import dataclasses

import pytest

from harness.errors import WorkloadFailed
from harness.fixture_types import Capabilities, Profile, RunWorkload, TestRecord
from harness.measurement import Measurement
from harness.parsers.sentinel import parse_sentinel
from harness.thresholds.assertions import assert_passed
from harness.thresholds.evaluate import evaluate

WORKLOAD = "model-share"
ACCESS_MODE = "ReadWriteMany"
MIN_READERS, MAX_READERS = 2, 4

#: Provisioners whose volumes attach to one node at a time (cloud block disks) or live on one node: a
#: ReadWriteMany filesystem claim cannot be satisfied by them, whatever the class parameters say.
RWO_ONLY: dict[str, str] = {
    "ebs.csi.aws.com": "ReadWriteOnce block devices only",
    "kubernetes.io/aws-ebs": "ReadWriteOnce block devices only",
    "pd.csi.storage.gke.io": "ReadWriteOnce block devices only",
    "kubernetes.io/gce-pd": "ReadWriteOnce block devices only",
    "disk.csi.azure.com": "ReadWriteOnce block devices only",
    "kubernetes.io/azure-disk": "ReadWriteOnce block devices only",
    "cinder.csi.openstack.org": "ReadWriteOnce block devices only",
    "kubernetes.io/cinder": "ReadWriteOnce block devices only",
    "dobs.csi.digitalocean.com": "ReadWriteOnce block devices only",
    "linodebs.csi.linode.com": "ReadWriteOnce block devices only",
    "csi.hetzner.cloud": "ReadWriteOnce block devices only",
    "topolvm.io": "ReadWriteOnce block devices only",
    "rancher.io/local-path": "node-local ReadWriteOnce directories only",
    "openebs.io/local": "node-local ReadWriteOnce directories only",
    "kubernetes.io/no-provisioner": "statically created local volumes only (no dynamic provisioning)",
}


def _rwx_unsupported(name: str, capabilities: Capabilities) -> str | None:
    info = next((sc for sc in capabilities.storage_classes if sc.name == name), None)
    if info is None:
        return f"no StorageClass {name!r} on the target"
    kind = RWO_ONLY.get(info.provisioner)
    return f"class {name} (provisioner {info.provisioner}) provides {kind}" if kind else None


def _readers(capabilities: Capabilities) -> int:
    """As many readers as ready nodes, within [MIN_READERS, MAX_READERS]: two readers even on one node, so the
    concurrent-read path is always exercised."""
    ready = sum(1 for n in capabilities.nodes if n.ready)
    return max(MIN_READERS, min(MAX_READERS, ready))


@pytest.mark.storage
@pytest.mark.conformance
@pytest.mark.perf
def test_model_share(
    storage_class: str, run_workload: RunWorkload, capabilities: Capabilities, profile: Profile, record: TestRecord
) -> None:
    """A ReadWriteMany volume shares one model between concurrent readers on different nodes: the claim binds,
    every reader reads exactly the bytes the writer wrote, and write and read bandwidth clear the profile's bars."""
    if reason := _rwx_unsupported(storage_class, capabilities):
        pytest.skip(reason)
    readers = _readers(capabilities)
    try:
        run = run_workload(WORKLOAD, storage_class=storage_class, access_mode=ACCESS_MODE, readers=readers)
    except WorkloadFailed as exc:
        _, provisioning, detail = str(exc).partition("cannot be provisioned: ")
        if provisioning:
            raise AssertionError(f"class {storage_class} cannot provide {ACCESS_MODE}: {detail}") from None
        raise

    blocks = {key: parse_sentinel(text) for key, text in run.logs.items()}
    measurements: list[Measurement] = [
        dataclasses.replace(m, emulated=run.emulated) for block in blocks.values() for m in block.measurements
    ]
    record.add(measurements=measurements)

    writer = [b for key, b in blocks.items() if key.endswith("/writer")]
    reader_blocks = sorted(
        (b for key, b in blocks.items() if key.endswith("/reader")), key=lambda b: int(b.info["index"])
    )
    assert len(writer) == 1, f"expected one writer result, got {len(writer)} (logs: {sorted(run.logs)})"
    assert len(reader_blocks) == readers, (
        f"{len(reader_blocks)} of {readers} readers reported a result (logs: {sorted(run.logs)})"
    )
    written = list(writer[0].info["sha256"])
    differing = [
        f"reader {b.info['index']} on {b.info['node']}: sha256 {list(b.info['sha256'])}"
        for b in reader_blocks
        if list(b.info["sha256"]) != written
    ]
    assert not differing, (
        f"class {storage_class}: readers did not see the bytes the writer wrote (writer sha256 {written}): "
        + "; ".join(differing)
    )
    errors = [m for m in measurements if m.metric == "integrity_errors" and m.value != 0]
    assert not errors, f"class {storage_class}: integrity errors: " + ", ".join(str(m) for m in errors)

    checks = evaluate(profile, WORKLOAD, measurements)
    record.add(checks=checks)
    assert_passed(checks)
