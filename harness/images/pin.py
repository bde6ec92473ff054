"""Pin the catalog to a release: every reference to an image we own becomes ``<repo>:<release>@sha256:<digest>``.

Why rewrite workload.yaml rather than keep a lock file: the reference a run renders is then exactly the text in the
workload folder, readable in review and in ``images list``, with no second file a reader must know to consult; the
tag says which release built it, the digest makes the pull immutable (a re-pushed tag cannot change what runs).
The release workflow runs this after pushing, with the digests its builds reported, and proposes the change as a
pull request (a tag's tree cannot contain its own images' digests).

Upstream references are left alone: their tags are pinned by hand in workload.yaml, with the reason beside them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

from harness.catalog.spec import catalog_root
from harness.errors import ConfigError
from harness.images.catalog import OWNED_REPOSITORY, owned_images

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def read_digests(path: Path) -> dict[str, str]:
    """``{"fio": "sha256:...", ...}`` as the release workflow writes it; anything else is one ConfigError line."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--digests {path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ConfigError(f"--digests {path}: must map image names to sha256 digests")
    for name, digest in data.items():
        if not _DIGEST.match(digest):
            raise ConfigError(f"--digests {path}: {name}: {digest!r} is not a sha256:<64 hex> digest")
    return data


def pin(release: str, digests: Mapping[str, str], root: Path | None = None) -> list[Path]:
    """Rewrite every workload.yaml that references one of our images; returns the files changed. Every owned image
    needs a digest (a release that skipped one must not half-pin the catalog)."""
    if not _TAG.match(release):
        raise ConfigError(f"--release {release!r}: not a valid image tag")
    base = root or catalog_root()
    names = [image.name for image in owned_images(base)]
    missing = [name for name in names if name not in digests]
    if missing:
        raise ConfigError(f"--digests: no digest for {', '.join(missing)} (every image we own must be pinned)")
    unknown = sorted(set(digests) - set(names))
    if unknown:
        raise ConfigError(f"--digests: {', '.join(unknown)} is not an image the catalog references")
    pattern = re.compile(
        re.escape(OWNED_REPOSITORY) + r"/([a-z0-9][a-z0-9._-]*)(?::[A-Za-z0-9_.-]+)?(?:@sha256:[0-9a-f]{64})?"
    )
    changed: list[Path] = []
    for path in sorted(base.glob("*/workload.yaml")):
        text = path.read_text(encoding="utf-8")
        new = pattern.sub(
            lambda m: f"{OWNED_REPOSITORY}/{m[1]}:{release}@{digests[m[1]]}" if m[1] in digests else m[0], text
        )
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed
