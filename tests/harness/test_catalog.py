"""Workload specs load strictly and render exactly: unknown keys, params and placeholders are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.catalog.render import render, rewrite_image
from harness.catalog.spec import load_spec, load_workload
from harness.errors import ConfigError

WORKLOADS = Path(__file__).resolve().parents[1] / "data" / "workloads"


def _write(tmp_path: Path, body: str, manifest: str = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n") -> Path:
    directory = tmp_path / "w"
    directory.mkdir(exist_ok=True)
    (directory / "pod.yaml").write_text(manifest)
    (directory / "workload.yaml").write_text(body)
    return directory / "workload.yaml"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("name: w\nkind: job\nmanifests: [pod.yaml]\ntimeout: 3\n", "timeout: unknown key"),
        ("name: other\nkind: job\nmanifests: [pod.yaml]\n", "name: must equal the directory name 'w'"),
        (
            "name: w\nkind: cron\nmanifests: [pod.yaml]\n",
            "kind: must be one of job, mpijob, jobset, rayjob, service (got 'cron')",
        ),
        ("name: w\nkind: job\nmanifests: [missing.yaml]\n", "manifests[0]: no such file"),
        ("name: w\nkind: job\nmanifests: [pod.yaml]\nimages: {x: 'busybox'}\n", "images.x: must be pinned"),
        ("name: w\nkind: job\nmanifests: [pod.yaml]\nimages: {x: 'busybox:latest'}\n", "images.x: must not use"),
        ("name: w\nkind: job\nmanifests: [pod.yaml]\nparams: {n: {defualt: 1}}\n", "params.n.defualt: unknown key"),
        ("name: w\nkind: job\nmanifests: [pod.yaml]\ntimeout_s: -1\n", "timeout_s: must be a positive number"),
        ("name: w\nkind: job\nmanifests: [pod.yaml\n", "invalid YAML"),
        ("name: w\nkind: job\n", "manifests: required"),
    ],
)
def test_spec_errors_name_file_and_key(tmp_path: Path, body: str, message: str) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(ConfigError) as exc:
        load_spec(path)
    assert str(exc.value).startswith(str(path)) and message in str(exc.value)


def test_unknown_workload_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"workload 'nope': no .* \(known: echo-result, echo-shell, http-echo\)"):
        load_workload("nope", WORKLOADS)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("python:3.11-slim", "mirror.lab:5000/library/python:3.11-slim"),
        ("docker.io/library/python:3.11-slim", "mirror.lab:5000/library/python:3.11-slim"),
        ("nvcr.io/nvidia/pytorch:24.05-py3", "mirror.lab:5000/nvidia/pytorch:24.05-py3"),
        ("ghcr.io/org/tool@sha256:abc", "mirror.lab:5000/org/tool@sha256:abc"),
        ("org/tool:1.0", "mirror.lab:5000/org/tool:1.0"),
    ],
)
def test_images_are_rewritten_for_a_mirror(image: str, expected: str) -> None:
    assert rewrite_image(image, "mirror.lab:5000") == expected
    assert rewrite_image(image, None) == image


def test_render_substitutes_params_images_and_context() -> None:
    spec = load_spec(WORKLOADS / "echo-result" / "workload.yaml")
    rendered = render(
        spec, {"value": 3, "completions": 2}, context={"scripts_configmap": "cm"}, image_registry="mirror.lab"
    )
    job = rendered.documents[0]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "mirror.lab/library/python:3.11-slim"
    assert container["command"][-2:] == ["3", "0"] and job["spec"]["completions"] == 2
    assert rendered.params == {"value": "3", "completions": "2", "exit_code": "0", "gpus": "0"}
    assert "result.py" in rendered.scripts


def test_duplicate_key_in_workload_yaml_is_refused(tmp_path: Path) -> None:
    """PyYAML alone keeps the last of two equal keys, so the file would mean something else than it reads: the one
    strict loader (harness.yamlfile) refuses it with one line naming the file, the key and both lines."""
    path = _write(tmp_path, "name: w\nkind: job\nmanifests: [pod.yaml]\nkind: service\n")
    with pytest.raises(ConfigError) as info:
        load_spec(path)
    message = str(info.value)
    assert message.endswith("workload.yaml: line 4: duplicate key 'kind' (first on line 2)"), message
    assert "\n" not in message
