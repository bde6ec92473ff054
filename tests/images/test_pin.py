"""`images pin`: workload.yaml references to our images become <repo>:<release>@<digest>, comments and upstream
references untouched; an incomplete or malformed digest set is refused before any file changes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.catalog.spec import catalog_root, load_spec
from harness.errors import ConfigError
from harness.images.catalog import owned_images
from harness.images.pin import pin, read_digests


def _digest(i: int) -> str:
    return "sha256:" + f"{i:x}" * 64


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    root = tmp_path / "workloads"
    shutil.copytree(catalog_root(), root)
    return root


def test_pin_rewrites_every_reference_to_release_and_digest(catalog: Path) -> None:
    names = [image.name for image in owned_images(catalog)]
    digests = {name: _digest(i + 1) for i, name in enumerate(names)}
    before = (catalog / "trivial-job" / "workload.yaml").read_text()
    changed = pin("v1.4.0", digests, catalog)
    assert {p.parent.name for p in changed} >= {"fio", "fio-block", "net-echo", "s3-model-store", "tpu-jax-jobset"}
    fio = (catalog / "fio" / "workload.yaml").read_text()
    assert f'"ghcr.io/k8s-ai-bench/fio:v1.4.0@{digests["fio"]}"' in fio
    assert "# Built from workloads/fio/Dockerfile" in fio  # comments kept
    assert (
        load_spec(catalog / "fio-block" / "workload.yaml").images["fio"]
        == f"ghcr.io/k8s-ai-bench/fio:v1.4.0@{digests['fio']}"
    )
    assert (catalog / "trivial-job" / "workload.yaml").read_text() == before
    # pinning again (the next release) replaces tag and digest, never appends
    pin("v1.5.0", {n: _digest(9) for n in names}, catalog)
    assert load_spec(catalog / "fio" / "workload.yaml").images["fio"] == f"ghcr.io/k8s-ai-bench/fio:v1.5.0@{_digest(9)}"
    assert {image.name for image in owned_images(catalog)} == set(names)


def test_missing_digest_is_refused_before_any_change(catalog: Path) -> None:
    before = (catalog / "fio" / "workload.yaml").read_text()
    with pytest.raises(ConfigError, match=r"--digests: no digest for .*perftest"):
        pin("v1.4.0", {"fio": _digest(1)}, catalog)
    assert (catalog / "fio" / "workload.yaml").read_text() == before


def test_bad_digest_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"fio": "sha256:abc"}))
    with pytest.raises(ConfigError, match=r"fio: 'sha256:abc' is not a sha256:<64 hex> digest"):
        read_digests(path)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not readable JSON"):
        read_digests(path)


def test_cli_refuses_a_bad_release_tag(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps({}))
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "images", "pin", "--release", "v1 bad", "--digests", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == "k8s-ai-bench: error: --release 'v1 bad': not a valid image tag\n"


def test_a_mirror_gets_the_pinned_tag_not_the_release_digest() -> None:
    """After `images pin`, `--image-registry` points at what `images build --push` put there: the tag (a rebuilt
    image has another digest); without a mirror the digest stays."""
    from harness.catalog.render import rewrite_image

    pinned = f"ghcr.io/k8s-ai-bench/fio:v1.4.0@{_digest(1)}"
    assert rewrite_image(pinned, None) == pinned
    assert rewrite_image(pinned, "mirror.lan:5000") == "mirror.lan:5000/k8s-ai-bench/fio:v1.4.0"
    assert rewrite_image(f"ghcr.io/org/tool@{_digest(2)}", "m:5000") == f"m:5000/org/tool@{_digest(2)}"
