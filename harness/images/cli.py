"""``k8s-ai-bench images list | build | pin``: the argparse wiring and the printing, nothing else (the work is in
:mod:`harness.images.catalog`, :mod:`harness.images.build` and :mod:`harness.images.pin`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.images.tools import TOOLS


def add_parser(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register ``images`` under the top-level sub-commands, each sub-command with its ``handler`` (the CLI's
    dispatch convention, :mod:`harness.cli`)."""
    images = commands.add_parser("images", help="workload images: list, build and mirror, pin to a release")
    sub = images.add_subparsers(dest="images_command", required=True, parser_class=parser_class)
    listing = sub.add_parser(
        "list", help="every image the catalog references: workload, ref, ours or upstream, Dockerfile"
    )
    listing.set_defaults(handler=_list)
    build = sub.add_parser("build", help="build our images; with --push also mirror every upstream one")
    build.set_defaults(handler=_build)
    build.add_argument("--push", metavar="REGISTRY", default=None, help="push to REGISTRY (then run --image-registry)")
    build.add_argument("--only", metavar="NAME", default=None, help="one image: our image's name, or a ref")
    build.add_argument("--tool", choices=TOOLS, default=None, help="container tool (default: the first that works)")
    build.add_argument("--platform", default="", help="target platform, e.g. linux/arm64 (default: this machine)")
    build.add_argument(
        "--debian-base",
        action="store_true",
        help="build FROM bases made here from Debian packages (debootstrap) instead of pulling the upstream base",
    )
    pin = sub.add_parser("pin", help="rewrite workload.yaml to <image>:<release>@<digest> (the release workflow)")
    pin.set_defaults(handler=_pin)
    pin.add_argument("--release", required=True, help="the release tag the images were pushed under")
    pin.add_argument("--digests", required=True, type=Path, help='JSON {"<image name>": "sha256:..."}')


def _list(args: argparse.Namespace) -> int:
    from harness.catalog.spec import catalog_root
    from harness.images.catalog import image_uses

    root = catalog_root().parent
    uses = image_uses()
    width = max((len(u.ref) for u in uses), default=10)
    for use in uses:
        source = str(use.dockerfile.relative_to(root)) if use.dockerfile else "-"
        print(f"{use.workload:26s} {use.ref:{width}s} {'ours' if use.owned else 'upstream':8s} {source}")
    owned = len({u.ref for u in uses if u.owned})
    print(f"{len({u.ref for u in uses})} images: {owned} ours (built from a Dockerfile), the rest upstream")
    return 0


def _build(args: argparse.Namespace) -> int:
    from harness.catalog.render import rewrite_image
    from harness.images.build import build_all, exit_code
    from harness.images.tools import detect

    tool = detect(args.tool)
    print(f"tool: {tool.name} ({tool.path})")
    outcomes = build_all(tool, only=args.only, push=args.push, debian_base=args.debian_base, platform=args.platform)
    failed = sum(o.failed for o in outcomes)
    skipped = sum(o.action == "skipped" for o in outcomes)
    done = len(outcomes) - failed - skipped
    print(f"images build: {done} done, {skipped} skipped, {failed} failed")
    if args.push and not failed:
        example = rewrite_image("docker.io/library/busybox:1.36.1", args.push)
        print(f"now run with --image-registry {args.push} (busybox, for one, renders as {example})")
    return exit_code(outcomes)


def _pin(args: argparse.Namespace) -> int:
    from harness.images.pin import pin, read_digests

    changed = pin(args.release, read_digests(args.digests))
    for path in changed:
        print(f"pinned {path}")
    print(f"images pin: {len(changed)} workload.yaml files pinned to {args.release}")
    return 0
