"""``k8s-ai-bench images build``: build the images this project owns and, with ``--push REGISTRY``, mirror every
image the catalog references into one registry, so a cluster without internet access runs with
``--image-registry REGISTRY``.

Names in the mirror are what :func:`harness.catalog.render.rewrite_image` makes of each reference (the registry
replaced, the path kept): ``ghcr.io/k8s-ai-bench/fio:3.33-bookworm`` -> ``REGISTRY/k8s-ai-bench/fio:3.33-bookworm``,
``docker.io/library/busybox:1.36.1`` -> ``REGISTRY/library/busybox:1.36.1``. Our images are built from their
Dockerfiles, upstream ones pulled and pushed unchanged.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.catalog.render import rewrite_image
from harness.errors import ConfigError
from harness.images.catalog import ImageRef, OwnedImage, base_images, image_uses, owned_images
from harness.images.debian_base import BASES, ensure_base
from harness.images.tools import Tool

BUILD_TIMEOUT_S = 3600.0
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What happened to one image: ``built``, ``pushed``, ``mirrored``, ``skipped`` or ``failed``."""

    ref: str
    action: str
    detail: str
    seconds: float = 0.0
    digest: str = ""

    @property
    def failed(self) -> bool:
        return self.action == "failed"

    def line(self) -> str:
        took = f", {self.seconds:.1f} s" if self.seconds else ""
        digest = f" {self.digest}" if self.digest else ""
        return f"{self.action:8s} {self.ref}{digest} ({self.detail}{took})"


def plan(only: str | None, root: Path | None = None) -> tuple[list[OwnedImage], list[str]]:
    """The owned images to build and the upstream references to mirror, narrowed by ``--only`` (an owned image's
    name, or any reference exactly as ``images list`` prints it)."""
    owned = owned_images(root)
    upstream = sorted({use.ref for use in image_uses(root) if not use.owned})
    if only is None:
        return owned, upstream
    chosen = [image for image in owned if only in (image.name, image.ref)]
    refs = [ref for ref in upstream if ref == only]
    if not chosen and not refs:
        names = ", ".join(image.name for image in owned)
        raise ConfigError(f"--only {only}: not an image of the catalog (ours: {names}; or a ref from 'images list')")
    return chosen, refs


def build_all(
    tool: Tool,
    *,
    only: str | None = None,
    push: str | None = None,
    debian_base: bool = False,
    platform: str = "",
    root: Path | None = None,
    say: Callable[[str], None] = print,
) -> list[Outcome]:
    """Build (and push) every planned image, saying each outcome as it happens; upstream images only with a push."""
    owned, upstream = plan(only, root)
    outcomes: list[Outcome] = []
    for image in owned:
        outcome = build_one(tool, image, push=push, debian_base=debian_base, platform=platform, say=say)
        outcomes.append(outcome)
        say(outcome.line())
    if push:
        for ref in upstream:
            outcome = mirror_one(tool, ref, push)
            outcomes.append(outcome)
            say(outcome.line())
    return outcomes


