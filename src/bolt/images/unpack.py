"""Apply one OCI layer (a tar stream, optionally gzip/zstd/xz/bzip2 compressed) to a directory.

Two modes:

* ``overlay`` — the directory holds this layer alone and becomes an overlayfs lower dir, so
  whiteouts are converted to overlayfs form: ``.wh.NAME`` becomes a 0/0 character device
  ``NAME`` and ``.wh..wh..opq`` sets ``trusted.overlay.opaque=y`` on its directory (both
  need root).
* ``flatten`` — layers are applied one after another onto one directory; ``.wh.NAME``
  deletes ``NAME`` and ``.wh..wh..opq`` empties its directory of what lower layers put there.

Safety: nothing is ever written outside ``dest``.  Member names have a leading ``/``
dropped and are refused if they contain ``..``; every parent directory is resolved inside
``dest`` (see :mod:`bolt.images.safefs`), so a symlink in the layer (``evil -> /etc``) that
a later member is written through lands inside ``dest``; an existing entry is unlinked and a
fresh one created with ``O_EXCL|O_NOFOLLOW``, never written through; hardlink targets are
resolved inside ``dest`` too.  Symlink targets are kept verbatim: they are resolved by the
container at run time.  Ownership, modes (setuid included), mtimes and xattrs are kept;
ownership and device nodes only when running as root (device nodes are skipped otherwise).
"""

from __future__ import annotations

import base64
import os
import stat
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Literal

from bolt.errors import PermissionDenied
from bolt.images.compression import decompressor, sniff
from bolt.images.digests import CHUNK, HashingReader
from bolt.images.errors import CorruptBlob
from bolt.images.safefs import (
    RootDir,
    hardlink_outside,
    ignorable_xattr_error,
    lstat_at,
    member_parts,
    proc_path,
    remove_at,
)

Mode = Literal["overlay", "flatten"]
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"


def unpack_layer(
    source: BinaryIO | Path,
    dest: Path,
    *,
    mode: Mode = "overlay",
    expected_digest: str | None = None,
    expected_diff_id: str | None = None,
) -> None:
    """Apply the layer ``source`` (a path or a readable binary stream) to ``dest``.

    ``expected_digest`` (of the bytes as given) and ``expected_diff_id`` (of the
    uncompressed tar) are checked once the stream is read; a mismatch, a corrupt
    compressed stream or a malformed tar raises :class:`CorruptBlob`.  The caller unpacks
    into a scratch directory and discards it on error (see :mod:`bolt.images.layercache`).
    """
    with _opened(source) as raw:
        blob = HashingReader(raw)
        kind, buffered = sniff(blob)  # type: ignore[arg-type]
        tar_stream = HashingReader(decompressor(buffered, kind))
        with RootDir(dest) as root:
            applier = _Applier(root, mode)
            try:
                with tarfile.open(fileobj=tar_stream, mode="r|") as archive:  # type: ignore[call-overload]
                    for member in archive:
                        applier.apply(member, archive)
            except tarfile.TarError as err:
                raise CorruptBlob(
                    f"not a valid tar archive: {err}", hint="the layer is damaged or not a tar"
                ) from err
            tar_stream.drain()
            blob.drain()  # the rest of the blob (gzip trailer, padding) for its digest
            applier.finish()
    _check(expected_diff_id, tar_stream.digest, "uncompressed layer (diff id)")
    _check(expected_digest, blob.digest, "layer blob")


def _check(expected: str | None, actual: str, what: str) -> None:
    if expected is not None and expected != actual:
        raise CorruptBlob(
            f"{what} digest mismatch: expected {expected}, got {actual}",
            hint="the blob is damaged; remove the image and import it again",
        )


@contextmanager
def _opened(source: BinaryIO | Path) -> Iterator[BinaryIO]:
    if isinstance(source, Path):
        with open(source, "rb") as fh:
            yield fh
    else:
        yield source


