"""Errors of the image store, each a :class:`bolt.errors.BoltError` a user can act on."""

from __future__ import annotations

from bolt.errors import InvalidInput


class CorruptBlob(InvalidInput):
    """A blob or layer does not match its digest, or cannot be decompressed or read as tar."""


class UnsafeLayer(InvalidInput):
    """A layer tries to write outside the directory it is unpacked into."""


class ImageInUse(InvalidInput):
    """An image cannot be removed because a container uses it."""
