"""Layers as tar streams: checking one (and measuring its diff id) before it is stored, and
writing a directory tree as one, deterministically."""

from __future__ import annotations

import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from bolt.images import compression
from bolt.images.digests import HashingReader, HashingWriter
from bolt.images.errors import CorruptBlob
from bolt.images.safefs import hardlink_outside, member_parts


@dataclass(frozen=True)
class LayerScan:
    compression: str  # one of the names in bolt.images.compression
    diff_id: str  # sha256 of the uncompressed tar
    members: int
    oci_archive: bool  # holds an OCI image layout (oci-layout, index.json, blobs/)


def scan_layer(path: Path, plain_out: BinaryIO | None = None, *, label: str = "") -> LayerScan:
    """Read the layer at ``path`` to the end: it must decompress, parse as tar and name no
    member outside its root.  With ``plain_out`` the uncompressed tar is also written there.
    Raises :class:`CorruptBlob` or :class:`UnsafeLayer`; errors name ``label`` (default:
    the path)."""
    with open(path, "rb") as raw:
        kind, buffered = compression.sniff(raw)
        plain = compression.decompressor(buffered, kind)
        if plain_out is not None:
            plain = _Tee(plain, plain_out)  # type: ignore[assignment]
        hashing = HashingReader(plain)
        count = 0
        top: set[str] = set()
        files = MemberCheck()
        try:
            with tarfile.open(fileobj=hashing, mode="r|") as archive:  # type: ignore[call-overload]
                for member in archive:
                    parts = files.check(member)
                    if parts:
                        top.add(parts[0])
                    count += 1
        except tarfile.TarError as err:
            raise CorruptBlob(
                f"{label or path} is not a valid tar archive: {err}",
                hint="give a tar file (optionally gzip, xz or bzip2 compressed)",
            ) from err
        hashing.drain()
    archive_names = {"oci-layout", "index.json", "blobs"}
    return LayerScan(kind, hashing.digest, count, archive_names <= top)


class MemberCheck:
    """What every layer must satisfy, member by member, before it is stored (import, pull,
    build): no name climbs out with ``..``, and a hardlink points at a file (not a
    directory) that came earlier in the same layer — as the unpacker will need it to."""

    def __init__(self) -> None:
        self._files: set[str] = set()

    def check(self, member: tarfile.TarInfo) -> list[str]:
        """The member's path components; raises :class:`UnsafeLayer`."""
        parts = member_parts(member.name)
        key = "/".join(parts)
        if member.islnk():
            target = "/".join(member_parts(member.linkname))
            if target not in self._files:
                raise hardlink_outside(member.name, member.linkname)
        if member.isdir():
            self._files.discard(key)
        elif key:
            self._files.add(key)
        return parts


class _Tee:
    def __init__(self, src: BinaryIO, out: BinaryIO) -> None:
        self._src = src
        self._out = out

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        self._out.write(data)
        return data


def tar_tree(src: Path, out: BinaryIO) -> str:
    """Write the tree under ``src`` to ``out`` as a PAX tar (sorted, numeric owners, whole-
    second mtimes, xattrs kept, hardlinks as links, sockets skipped, other filesystems not
    entered); returns its sha256 digest, which is also the layer's diff id."""
    writer = HashingWriter(out)
    root_dev = os.lstat(src).st_dev
    with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as archive:  # type: ignore[call-overload]
        for dirpath, dirnames, filenames in os.walk(src):
            dirnames.sort()
            here = Path(dirpath)
            for name in sorted([*dirnames, *filenames]):
                path = here / name
                info = archive.gettarinfo(str(path), arcname=str(path.relative_to(src)))
                if info is None:
                    continue  # sockets
                info.uname = info.gname = ""
                info.mtime = int(info.mtime)
                info.pax_headers.update(_xattr_headers(path))
                if info.isreg():
                    with open(path, "rb") as fh:
                        archive.addfile(info, fh)
                else:
                    archive.addfile(info)
            dirnames[:] = [
                d
                for d in dirnames
                if stat.S_ISDIR((st := os.lstat(here / d)).st_mode) and st.st_dev == root_dev
            ]
    return writer.digest


def _xattr_headers(path: Path) -> dict[str, str]:
    headers: dict[str, str] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return headers
    for name in sorted(names):
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
        headers[f"SCHILY.xattr.{name}"] = value.decode("utf-8", "surrogateescape")
    return headers
