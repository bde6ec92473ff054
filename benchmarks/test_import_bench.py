"""``report import`` of 1,000 files in <= 10 s: detect, parse, judge, write the record and render it.

The folder holds real outputs from tests/data (nccl-tests, fio, perftest, iperf3, vLLM, inference-perf, locust),
copied round-robin under distinct names, plus a few unreadable ones; what is timed is what ``k8s-ai-bench report
import DIR --profile cpu-only`` does: :func:`import_results` and :func:`render_all` (HTML, JUnit, CSV).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness.reporting.importer import import_results
from harness.reporting.render import render_all
from harness.thresholds import load_profile

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
FILES = 1000
BUDGET_S = 10.0
SAMPLES = (
    "nccl-tests_allreduce_1node-8gpu_a100_2020-format-redop-noroot_superbench.log",
    "nccl-tests_allgather_1node-8gpu_v100_2020-no-hash-prefix_oob-2-FAILED_nccl-tests-issue37.txt",
    "fio-3.33_seqread-1M_generated.json",
    "fio-2.1.4_5jobs_clat-usec_dup-keys_pkb.json",
    "perftest_ib_write_bw_8M_loopback_superbench.log",
    "iperf3-3.12_tcp-loopback_t2-O1-P4-reverse_client_generated.json",
    "vllm-bench-serve_result_qwen2.5-vl-3b_rate1_200prompts_ascend-note.json",
    "vllm-benchmark_serving_result_sharegpt_hermes3-8b_vllm-readme.txt",
    "inference-perf_stage_0_lifecycle_metrics_vllm-llama3.1-8b_kubecon-na-2025.json",
    "locust-2.47.0_results_stats_history_get-and-404_u4-t6s_generated.csv",
    "ngc-entrypoint_driver-too-old_440.33-vs-418.67.txt",  # not a result: listed as unreadable
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("import-src")
    for i in range(FILES):
        name = SAMPLES[i % len(SAMPLES)]
        target = src / f"node-{i // 50:02d}" / f"{i:04d}-{name}"
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(DATA / name, target)
    return src


def test_import_1000_files(benchmark, folder: Path, tmp_path: Path) -> None:
    profile = load_profile("cpu-only")
    runs = iter(range(100))

    def run() -> tuple[int, int]:
        out = tmp_path / f"run-{next(runs)}"
        summary = import_results(folder, profile, out, run_id=out.name)
        render_all(out)
        return summary.files, len(summary.unreadable)

    files, unreadable = benchmark.pedantic(run, rounds=3)
    assert files == FILES and unreadable == FILES // len(SAMPLES) + (FILES % len(SAMPLES) > len(SAMPLES) - 1)
    assert benchmark.stats.stats.max <= BUDGET_S, f"slowest import took {benchmark.stats.stats.max:.1f} s"
    benchmark.extra_info["load_1min"] = round(os.getloadavg()[0], 2)
    benchmark.extra_info["report_html_bytes"] = (tmp_path / "run-0" / "report.html").stat().st_size
