"""Recognise how a layer or tarball is compressed (by its magic bytes, never its name) and
open a decompressing stream over it.

gzip, xz and bzip2 come with Python; zstd needs the optional ``zstandard`` module.  A
corrupt or truncated compressed stream raises :class:`CorruptBlob` when read, so callers can
tell it apart from an ``OSError`` of the disk they write to.
"""

from __future__ import annotations

import io
from typing import BinaryIO

from bolt.errors import Unsupported
from bolt.images.errors import CorruptBlob

GZIP = "gzip"
ZSTD = "zstd"
XZ = "xz"
BZIP2 = "bzip2"
NONE = "none"

_MAGIC = (
    (b"\x1f\x8b", GZIP),
    (b"\x28\xb5\x2f\xfd", ZSTD),
    (b"\xfd7zXZ\x00", XZ),
    (b"BZh", BZIP2),
)


def detect(head: bytes) -> str:
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return NONE


def sniff(raw: BinaryIO) -> tuple[str, BinaryIO]:
    """The compression of ``raw`` and a stream that still yields every byte of it."""
    buffered = io.BufferedReader(raw, buffer_size=1 << 20)  # type: ignore[arg-type,type-var]
    return detect(buffered.peek(8)[:8]), buffered  # type: ignore[return-value]


class _Decoded(io.RawIOBase):
    """Reads a decompressor; turns its decode errors into :class:`CorruptBlob`."""

    def __init__(self, inner: BinaryIO, kind: str, errors: tuple[type[BaseException], ...]):
        self._inner = inner
        self._kind = kind
        self._errors = errors

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            data = self._inner.read(len(buf))
        except self._errors as err:
            raise CorruptBlob(
                f"corrupt or truncated {self._kind} data: {err or type(err).__name__}",
                hint="the file or blob is damaged; fetch or export it again",
            ) from err
        n = len(data)
        buf[:n] = data
        return n


def decompressor(raw: BinaryIO, kind: str) -> BinaryIO:
    """A stream of the decompressed bytes of ``raw``."""
    if kind == NONE:
        return raw
    errors: tuple[type[BaseException], ...]
    inner: object
    if kind == GZIP:
        import gzip
        import zlib

        inner = gzip.GzipFile(fileobj=raw, mode="rb")
        errors = (gzip.BadGzipFile, EOFError, zlib.error)
    elif kind == XZ:
        import lzma

        inner = lzma.LZMAFile(raw, mode="rb")  # noqa: SIM115 (closed with its reader)
        errors = (lzma.LZMAError, EOFError)
    elif kind == BZIP2:
        import bz2

        inner = bz2.BZ2File(raw, mode="rb")
        errors = (OSError, EOFError)  # bz2 reports bad data as a bare OSError
    elif kind == ZSTD:
        try:
            import zstandard  # type: ignore[import-not-found]
        except ImportError:
            raise Unsupported(
                "this layer is zstd-compressed and the zstandard module is not installed",
                hint="pip install zstandard, or import the image with gzip layers",
            ) from None
        inner = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        errors = (zstandard.ZstdError, EOFError)
    else:
        raise Unsupported(f"unknown compression {kind!r}")
    return io.BufferedReader(_Decoded(inner, kind, errors), buffer_size=1 << 20)  # type: ignore[arg-type,return-value]
