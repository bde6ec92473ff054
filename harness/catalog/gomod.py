"""Data regenerated from the Go modules ``deploy/local-kube/go.mod`` pins: resolving the pins, and the command both
generators share (:mod:`harness.catalog.crd_regen`, :mod:`harness.embedded.openapi_regen`).

Why one piece: the two generators differ only in what they read from a module and how they write it. The rest (which
module version go.mod pins and where its files are, ``--check`` exiting 1 without writing when anything would change,
a failed step as one line and exit 2) is one contract for CI and must not drift between them.

Exit status of :func:`regen_main`: 0 up to date / written, 1 ``--check`` found drift, 2 a step failed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GO_MODULE_DIR", "Module", "OutputOption", "RegenError", "Regeneration", "regen_main", "resolve_modules"]

REPO = Path(__file__).resolve().parents[2]
GO_MODULE_DIR = REPO / "deploy" / "local-kube"


class RegenError(Exception):
    """A step that cannot go on; its message is the one line printed before exit 2."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Module:
    """A module as ``go list -m`` resolves it under deploy/local-kube's go.mod."""

    path: str
    version: str
    directory: Path


def resolve_modules(modules: Iterable[str], *, go_module_dir: Path = GO_MODULE_DIR) -> dict[str, Module]:
    """Directory and version of each module, exactly as go.mod pins it (one ``go list -m`` call for all)."""
    wanted = sorted(set(modules))
    go = shutil.which("go")
    if go is None:
        raise RegenError(
            "go list: no `go` on PATH: install Go (apt-get install golang-go, or the go.mod toolchain), then run "
            f"`go mod download` in {go_module_dir}"
        )
    if not (go_module_dir / "go.mod").is_file():
        raise RegenError(f"go list: no go.mod in {go_module_dir}")
    command = [go, "list", "-m", "-f", "{{.Path}} {{.Version}} {{.Dir}}", *wanted]
    try:
        done = subprocess.run(
            command,
            cwd=go_module_dir,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
            env={**os.environ, "GOWORK": "off", "GOFLAGS": "-mod=readonly"},
        )
    except subprocess.TimeoutExpired:
        raise RegenError(f"go list -m in {go_module_dir}: no answer in 300 s") from None
    if done.returncode != 0:
        cause = " ".join(done.stderr.split()) or f"exit {done.returncode}"
        raise RegenError(f"go list -m {' '.join(wanted)} in {go_module_dir}: {cause}")
    found: dict[str, Module] = {}
    for line in done.stdout.splitlines():
        path, version, *directory = line.split(" ", 2)
        if not directory or not directory[0]:
            raise RegenError(
                f"go list -m {path}: {version} is not in the module cache; run `go mod download {path}` in "
                f"{go_module_dir}"
            )
        found[path] = Module(path=path, version=version, directory=Path(directory[0]))
    if missing := [m for m in wanted if m not in found]:
        raise RegenError(f"go list -m: {', '.join(missing)} not required by {go_module_dir / 'go.mod'}")
    return found


@dataclass(frozen=True, slots=True, kw_only=True)
class Regeneration:
    """What regenerating would change on disk, worked out without writing anything."""

    changes: Sequence[str]  # one per file that would change ("write x.json", "delete y.json"); empty: up to date
    apply: Callable[[], None]  # make the changes, printing a line for each
    subject: str  # what ``--check`` names as out of date


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputOption:
    """The generator's output path option (a file or a directory)."""

    flag: str
    default: Path
    help: str


def regen_main(
    argv: Sequence[str] | None,
    *,
    module: str,
    description: str,
    output: OutputOption,
    regenerate: Callable[[Path, Path], Regeneration],
) -> int:
    """``python -m <module> [--check] [--go-module-dir DIR] [<output option>]``: ``regenerate(go_module_dir,
    output)`` works out the changes (raising :class:`RegenError` on a failed step); ``--check`` lists them and exits
    1 when there are any, otherwise they are applied."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("--check", action="store_true", help="exit 1 if a file would change; write nothing")
    parser.add_argument("--go-module-dir", type=Path, default=GO_MODULE_DIR, help="where go.mod pins the modules")
    metavar = output.flag.lstrip("-").replace("-", "_").upper()
    parser.add_argument(
        output.flag, dest="output", metavar=metavar, type=Path, default=output.default, help=output.help
    )
    args = parser.parse_args(argv)
    try:
        regeneration = regenerate(args.go_module_dir, args.output)
    except RegenError as exc:
        print(f"{module.rpartition('.')[2]}: {exc}", file=sys.stderr)
        return 2
    if not args.check:
        regeneration.apply()
        return 0
    for change in regeneration.changes:
        print(f"would {change}")
    if regeneration.changes:
        print(f"{regeneration.subject} is out of date: run python -m {module}", file=sys.stderr)
        return 1
    return 0
