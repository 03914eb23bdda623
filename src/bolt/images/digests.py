"""sha256 digests: parsing, and streams that hash what passes through them."""

from __future__ import annotations

import hashlib
import io
import re
from typing import BinaryIO

from bolt.errors import InvalidInput

_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")
CHUNK = 1 << 20


def digest_hex(digest: str) -> str:
    """The hex part of ``sha256:<64 hex>``; anything else (other algorithms, bad length) is
    rejected, because a digest also names a file under ``blobs/sha256``."""
    match = _DIGEST.match(digest)
    if match is None:
        raise InvalidInput(
            f"not a sha256 digest: {digest!r}", hint="digests look like sha256:<64 hex digits>"
        )
    return match.group(1)


def is_digest(text: str) -> bool:
    return _DIGEST.match(text) is not None


class HashingReader(io.RawIOBase):
    """Wraps a binary stream; hashes and counts every byte read through it."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buf))
        n = len(data)
        buf[:n] = data
        self._hash.update(data)
        self.size += n
        return n

    def drain(self) -> None:
        """Read to the end, so that the digest covers the whole stream."""
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


class HashingWriter:
    """Wraps a binary file opened for writing; hashes and counts every byte written."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._hash.update(data)
        self.size += len(data)
        return self._raw.write(data)

    def flush(self) -> None:
        self._raw.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


def copy_hashed(src: BinaryIO, dst: BinaryIO) -> tuple[str, int]:
    """Copy ``src`` to ``dst``; return the digest and size of what was copied."""
    writer = HashingWriter(dst)
    while chunk := src.read(CHUNK):
        writer.write(chunk)
    return writer.digest, writer.size
