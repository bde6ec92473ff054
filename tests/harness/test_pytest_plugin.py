"""The harness's pytest plugin, exercised the way suites use it (pytester runs against the embedded target)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)


def _results(pytester: pytest.Pytester) -> list[dict]:
    runs = [p for p in (pytester.path / "reports").iterdir() if p.is_dir() and p.name != "latest"]
    assert len(runs) == 1
    return [json.loads(line) for line in (runs[0] / "results.jsonl").read_text().splitlines()]


def test_bad_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--target", "k3s")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--target: must be one of embedded, local-kube, kube (got 'k3s')*"])


def test_markers_are_registered_and_strict(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest
        @pytest.mark.perf
        @pytest.mark.storage
        @pytest.mark.requires("gpu")
        def test_ok(): pass
        @pytest.mark.prf
        def test_typo(): pass
    """)
    result = pytester.runpytest("--strict-markers", "--collect-only")
    result.stdout.fnmatch_lines(["*'prf' not found in `markers` configuration option*"])
    markers = pytester.runpytest("--markers").stdout.str()
    for name in ("conformance", "perf", "control_plane", "gpu", "tpu", "rdma", "istio", "ray", "slow", "requires"):
        assert f"@pytest.mark.{name}" in markers


def test_header_requires_skips_and_records(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest
        from harness.measurement import Measurement
        from harness.thresholds.assertions import assert_passed
        from harness.thresholds.evaluate import evaluate

        @pytest.mark.gpu
        def test_needs_gpu(): pass

        @pytest.mark.requires("istio")
        def test_needs_istio(): pass

        @pytest.mark.conformance
        @pytest.mark.control_plane
        def test_target_works(target, capabilities, namespace):
            '''The embedded target starts and serves.'''
            assert capabilities.embedded and namespace.startswith("aib-")

        @pytest.mark.perf
        @pytest.mark.storage
        def test_bar_failure(profile, record):
            '''A measured number below its bar fails with the bar's source.'''
            measurements = [Measurement(metric="bw", value=12.0, unit="MiB/s",
                                        labels={"job": "seqread", "direction": "read"})]
            checks = evaluate(profile, "fio", measurements)
            record.add(workload="fio", measurements=measurements, checks=checks)
            assert_passed(checks)
    """)
    result = pytester.runpytest("-o", "aibench_suite_run=true", "--reports-dir", "reports", "--run-id", "r1", "-rs")
    out = result.stdout.str()
    assert "target: embedded embedded, server v1.31.0-aibench, 1 node(s)" in out
    assert "accelerators: none" in out and "profile: cpu-only" in out
    assert "requires gpu: no node has allocatable nvidia.com/gpu" in out
    assert "requires istio: istio is not installed (virtualservices.networking.istio.io is not served)" in out
    result.assert_outcomes(passed=1, failed=1, skipped=2)
    records = {r["name"]: r for r in _results(pytester)}
    failed = records["test_bar_failure"]
    assert failed["status"] == "failed" and failed["failure_kind"] == "threshold" and failed["area"] == "storage"
    assert failed["measurements"][0]["value"] == 12.0 and failed["checks"]
    assert "fio-seqread-bw" in failed["message"] and "source:" in failed["message"]
    assert records["test_target_works"]["status"] == "passed"
    assert records["test_target_works"]["doc"] == "The embedded target starts and serves."
    assert records["test_needs_gpu"]["status"] == "skipped"
    info = json.loads((pytester.path / "reports" / "r1" / "run.json").read_text())
    assert info["target"]["kind"] == "embedded" and info["profile"]["name"] == "cpu-only"
    assert (pytester.path / "reports" / "latest").resolve().name == "r1"
    assert "token" not in json.dumps(info).lower() or "<redacted>" in json.dumps(info)


def test_plugin_is_inert_for_plain_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(): assert 1 + 1 == 2")
    result = pytester.runpytest("--reports-dir", "reports")
    result.assert_outcomes(passed=1)
    assert not Path(pytester.path / "reports").exists()


def _kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: lab\n"
        f"clusters: [{{name: lab, cluster: {{server: '{server}'}}}}]\n"
        "users: [{name: lab, user: {token: secret-token}}]\n"
        "contexts: [{name: lab, context: {cluster: lab, user: lab}}]\n"
    )
    return path


def test_unreachable_cluster_exits_3_without_traceback(pytester: pytest.Pytester) -> None:
    kubeconfig = _kubeconfig(pytester.path / "kubeconfig", "https://127.0.0.1:9")
    pytester.makepyfile("def test_needs_target(target): pass")
    result = pytester.runpytest_subprocess(
        "--target", "kube", "--kube-context", "lab", "--kubeconfig", str(kubeconfig), "-o", "aibench_suite_run=true"
    )
    assert result.ret == 3
    out = result.stdout.str() + result.stderr.str()
    assert "target unavailable: --kube-context lab: API server unreachable" in out
    assert "Traceback" not in out and "secret-token" not in out


def test_missing_context_is_a_configuration_error(pytester: pytest.Pytester) -> None:
    kubeconfig = _kubeconfig(pytester.path / "kubeconfig", "https://127.0.0.1:9")
    pytester.makepyfile("def test_needs_target(target): pass")
    result = pytester.runpytest_subprocess(
        "--target", "kube", "--kube-context", "prod", "--kubeconfig", str(kubeconfig), "-o", "aibench_suite_run=true"
    )
    assert result.ret == 2
    assert "--kube-context prod: no such context" in result.stdout.str() + result.stderr.str()


def test_rejected_credentials_exit_3_and_say_so(pytester: pytest.Pytester, host_cluster) -> None:
    import yaml

    config = yaml.safe_load(host_cluster.kubeconfig_path.read_text())
    config["users"][0]["user"]["token"] = "expired-token-value"
    kubeconfig = pytester.path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    pytester.makepyfile("def test_needs_target(target): pass")
    result = pytester.runpytest_subprocess(
        "--target",
        "kube",
        "--kube-context",
        "aibench-embedded",
        "--kubeconfig",
        str(kubeconfig),
        "-o",
        "aibench_suite_run=true",
    )
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == 3, out
    assert "credentials rejected (401" in out and "expired-token-value" not in out


def test_a_failed_verdict_is_a_conformance_failure_recorded_as_a_check(pytester: pytest.Pytester) -> None:
    """A verdict rule (here no-corruption) fails the test as conformance, not threshold, and its Check is in the
    record (results.jsonl and the JUnit properties) like a bar's."""
    pytester.makepyfile("""
        import pytest
        from harness.measurement import Measurement
        from harness.thresholds.assertions import assert_passed
        from harness.thresholds.model import RuleKind
        from harness.thresholds.verdicts import judge

        @pytest.mark.network
        def test_corrupt(profile, record):
            evidence = [Measurement(metric="wrong", value=3, unit="count", labels={"size": "1024"})]
            verdicts = judge(profile, "collective-allreduce", RuleKind.NO_CORRUPTION, evidence)
            record.add(workload="collective-allreduce", measurements=evidence, checks=verdicts)
            assert_passed([], verdicts=verdicts)
    """)
    result = pytester.runpytest("-o", "aibench_suite_run=true", "--reports-dir", "reports", "--run-id", "r2")
    result.assert_outcomes(failed=1)
    (failed,) = _results(pytester)
    assert failed["failure_kind"] == "conformance"
    (check,) = failed["checks"]
    assert check["kind"] == "no-corruption" and check["status"] == "failed"
    assert check["message"].startswith("collective-no-corruption: data corruption: 3 wrong element(s) at size 1024 B")
    assert "collective-no-corruption: data corruption" in failed["message"]
    from harness.reporting.junit import write_junit
    from harness.reporting.load import load_record

    junit = write_junit(load_record(pytester.path / "reports" / "r2"), pytester.path / "junit.xml").read_text()
    assert 'name="check.collective-no-corruption"' in junit and "failed: collective-no-corruption: data" in junit


MIXED_SPEC = """\
apiVersion: aibench.io/v1
kind: ClusterSpec
host: {include: true}
nodePools:
  - name: gpu
    count: 1
    capacity: {cpu: "64", memory: 512Gi, nvidia.com/gpu: "8", pods: "110"}
    labels: {nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}
    taints: [{key: nvidia.com/gpu, value: present, effect: NoSchedule}]
"""


def test_a_workload_whose_hardware_only_emulated_nodes_have_is_skipped(pytester: pytest.Pytester) -> None:
    """Beside real nodes, emulated ones only measure placement: a service that needs a GPU, which only the emulated
    pool has, is skipped naming that (found on the real control plane: vLLM sat Unschedulable until its timeout)."""
    (pytester.path / "spec.yaml").write_text(MIXED_SPEC)
    pytester.makepyfile("""
        def test_vllm(deploy_service):
            with deploy_service("inference-server-vllm"):
                raise AssertionError("deployed where no real node has a GPU")
    """)
    result = pytester.runpytest(
        "-o", "aibench_suite_run=true", "--cluster-spec", "spec.yaml", "--reports-dir", "reports", "-rs"
    )  # fmt: skip
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*workload inference-server-vllm requires gpu on a real node*no node has*"])