def _xattrs(member: tarfile.TarInfo) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for key, value in member.pax_headers.items():
        if key.startswith("SCHILY.xattr."):
            found[key[len("SCHILY.xattr.") :]] = value.encode("utf-8", "surrogateescape")
        elif key.startswith("LIBARCHIVE.xattr."):
            name = key[len("LIBARCHIVE.xattr.") :]
            found[name] = base64.b64decode(value + "=" * (-len(value) % 4))
    return found


class _Applier:
    """Applies members one by one; directory modes and mtimes are set at the end, once no
    child will be added to them any more."""

    def __init__(self, root: RootDir, mode: Mode) -> None:
        self.root = root
        self.mode = mode
        self.as_root = os.geteuid() == 0
        self.written: set[tuple[str, ...]] = set()
        self.dirs: list[tuple[list[str], int, float]] = []

    def apply(self, member: tarfile.TarInfo, archive: tarfile.TarFile) -> None:
        parts = member_parts(member.name)
        if not parts:
            if member.isdir():
                self._own(self.root.fd, member)
                self.dirs.append(([], member.mode, member.mtime))
            return
        base = parts[-1]
        if base.startswith(WHITEOUT):
            self._whiteout(parts, member)
            return
        parent = self.root.open_parent(parts)
        assert parent is not None
        try:
            self._create(parent, base, parts, member, archive)
        finally:
            os.close(parent)
        self.written.add(tuple(parts))

    def _create(
        self,
        parent: int,
        name: str,
        parts: list[str],
        member: tarfile.TarInfo,
        archive: tarfile.TarFile,
    ) -> None:
        if member.isdir():
            st = lstat_at(parent, name)
            if st is None or not stat.S_ISDIR(st.st_mode):
                self._remove(parent, name)
                os.mkdir(name, 0o700, dir_fd=parent)
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
            try:
                self._own(fd, member)
                self._set_xattrs(fd, member)
            finally:
                os.close(fd)
            self.dirs.append((parts, member.mode, member.mtime))
        elif member.isreg():
            self._remove(parent, name)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(name, flags, 0o600, dir_fd=parent)
            try:
                data = archive.extractfile(member)
                assert data is not None
                with os.fdopen(os.dup(fd), "wb") as out:
                    while chunk := data.read(CHUNK):
                        out.write(chunk)
                self._own(fd, member)
                os.chmod(fd, stat.S_IMODE(member.mode))
                self._set_xattrs(fd, member)
                os.utime(fd, (member.mtime, member.mtime))
            finally:
                os.close(fd)
        elif member.issym():
            self._remove(parent, name)
            os.symlink(member.linkname, name, dir_fd=parent)
            self.root.forget()
            self._finish_at(parent, name, member, chmod=False)
        elif member.islnk():
            self._hardlink(parent, name, member)
        elif member.ischr() or member.isblk():
            if not self.as_root:
                return  # device nodes need CAP_MKNOD; a rootless unpack skips them
            self._remove(parent, name)
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            dev = os.makedev(member.devmajor, member.devminor)
            os.mknod(name, kind | 0o600, dev, dir_fd=parent)
            self._finish_at(parent, name, member, chmod=True)
        elif member.isfifo():
            self._remove(parent, name)
            os.mkfifo(name, 0o600, dir_fd=parent)
            self._finish_at(parent, name, member, chmod=True)

    def _remove(self, dirfd: int, name: str) -> None:
        if remove_at(dirfd, name):
            self.root.forget()

    def _hardlink(self, parent: int, name: str, member: tarfile.TarInfo) -> None:
        target = member_parts(member.linkname)
        if not target:
            raise hardlink_outside(member.name, member.linkname)
        tparent = self.root.open_parent(target, create=False)
        tst = None if tparent is None else lstat_at(tparent, target[-1])
        try:
            if tparent is None or tst is None or stat.S_ISDIR(tst.st_mode):
                raise hardlink_outside(member.name, member.linkname)
            existing = lstat_at(parent, name)
            if existing is not None and (existing.st_dev, existing.st_ino) == (
                tst.st_dev,
                tst.st_ino,
            ):
                return
            self._remove(parent, name)
            os.link(
                target[-1],
                name,
                src_dir_fd=tparent,
                dst_dir_fd=parent,
                follow_symlinks=False,
            )
        finally:
            if tparent is not None:
                os.close(tparent)

    def _finish_at(self, parent: int, name: str, member: tarfile.TarInfo, *, chmod: bool) -> None:
        """Owner, mode, xattrs and mtime of a non-regular, non-directory entry."""
        if self.as_root:
            os.chown(name, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
        if chmod:
            os.chmod(name, stat.S_IMODE(member.mode), dir_fd=parent)
        for key, value in _xattrs(member).items():
            try:
                os.setxattr(proc_path(parent, name), key, value, follow_symlinks=False)
            except OSError as err:
                if not ignorable_xattr_error(err):
                    raise
        os.utime(name, (member.mtime, member.mtime), dir_fd=parent, follow_symlinks=False)

    def _own(self, fd: int, member: tarfile.TarInfo) -> None:
        if self.as_root:
            os.fchown(fd, member.uid, member.gid)

    def _set_xattrs(self, fd: int, member: tarfile.TarInfo) -> None:
        for key, value in _xattrs(member).items():
            try:
                os.setxattr(fd, key, value)
            except OSError as err:
                if not ignorable_xattr_error(err):
                    raise

    def _whiteout(self, parts: list[str], member: tarfile.TarInfo) -> None:
        base = parts[-1]
        if base != OPAQUE and base.startswith(WHITEOUT + WHITEOUT):
            return  # other aufs metadata (.wh..wh.plnk, ...) means nothing to us
        if self.mode == "overlay":
            self._overlay_whiteout(parts, member)
            return
        if base == OPAQUE:
            dirfd = self.root.open_dir(parts[:-1], create=False)
            if dirfd is None:
                return
            try:
                for child in os.listdir(dirfd):
                    if (*parts[:-1], child) not in self.written:
                        self._remove(dirfd, child)
            finally:
                os.close(dirfd)
            return
        victim = [*parts[:-1], base[len(WHITEOUT) :]]
        if tuple(victim) in self.written:
            return
        parent = self.root.open_parent(victim, create=False)
        if parent is not None:
            try:
                self._remove(parent, victim[-1])
            finally:
                os.close(parent)

    def _overlay_whiteout(self, parts: list[str], member: tarfile.TarInfo) -> None:
        base = parts[-1]
        try:
            if base == OPAQUE:
                dirfd = self.root.open_dir(parts[:-1], create=True)
                assert dirfd is not None
                try:
                    os.setxattr(dirfd, OPAQUE_XATTR, b"y")
                finally:
                    os.close(dirfd)
                return
            name = base[len(WHITEOUT) :]
            parent = self.root.open_parent(parts)
            assert parent is not None
            try:
                self._remove(parent, name)
                os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=parent)
                if self.as_root:
                    os.chown(name, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
            finally:
                os.close(parent)
        except PermissionError as err:
            raise PermissionDenied(
                f"cannot convert whiteout {member.name!r} for overlayfs: {err.strerror}",
                hint="overlay whiteouts (0/0 device nodes, trusted.* xattrs) need root",
            ) from err
        self.written.add((*parts[:-1], base[len(WHITEOUT) :]))

    def finish(self) -> None:
        """Set directory modes and mtimes, deepest first."""
        for parts, mode, mtime in reversed(self.dirs):
            fd = self._reopen_dir(parts)
            if fd is None:
                continue  # replaced by a later member
            try:
                os.chmod(fd, stat.S_IMODE(mode))
                os.utime(fd, (mtime, mtime))
            finally:
                os.close(fd)

    def _reopen_dir(self, parts: list[str]) -> int | None:
        if not parts:
            return os.dup(self.root.fd)
        parent = self.root.open_parent(parts, create=False)
        if parent is None:
            return None
        try:
            return os.open(parts[-1], os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
        except OSError:
            return None
        finally:
            os.close(parent)
