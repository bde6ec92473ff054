"""Every image the workload catalog references, and which of them this project builds.

An image is *ours* when its reference lies under :data:`OWNED_REPOSITORY` (the release workflow pushes there); it
is built from the ``Dockerfile`` in the folder of the workload that references it. Several workloads may share one
image (the net-* probes share net-tools), but exactly one of them holds its Dockerfile, so the build source is
found from the catalog alone, with no second table to keep in step. Everything else is *upstream*: pulled as is,
mirrored by ``images build --push``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.catalog.spec import catalog_root, load_spec
from harness.errors import ConfigError

#: Where the release workflow pushes the images this project builds (``<OWNED_REPOSITORY>/<name>:<tag>``).
OWNED_REPOSITORY = "ghcr.io/k8s-ai-bench"


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageRef:
    """A parsed reference: ``registry/path:tag@digest`` (tag and digest may be empty)."""

    repository: str  # everything before the tag: registry/path
    tag: str
    digest: str

    @classmethod
    def parse(cls, ref: str) -> ImageRef:
        name, _, digest = ref.partition("@")
        head, _, last = name.rpartition("/")
        path_end, colon, tag = last.partition(":")
        repository = f"{head}/{path_end}" if head else path_end
        return cls(repository=repository, tag=tag if colon else "", digest=digest)

    @property
    def name(self) -> str:
        """The last path component: ``fio`` for ``ghcr.io/k8s-ai-bench/fio:3.33-bookworm``."""
        return self.repository.rsplit("/", 1)[-1]

    def with_tag(self, tag: str, digest: str = "") -> str:
        return f"{self.repository}:{tag}" + (f"@{digest}" if digest else "")


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageUse:
    """One ``images:`` entry of one workload."""

    workload: str
    key: str  # the name under ``images:`` (``${image.<key>}`` in manifests)
    ref: str
    owned: bool
    dockerfile: Path | None  # for owned images: the Dockerfile it is built from


@dataclass(frozen=True, slots=True, kw_only=True)
class OwnedImage:
    """An image this project builds: its name under :data:`OWNED_REPOSITORY`, the tag the catalog pins and the
    folder holding its Dockerfile (the build context)."""

    name: str
    ref: str
    context: Path
    workloads: tuple[str, ...]

    @property
    def dockerfile(self) -> Path:
        return self.context / "Dockerfile"


def is_owned(ref: str) -> bool:
    return ref.startswith(OWNED_REPOSITORY + "/")


def image_uses(root: Path | None = None) -> list[ImageUse]:
    """Every ``images:`` entry of the catalog, sorted by workload then key; owned images get their Dockerfile."""
    base = root or catalog_root()
    specs = [load_spec(p) for p in sorted(base.glob("*/workload.yaml"))]
    owned = {image.ref: image for image in owned_images(base)}
    uses: list[ImageUse] = []
    for spec in specs:
        for key, ref in sorted(spec.images.items()):
            image = owned.get(ref)
            uses.append(
                ImageUse(
                    workload=spec.name,
                    key=key,
                    ref=ref,
                    owned=is_owned(ref),
                    dockerfile=image.dockerfile if image else None,
                )
            )
    return uses


def owned_images(root: Path | None = None) -> list[OwnedImage]:
    """The images this project builds, one per name, each with its build context. A catalog where an owned image
    has no Dockerfile, two Dockerfiles, or two different tags is refused (one :class:`ConfigError` line)."""
    base = root or catalog_root()
    refs: dict[str, set[str]] = {}
    users: dict[str, list[str]] = {}
    contexts: dict[str, list[Path]] = {}
    for path in sorted(base.glob("*/workload.yaml")):
        spec = load_spec(path)
        for ref in spec.images.values():
            if not is_owned(ref):
                continue
            name = ImageRef.parse(ref).name
            refs.setdefault(name, set()).add(ref)
            users.setdefault(name, []).append(spec.name)
            if (spec.directory / "Dockerfile").is_file() and _builds(spec.directory / "Dockerfile", name):
                contexts.setdefault(name, []).append(spec.directory)
    images: list[OwnedImage] = []
    for name in sorted(refs):
        if len(refs[name]) > 1:
            raise ConfigError(f"image {OWNED_REPOSITORY}/{name}: workloads pin different refs {sorted(refs[name])}")
        found = sorted(set(contexts.get(name, [])))
        if len(found) != 1:
            where = ", ".join(str(p) for p in found) or "none"
            raise ConfigError(
                f"image {OWNED_REPOSITORY}/{name}: needs exactly one workload folder with a Dockerfile that builds "
                f"it (first line '# image: {name}'); found {where} (used by {', '.join(sorted(set(users[name])))})"
            )
        images.append(OwnedImage(name=name, ref=refs[name].pop(), context=found[0], workloads=tuple(users[name])))
    return images


def _builds(dockerfile: Path, name: str) -> bool:
    """A Dockerfile says which image it builds on its first line, ``# image: <name>``: a workload folder may hold a
    Dockerfile for an image its own workload.yaml does not pin (tpu-jax-jobset uses tpu-jax's)."""
    first = dockerfile.read_text(encoding="utf-8").split("\n", 1)[0]
    return first.strip() == f"# image: {name}"


def base_images(dockerfile: Path) -> list[str]:
    """The ``BASE_IMAGE`` build argument's default (the upstream base a Dockerfile builds on), or the literal
    ``FROM`` images when it has no such argument."""
    defaults: dict[str, str] = {}
    bases: list[str] = []
    for raw in dockerfile.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.upper().startswith("ARG ") and "=" in line:
            key, _, value = line[4:].partition("=")
            defaults[key.strip()] = value.strip().strip('"')
        elif line.upper().startswith("FROM "):
            image = line.split()[1]
            if image.startswith("${") and image.endswith("}"):
                image = defaults.get(image[2:-1], image)
            bases.append(image)
    return bases