def build_one(
    tool: Tool,
    image: OwnedImage,
    *,
    push: str | None,
    debian_base: bool,
    platform: str = "",
    say: Callable[[str], None] = print,
) -> Outcome:
    parsed = ImageRef.parse(image.ref)
    ref = parsed.with_tag(parsed.tag or "dev")  # a digest names what the release built, not what we build now
    build_args: dict[str, str] = {}
    if debian_base:
        for base in base_images(image.dockerfile):
            stand_in = BASES.get(base)
            if stand_in is None:
                return Outcome(
                    ref=ref,
                    action="skipped",
                    detail=f"base {base} has no stand-in made from Debian packages; build it where that base pulls",
                )
            try:
                spent = ensure_base(tool, stand_in)
            except ConfigError as exc:
                return Outcome(ref=ref, action="failed", detail=str(exc))
            if spent:
                say(f"base     {stand_in.ref} (debootstrap + import for {base}, {spent:.1f} s)")
            build_args["BASE_IMAGE"] = stand_in.ref
    volumes: list[str] = []
    if debian_base and tool.name != "docker" and HOST_CA_BUNDLE.is_file():
        # the Debian base has Debian's CA bundle; this machine may reach the package index through a TLS proxy
        # only its own bundle trusts (pip then finds "no matching distribution"). RUN steps get the host's bundle,
        # mounted read-only for the build; the image keeps Debian's.
        volumes.append(f"{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro")
    started = time.monotonic()
    done = tool.run(
        *tool.build_args(ref=ref, context=image.context, build_args=build_args, platform=platform, volumes=volumes),
        timeout_s=BUILD_TIMEOUT_S,
    )
    seconds = time.monotonic() - started
    where = f"{image.dockerfile}"
    if done.returncode != 0:
        return Outcome(ref=ref, action="failed", detail=f"{where}: {_tail(done.stdout + done.stderr)}", seconds=seconds)
    if not push:
        return Outcome(ref=ref, action="built", detail=where + _base_note(build_args), seconds=seconds)
    pushed = _push(tool, ref, rewrite_image(ref, push))
    if pushed.failed:
        return pushed
    return Outcome(
        ref=pushed.ref, action="pushed", detail=where + _base_note(build_args), seconds=seconds, digest=pushed.digest
    )


def mirror_one(tool: Tool, ref: str, registry: str) -> Outcome:
    """Pull an upstream image and push it unchanged under the mirror's name."""
    started = time.monotonic()
    pulled = tool.run("pull", ref, timeout_s=BUILD_TIMEOUT_S)
    if pulled.returncode != 0:
        return Outcome(ref=ref, action="failed", detail=f"pull: {_tail(pulled.stdout + pulled.stderr)}")
    outcome = _push(tool, ref, rewrite_image(ref, registry))
    if outcome.failed:
        return outcome
    return Outcome(
        ref=outcome.ref,
        action="mirrored",
        detail=f"from {ref}",
        seconds=time.monotonic() - started,
        digest=outcome.digest,
    )


def _push(tool: Tool, source: str, target: str) -> Outcome:
    tagged = tool.run("tag", source, target, timeout_s=120)
    if tagged.returncode != 0:
        return Outcome(ref=target, action="failed", detail=f"tag: {_tail(tagged.stderr)}")
    with tempfile.TemporaryDirectory(prefix="aibench-push-") as tmp:
        digest_file = Path(tmp) / "digest"
        done = tool.run(*tool.push_args(target, digest_file), timeout_s=BUILD_TIMEOUT_S)
        if done.returncode != 0:
            return Outcome(ref=target, action="failed", detail=f"push: {_tail(done.stdout + done.stderr)}")
        digest = (
            digest_file.read_text(encoding="utf-8").strip() if digest_file.is_file() else _docker_digest(done.stdout)
        )
    return Outcome(ref=target, action="pushed", detail="", digest=digest)


def _docker_digest(output: str) -> str:
    """``docker push`` ends with ``<tag>: digest: sha256:... size: N``."""
    for line in reversed(output.splitlines()):
        if "digest: sha256:" in line:
            return line.split("digest: ", 1)[1].split()[0]
    return ""


def _base_note(build_args: dict[str, str]) -> str:
    return f", FROM {build_args['BASE_IMAGE']}" if "BASE_IMAGE" in build_args else ""


def _tail(text: str) -> str:
    """The line that says why (an apt ``E:``, a pip or runtime error) and the tool's last line, when they differ."""
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not kept:
        return "no output"
    causes = [line for line in kept[:-1] if re.search(r"^E: |error|ERROR|No matching distribution", line)]
    return " | ".join([causes[-1], kept[-1]] if causes else kept[-1:])[:600]


def exit_code(outcomes: Sequence[Outcome]) -> int:
    """0 when nothing failed (skips are said, not hidden), 1 when any build, pull or push failed."""
    return 1 if any(o.failed for o in outcomes) else 0
