"""Fidelity: the storage suite measures the storage, not itself (issue 5).

The fio matrix run through the suite's path on the embedded target (workload -> Job -> PVC of local-path -> pod
process) must agree within +-10 % with the same fio job file run directly on a directory of the same filesystem.
Runs alternate (suite, direct, suite, direct, ...) so drift of the machine hits both; the ratio of medians is
asserted per headline number (sequential-read MiB/s and random-read IOPS).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

import pytest
from kubernetes import config

from harness.catalog.render import render
from harness.catalog.spec import load_workload
from harness.cluster.namespaces import run_labels, scoped_namespace
from harness.cluster.target import Connection
from harness.embedded.cluster import EmbeddedCluster, EmbeddedOptions
from harness.parsers.fio import fio_measurements, parse_fio
from harness.runners.registry import run_workload
from harness.runners.skeleton import RunContext, scripts_configmap_name

ROUNDS = 3
PARAMS = {"storage_class": "local-path", "file_size": "128m", "runtime_s": "3", "ramp_s": "1"}
FIO_DIR = Path(__file__).resolve().parents[1] / "workloads" / "fio"


def _headline(fio_json: str) -> tuple[float, float]:
    ms = fio_measurements(parse_fio(fio_json))
    seq = next(m.value for m in ms if m.metric == "bw" and m.label("job") == "seqread")
    rnd = next(m.value for m in ms if m.metric == "iops" and m.label("job") == "randread")
    return seq, rnd


def _direct(directory: Path) -> tuple[float, float]:
    """The same job file and environment as the workload's run-fio.sh, run by this process."""
    env = dict(
        os.environ,
        FIO_TARGET=str(directory),
        FIO_SIZE=PARAMS["file_size"],
        FIO_RUNTIME=PARAMS["runtime_s"],
        FIO_RAMP=PARAMS["ramp_s"],
        FIO_NUMJOBS="4",
        FIO_SEQ_IODEPTH="32",
        FIO_RAND_IODEPTH="64",
        FIO_DIRECT="1",
        FIO_IOENGINE="libaio",
        FIO_RESULT_DIR=str(directory),
    )
    script = (FIO_DIR / "run-fio.sh").read_text().replace("/opt/aibench/matrix.fio", str(FIO_DIR / "matrix.fio"))
    out = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=300, check=True)
    return _headline(out.stdout)


@pytest.mark.timeout(900)
@pytest.mark.skipif(shutil.which("fio") is None, reason="fio is not installed (apt-get install fio)")
def test_suite_fio_agrees_with_direct_fio(benchmark, tmp_path: Path) -> None:
    spec = load_workload("fio")
    suite_runs: list[tuple[float, float]] = []
    direct_runs: list[tuple[float, float]] = []
    with EmbeddedCluster(EmbeddedOptions(state_dir=tmp_path / "state", system_services=False)) as cluster:
        api = config.new_client_from_config(config_file=str(cluster.kubeconfig_path))

        def one_round(i: int) -> None:
            with scoped_namespace(api, run_id="fidelity", test=f"round{i}") as ns:
                rendered = render(spec, PARAMS, context={"scripts_configmap": scripts_configmap_name(spec.name)})
                where = RunContext(
                    cluster=Connection(api), namespace=ns, labels=run_labels("fidelity", f"r{i}"), timeout_s=300
                )
                result = run_workload(spec, rendered, where)
                suite_runs.append(_headline(result.log_of("fio")))
            with tempfile.TemporaryDirectory(dir=tmp_path) as direct_dir:  # same filesystem as the PVs
                direct_runs.append(_direct(Path(direct_dir)))

        rounds = iter(range(ROUNDS))
        benchmark.pedantic(lambda: one_round(next(rounds)), rounds=ROUNDS, iterations=1)
    seq_ratio = statistics.median(s for s, _ in suite_runs) / statistics.median(s for s, _ in direct_runs)
    rnd_ratio = statistics.median(r for _, r in suite_runs) / statistics.median(r for _, r in direct_runs)
    benchmark.extra_info.update(
        {
            "seqread_ratio_suite_over_direct": round(seq_ratio, 3),
            "randread_iops_ratio_suite_over_direct": round(rnd_ratio, 3),
            "suite_runs": suite_runs,
            "direct_runs": direct_runs,
        }
    )
    assert 0.9 <= seq_ratio <= 1.1, f"sequential read: suite/direct = {seq_ratio:.3f} (outside +-10 %)"
    assert 0.9 <= rnd_ratio <= 1.1, f"random-read IOPS: suite/direct = {rnd_ratio:.3f} (outside +-10 %)"
