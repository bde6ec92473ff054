"""The catalog's images: every one pinned, ours each built from exactly one Dockerfile with a pinned base, and
`images list` printing them; a catalog that breaks those rules is refused with one line."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.catalog.spec import catalog_root
from harness.errors import ConfigError
from harness.images.catalog import OWNED_REPOSITORY, ImageRef, base_images, image_uses, owned_images

CLI = [sys.executable, "-m", "harness.cli"]


def test_every_owned_image_has_one_dockerfile_naming_it() -> None:
    owned = {image.name: image for image in owned_images()}
    assert set(owned) == {"fio", "net-tools", "s3bench", "perftest", "tpu-jax"}
    assert owned["net-tools"].context.name == "net-iperf3"
    assert set(owned["net-tools"].workloads) >= {"net-iperf3", "net-echo", "net-latency", "net-reach", "net-multus"}
    for image in owned.values():
        first = image.dockerfile.read_text().splitlines()[0]
        assert first == f"# image: {image.name}"


def test_dockerfiles_pin_their_base_and_apt_packages() -> None:
    for image in owned_images():
        text = image.dockerfile.read_text()
        for base in base_images(image.dockerfile):
            ref = ImageRef.parse(base)
            assert ref.tag and ref.tag != "latest", f"{image.dockerfile}: base {base} must carry a pinned tag"
        if image.name == "perftest":  # build dependencies from the CUDA base's Ubuntu (see its README)
            continue
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        joined = code.replace("\\\n", " ")
        for install in re.findall(r"apt-get install ([^&\n]*)", joined):
            packages = [word for word in install.split() if not word.startswith("-")]
            assert packages and all("=" in p for p in packages), f"{image.dockerfile}: unpinned apt package {packages}"
        for install in re.findall(r"pip install ([^&\n]*)", joined):
            packages = [word.strip('"') for word in install.split() if not word.startswith("-")]
            assert packages and all("==" in p for p in packages), f"{image.dockerfile}: unpinned pip package {packages}"


def test_every_image_is_pinned_and_ours_lie_under_the_project_repository() -> None:
    uses = image_uses()
    assert len({u.workload for u in uses}) >= 30
    for use in uses:
        ref = ImageRef.parse(use.ref)
        assert (ref.tag and ref.tag != "latest") or ref.digest, use
        assert use.owned == use.ref.startswith(OWNED_REPOSITORY + "/")
        assert (use.dockerfile is not None) == use.owned


def _copy_catalog(tmp_path: Path, *names: str) -> Path:
    root = tmp_path / "workloads"
    for name in names:
        shutil.copytree(catalog_root() / name, root / name)
    return root


def test_owned_image_without_a_dockerfile_is_refused(tmp_path: Path) -> None:
    root = _copy_catalog(tmp_path, "s3-model-store")
    (root / "s3-model-store" / "Dockerfile").unlink()
    with pytest.raises(ConfigError, match=r"image ghcr.io/k8s-ai-bench/s3bench: needs exactly one workload folder"):
        owned_images(root)


def test_two_tags_of_one_owned_image_are_refused(tmp_path: Path) -> None:
    root = _copy_catalog(tmp_path, "fio", "fio-block")
    spec = root / "fio-block" / "workload.yaml"
    spec.write_text(spec.read_text().replace("fio:3.33-bookworm", "fio:3.36-trixie"))
    with pytest.raises(ConfigError, match="workloads pin different refs"):
        owned_images(root)


def test_images_list_prints_every_reference() -> None:
    done = subprocess.run([*CLI, "images", "list"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert re.match(r"^fio +ghcr.io/k8s-ai-bench/fio:3.33-bookworm +ours +workloads/fio/Dockerfile$", lines[5]) or any(
        re.match(r"^fio +ghcr.io/k8s-ai-bench/fio:3.33-bookworm +ours +workloads/fio/Dockerfile$", line)
        for line in lines
    )
    assert any(re.match(r"^trivial-job +docker.io/library/busybox:1.36.1 +upstream +-$", line) for line in lines)
    uses = image_uses()
    assert len(lines) == len(uses) + 1
    assert lines[-1] == f"{len({u.ref for u in uses})} images: 5 ours (built from a Dockerfile), the rest upstream"
