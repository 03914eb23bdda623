"""The images of a project's services: which to build or pull, and doing it.

``missing`` is pure given the store's answer; ``build_service`` and ``pull_service`` use the
landed builder (``bolt.build``) and registry client (``bolt.registry``).  All run in a thread:
they block on disk and network.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from bolt.config import Boltfile
from bolt.errors import NotFound
from bolt.surge.intents import image_ref


@dataclass(frozen=True)
class ImageNeed:
    service: str
    ref: str
    action: str  # "build" | "pull"


def image_id(root: Path, ref: str) -> str | None:
    from bolt.images.store import ImageStore

    try:
        return ImageStore(root).resolve(ref).id
    except NotFound:
        return None


class ImageIds:
    """Image IDs by reference, each looked up once in the store (one ``up`` asks for the
    same image for every service that runs it); :meth:`forget` after a build or pull."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._ids: dict[str, str | None] = {}

    def __call__(self, ref: str) -> str | None:
        if ref not in self._ids:
            self._ids[ref] = image_id(self.root, ref)
        return self._ids[ref]

    def forget(self, ref: str) -> None:
        self._ids.pop(ref, None)


def needs(
    boltfile: Boltfile, services: Iterable[str], present: Callable[[str], bool], rebuild: bool
) -> list[ImageNeed]:
    """Builds for services with ``build`` that lack their image (all of them with
    ``rebuild``), pulls for image-only services whose image is not in the store."""
    out: list[ImageNeed] = []
    seen: set[str] = set()
    for name in services:
        svc = boltfile.services[name]
        if svc.capsule is not None and svc.image is None and svc.build is None:
            continue
        ref = image_ref(boltfile, name)
        if svc.build is not None:
            if rebuild or not present(ref):
                out.append(ImageNeed(name, ref, "build"))
        elif ref not in seen and not present(ref):
            out.append(ImageNeed(name, ref, "pull"))
        seen.add(ref)
    return out


def build_service(
    root: Path, boltfile: Boltfile, service: str, progress: object, no_cache: bool = False
) -> str:
    """Build a service's image with its ``build`` table; returns the image ID."""
    from bolt.build.executor import BuildRequest, build

    spec = boltfile.services[service].build
    if spec is None:
        raise NotFound(f"service {service} has no build section")
    request = BuildRequest(
        context=Path(spec.context),
        dockerfile=Path(spec.file) if spec.file else None,
        tags=(image_ref(boltfile, service),),
        build_args=dict(spec.args),
        target=spec.target,
        no_cache=no_cache,
    )
    result = build(root, request, progress)  # type: ignore[arg-type]
    return result.image.id


def pull_service(root: Path, boltfile: Boltfile, service: str) -> str:
    from bolt.registry.session import pull_image

    return pull_image(root, image_ref(boltfile, service)).id


class SilentBuild:
    """Build progress nobody reads (the library without a reporter)."""

    def step(self, number: int, total: int, text: str) -> None: ...
    def cached(self) -> None: ...
    def output(self, line: str) -> None: ...
    def layer(self, layer: object, seconds: float) -> None: ...
    def warn(self, text: str) -> None: ...
