"""`report import`: a folder of real tool outputs becomes a judged run record, rendered and comparable."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.reporting.compare import compare
from harness.reporting.history import history
from harness.reporting.importer import import_results
from harness.reporting.load import load_record
from harness.thresholds import load_profile

DATA = Path(__file__).resolve().parent.parent / "data"

REAL = {
    "nccl-tests_allgather_1node-8gpu_v100_2020-no-hash-prefix_oob-2-FAILED_nccl-tests-issue37.txt": "failed",
    "nccl-tests_allreduce_1node-8gpu_a100_2020-format-redop-noroot_superbench.log": "skipped",
    "fio-3.33_seqread-1M_generated.json": "passed",
    "fio-3.33_randread-gtod_reduce-kubestr-like_generated.json": "skipped",
    "fio-2.17_2jobs_randread-randwrite_clat-usec-percentiles_pkb.json": "skipped",
    "perftest_ib_write_bw_8M_loopback_superbench.log": "skipped",
    "vllm-bench-serve_result_qwen2.5-vl-3b_rate1_200prompts_ascend-note.json": "failed",
    "vllm-benchmark_serving_result_sharegpt_hermes3-8b_vllm-readme.txt": "passed",
    "inference-perf_stage_0_lifecycle_metrics_vllm-llama3.1-8b_kubecon-na-2025.json": "passed",
    "locust-2.47.0_results_stats_history_get-and-404_u4-t6s_generated.csv": "failed",
    "iperf3-3.12_tcp-loopback_t2-P1_client_generated.json": "passed",
}
UNREADABLE = {
    "cut/nccl-tests_allreduce_p5.48xlarge_tag-output_cut-mid-row_aws-k8s-tester-pr503.txt": "truncated output",
    "other/ngc-entrypoint_driver-too-old_440.33-vs-418.67.txt": "format not recognised",
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    src = tmp_path / "outputs"
    for name in REAL:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DATA / name, src / name)
    for rel in UNREADABLE:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DATA / Path(rel).name, src / rel)
    (src / "blob.bin").write_bytes(b"\xff\xfe\x00binary")
    return src


def test_a_folder_of_mixed_real_outputs_becomes_a_judged_record(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "record"
    summary = import_results(folder, load_profile("cpu-only"), out, run_id="imp-a")
    record = load_record(out)
    by_id = {r.id: r for r in record.results}
    for name, status in REAL.items():
        assert by_id[f"import::{name}"].status == status, (name, by_id[f"import::{name}"].message)
    for rel, reason in UNREADABLE.items():
        result = by_id[f"import::{rel}"]
        assert result.status == "error" and reason in result.message and rel in result.message
    assert "not UTF-8 text" in by_id["import::blob.bin"].message
    assert sorted(f for f, _ in summary.unreadable) == sorted([*UNREADABLE, "blob.bin"])
    assert record.info.imported is not None
    assert summary.exit_code == 1 and record.info.imported["files"] == len(REAL) + len(UNREADABLE) + 1
    assert record.target_kind == "imported" and record.profile_name == "cpu-only"

    # why each one failed, in words
    assert by_id[f"import::{next(iter(REAL))}"].message == (
        "data corruption: nccl-tests reported 2 out-of-bounds value(s) (FAILED)"
    )
    vllm = by_id["import::vllm-bench-serve_result_qwen2.5-vl-3b_rate1_200prompts_ascend-note.json"]
    assert "inference-tpot-p99-interactive-path" in vllm.message and "35.01" in vllm.message
    assert "not in this file: inference-goodput-reported" in vllm.message  # request_goodput was null
    skipped = by_id["import::fio-3.33_randread-gtod_reduce-kubestr-like_generated.json"]
    assert skipped.message.startswith("measured, not judged: no fio bar of profile cpu-only has data")

    # the collective of a pre-2023 log comes from the command line pasted above its table
    issue37 = by_id[f"import::{next(iter(REAL))}"]
    assert {m.labels.get("op") for m in issue37.measurements} == {"all_gather"}

    # provenance on every measurement: tool, file, sha256 of the bytes read
    fio = by_id["import::fio-3.33_seqread-1M_generated.json"]
    digest = hashlib.sha256((DATA / "fio-3.33_seqread-1M_generated.json").read_bytes()).hexdigest()
    assert fio.params == {
        "imported": "true", "tool": "fio", "file": "fio-3.33_seqread-1M_generated.json", "sha256": digest
    }  # fmt: skip
    assert {json.dumps(m.source, sort_keys=True) for m in fio.measurements} == {
        json.dumps({"file": "fio-3.33_seqread-1M_generated.json", "sha256": digest, "tool": "fio"})
    }
    assert all("sha256" not in m.labels for r in record.results for m in r.measurements)


def test_imports_compare_and_trend_like_runs(folder: Path, tmp_path: Path) -> None:
    profile = load_profile("cpu-only")
    import_results(folder, profile, tmp_path / "a", run_id="imp-a", clock=lambda: 1_000.0)
    import_results(folder, profile, tmp_path / "b", run_id="imp-b", clock=lambda: 2_000.0)
    diff = compare(load_record(tmp_path / "a"), load_record(tmp_path / "b"))
    assert diff.rows and not diff.only_in_base and not diff.only_in_new
    assert all(row.delta == 0 for row in diff.rows)
    trend = history([tmp_path / "a", tmp_path / "b"])
    ttft = [s for s in trend.series if s.metric == "ttft" and dict(s.labels).get("tool") == "inference-perf"]
    assert ttft and all([p.run_id for p in s.points] == ["imp-a", "imp-b"] for s in ttft)


def test_cli_renders_and_lists_what_it_could_not_read(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli"
    code = main(["report", "import", str(folder), "--profile", "cpu-only", "--out", str(out), "--run-id", "x"])
    captured = capsys.readouterr()
    assert code == 1
    assert {p.name for p in out.iterdir()} >= {"report.html", "junit.xml", "results.csv", "run.json"}
    assert "k8s-ai-bench: not imported: blob.bin: not UTF-8 text" in captured.err
    assert "3 unreadable" in captured.out and "against profile cpu-only" in captured.out
    junit = (out / "junit.xml").read_text()
    assert "cut/nccl-tests_allreduce_p5.48xlarge" in junit


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "import", "/nonexistent-aibench", "--profile", "cpu-only"], "is not a directory"),
        (["report", "import", "{empty}", "--profile", "cpu-only"], "holds no files"),
        (["report", "import", "{empty}", "--profile", "no-such-profile"], "unknown profile 'no-such-profile'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    argv = [a.replace("{empty}", str(tmp_path / "empty")) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
