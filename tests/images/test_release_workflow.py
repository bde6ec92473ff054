"""The release workflow (.github/workflows/release.yaml) parses, runs on version tags, builds every image we own
from its own folder for amd64 and arm64 (or says why not), pins every action to a version, and pins the catalog."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from harness.catalog.spec import catalog_root
from harness.images.catalog import OWNED_REPOSITORY, owned_images

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "release.yaml"
AMD64_ONLY = {"tpu-jax"}  # Cloud TPU hosts are x86; libtpu ships no aarch64 wheel


def _workflow() -> dict[object, object]:
    data = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(data, dict)
    return data


def test_runs_on_version_tags() -> None:
    data = _workflow()
    trigger = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` as True
    assert trigger == {"push": {"tags": ["v*"]}}


def test_matrix_builds_every_owned_image_from_its_folder() -> None:
    jobs = _workflow()["jobs"]
    assert isinstance(jobs, dict)
    entries = {e["name"]: e for e in jobs["images"]["strategy"]["matrix"]["include"]}
    repo = catalog_root().parent
    owned = {image.name: image for image in owned_images()}
    assert set(entries) == set(owned)
    for name, image in owned.items():
        assert entries[name]["context"] == str(image.context.relative_to(repo))
        platforms = entries[name]["platforms"].split(",")
        assert platforms == (["linux/amd64"] if name in AMD64_ONLY else ["linux/amd64", "linux/arm64"])
    build = next(s for s in jobs["images"]["steps"] if s.get("id") == "build")
    assert build["with"]["push"] is True
    assert build["with"]["tags"] == f"{OWNED_REPOSITORY}/${{{{ matrix.name }}}}:${{{{ github.ref_name }}}}"


def test_actions_are_pinned_to_versions() -> None:
    jobs = _workflow()["jobs"]
    assert isinstance(jobs, dict)
    uses = [step["uses"] for job in jobs.values() for step in job["steps"] if "uses" in step]
    assert {u.split("@")[0] for u in uses} >= {
        "docker/setup-qemu-action",
        "docker/setup-buildx-action",
        "docker/build-push-action",
        "docker/login-action",
    }
    for ref in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+\.\d+\.\d+", ref), f"{ref}: pin an exact version"


def test_pin_job_runs_images_pin_with_the_digests() -> None:
    jobs = _workflow()["jobs"]
    assert isinstance(jobs, dict)
    pin = jobs["pin"]
    assert pin["needs"] == "images"
    script = "\n".join(step.get("run", "") for step in pin["steps"])
    assert 'k8s-ai-bench images pin --release "${{ github.ref_name }}" --digests digests.json' in script
