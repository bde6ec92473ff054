"""The model-share workload: for real on the embedded target through the job runner, and its script on its own.

The file is not called ``test_model_share.py`` because the suite module ``suites/storage/test_model_share.py`` has
that name, and pytest (rootdir-relative imports, no packages) cannot collect two modules of one basename together.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from kubernetes import client
from workload_runs import run_spec

from harness.catalog.spec import catalog_root, load_spec
from harness.cluster.capabilities import StorageClassInfo
from harness.errors import WorkloadFailed
from harness.parsers.sentinel import SentinelResult, parse_sentinel
from harness.runners.job import RunResult

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = catalog_root() / "model-share" / "model_share.py"


def _run(api: client.ApiClient, ns: str, tmp_path: Path, timeout_s: float = 120, **params: Any) -> RunResult:
    return run_spec(
        api, load_spec(catalog_root() / "model-share" / "workload.yaml"), ns, tmp_path, timeout_s=timeout_s, **params
    )


def _blocks(logs: dict[str, str], container: str) -> list[SentinelResult]:
    found = [parse_sentinel(text) for key, text in logs.items() if key.endswith("/" + container)]
    return sorted(found, key=lambda b: int(b.info.get("index", 0)))


def _values(block: SentinelResult, metric: str, **labels: str) -> list[float]:
    return [
        m.value
        for m in block.measurements
        if m.metric == metric and all(m.labels.get(k) == v for k, v in labels.items())
    ]


def test_writer_and_concurrent_readers_share_identical_bytes(api: client.ApiClient, ns: str, tmp_path: Path) -> None:
    result = _run(api, ns, tmp_path, size_mib="48", files="3", readers="3")
    writer = _blocks(result.logs, "writer")
    readers = _blocks(result.logs, "reader")
    assert len(writer) == 1 and len(readers) == 3
    written = writer[0].info["sha256"]
    assert len(written) == 3 and _values(writer[0], "bytes", direction="write") == [48 * 1024 * 1024]
    assert _values(writer[0], "bw", direction="write")[0] > 0
    for reader in readers:
        assert reader.info["sha256"] == written, f"reader {reader.info['index']} read other bytes"
        assert _values(reader, "integrity_errors", reader=str(reader.info["index"])) == [0]
        assert _values(reader, "bw", direction="read", scope="reader")[0] > 0
        assert _values(reader, "bytes", direction="read", scope="reader") == []  # per-reader bytes carry no scope
        assert _values(reader, "bytes", direction="read", reader=str(reader.info["index"])) == [48 * 1024 * 1024]
        assert all(m.labels["storage_class"] == "local-path" for m in reader.measurements)
    fleet = readers[0]
    assert _values(fleet, "readers_reported") == [3]
    assert _values(fleet, "integrity_errors", scope="all") == [0]
    assert _values(fleet, "readers_distinct_nodes") == [1], "the embedded target is one node"
    assert _values(fleet, "bw", direction="read", scope="aggregate")[0] > 0
    assert _values(fleet, "time_to_all_ready")[0] > 0
    assert not result.emulated
    manifests = (tmp_path / "artifacts" / "manifests.yaml").read_text()
    assert "ReadWriteMany" in manifests and "preferredDuringSchedulingIgnoredDuringExecution" in manifests


def test_unknown_storage_class_fails_at_once_naming_the_class(api: client.ApiClient, ns: str, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(WorkloadFailed) as exc:
        _run(api, ns, tmp_path, timeout_s=60, storage_class="no-such-class")
    elapsed = time.monotonic() - started
    message = str(exc.value)
    assert 'storageclass.storage.k8s.io "no-such-class" not found' in message
    assert "model-share" in message and "timed out" not in message
    assert elapsed < 10, f"a claim that can never bind must fail fast, took {elapsed:.1f}s"

    # The suite turns exactly this failure into a conformance finding about the class, not an error.
    suite = _suite()
    nfs = StorageClassInfo(name="no-such-class", provisioner="nfs.csi.k8s.io", binding_mode="Immediate", default=False)
    caps = _Caps(nfs)

    def run_workload(name: str, **params: Any) -> RunResult:
        assert name == "model-share" and params["storage_class"] == "no-such-class"
        assert params["access_mode"] == "ReadWriteMany"
        raise exc.value

    with pytest.raises(AssertionError) as finding:
        suite.test_model_share("no-such-class", run_workload, caps, None, None)
    assert str(finding.value).startswith(
        'class no-such-class cannot provide ReadWriteMany: storageclass.storage.k8s.io "no-such-class" not found'
    )


# ------------------------------------------------------------------------------------------ the script on its own
def _script(data: Path, role: str, **env: str) -> subprocess.Popen[str]:
    environ = {**os.environ, "DATA_DIR": str(data), "STORAGE_CLASS": "test", "NODE_NAME": "node-a", **env}
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), role], env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def test_readers_started_before_the_writer_wait_for_its_manifest(tmp_path: Path) -> None:
    readers = [_script(tmp_path, "read", READERS="2", JOB_COMPLETION_INDEX=str(i), WAIT_S="30") for i in range(2)]
    time.sleep(0.3)
    assert all(r.poll() is None for r in readers), "readers must wait for the manifest, not fail"
    assert _finish(_script(tmp_path, "write", SIZE_MIB="8", FILES="2", CHUNK_MIB="1"))[0] == 0
    results = [_finish(r) for r in readers]
    assert [code for code, _, _ in results] == [0, 0], results
    fleet = parse_sentinel(results[0][1])
    assert _values(fleet, "integrity_errors", scope="all") == [0]
    assert _values(fleet, "readers_reported") == [2]


def test_corrupted_shard_is_counted_by_every_reader(tmp_path: Path) -> None:
    assert _finish(_script(tmp_path, "write", SIZE_MIB="4", FILES="2", CHUNK_MIB="1"))[0] == 0
    shard = tmp_path / "model" / "part-001.bin"
    data = bytearray(shard.read_bytes())
    data[12345] ^= 0xFF
    shard.write_bytes(bytes(data))
    readers = [_script(tmp_path, "read", READERS="2", JOB_COMPLETION_INDEX=str(i), WAIT_S="30") for i in range(2)]
    results = [_finish(r) for r in readers]
    assert [code for code, _, _ in results] == [0, 0], "a reader reports what it read; the suite judges it"
    for i, (_, out, err) in enumerate(results):
        assert _values(parse_sentinel(out), "integrity_errors", reader=str(i)) == [1]
        assert "part-001.bin differs from the writer's" in err
    assert _values(parse_sentinel(results[0][1]), "integrity_errors", scope="all") == [2]


def test_barrier_is_bounded_and_says_who_is_missing(tmp_path: Path) -> None:
    assert _finish(_script(tmp_path, "write", SIZE_MIB="1", FILES="1", CHUNK_MIB="1"))[0] == 0
    code, out, err = _finish(_script(tmp_path, "read", READERS="2", JOB_COMPLETION_INDEX="0", WAIT_S="0.5"))
    assert code == 3 and "===AIBENCH-RESULT-BEGIN===" not in out
    assert "timed out after" in err and "all 2 readers at the barrier" in err


def test_volume_too_small_is_said_before_writing(tmp_path: Path) -> None:
    code, _, err = _finish(_script(tmp_path, "write", SIZE_MIB=str(1 << 30), FILES="1"))
    assert code == 2 and "raise pvc_size" in err


# ------------------------------------------------------------------------------------------ the suite's class rules
def _suite() -> ModuleType:
    path = ROOT / "suites" / "storage" / "test_model_share.py"
    spec = importlib.util.spec_from_file_location("model_share_suite", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Caps:
    def __init__(self, *classes: StorageClassInfo) -> None:
        self.storage_classes = classes
        self.nodes = ()


def test_suite_skips_block_only_classes_with_the_exact_reason() -> None:
    suite = _suite()
    ebs = StorageClassInfo(name="gp3", provisioner="ebs.csi.aws.com", binding_mode="WaitForFirstConsumer", default=True)
    efs = StorageClassInfo(name="efs", provisioner="efs.csi.aws.com", binding_mode="Immediate", default=False)
    embedded = StorageClassInfo(
        name="local-path", provisioner="aibench.io/local-path", binding_mode="Immediate", default=True
    )
    caps = _Caps(ebs, efs, embedded)
    assert (
        suite._rwx_unsupported("gp3", caps)
        == "class gp3 (provisioner ebs.csi.aws.com) provides ReadWriteOnce block devices only"
    )
    assert suite._rwx_unsupported("efs", caps) is None
    assert suite._rwx_unsupported("local-path", caps) is None, "the embedded local-path class shares one machine"
    assert suite._rwx_unsupported("gone", _Caps()) == "no StorageClass 'gone' on the target"
