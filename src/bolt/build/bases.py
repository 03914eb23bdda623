"""Which image a ``FROM`` (or ``COPY --from=IMAGE``) names, from the store or a registry.

``bolt://NAME:TAG`` and other registry references are parsed by ``bolt.registry`` (with
the configured default registry) into the name the image has in the store; an image that
is not there yet is pulled.  Without the registry package, only local images work.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from bolt.errors import BoltError, InvalidInput, NotFound
from bolt.images import refs
from bolt.images.store import ImageRecord, ImageStore

SCHEME = "bolt://"


class PullFailed(BoltError):
    """The base image is not in the store and could not be pulled."""

    def __init__(self, message: str, *, exit_code: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


def local_name(root: Path, text: str) -> str:
    """The store's name for the image ``text`` names."""
    try:
        from bolt.registry.session import parse_ref
    except ImportError:
        name = text.removeprefix(SCHEME)
        return refs.normalize(name)
    return parse_ref(root, text).local


def resolve(store: ImageStore, text: str, out: TextIO | None = None) -> ImageRecord:
    """The image ``text`` names: in the store already, else pulled into it."""
    try:
        name = local_name(store.root, text)
    except InvalidInput:
        name = text
    try:
        return store.resolve(name)
    except NotFound:
        pass
    try:
        from bolt.registry.progress import for_stream
        from bolt.registry.session import pull_image
    except ImportError:
        raise NotFound(
            f"no image {text!r} in the store, and this Bolt cannot pull",
            hint="import one with `bolt image import` or `bolt image bootstrap`",
        ) from None
    progress = for_stream(out or sys.stderr)
    try:
        return pull_image(store.root, text, progress=progress)
    except BoltError as err:
        raise PullFailed(
            f"image {text!r} is not in the store, and pulling it failed: {err.message}",
            exit_code=err.exit_code,
            hint="without a registry, `bolt image bootstrap debian:bookworm` or "
            "`bolt image import ROOTFS -t NAME:TAG` makes a local base image",
        ) from err
    finally:
        progress.close()
