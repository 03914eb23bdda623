"""COPY and ADD into a stage's root file system (the merged overlay of a build step).

Destinations are resolved inside the root like sources (``bolt.images.safefs``): a
symlink in the image (``/app -> /etc``) is followed within the image, never onto the host.
An existing entry is removed and a new one created with ``O_EXCL|O_NOFOLLOW``; nothing is
written through a link.  Files keep their mode and mtime; owners are ``0:0`` unless
``--chown`` is given (then directories COPY creates get that owner too), Docker's rules.
"""

from __future__ import annotations

import os
import posixpath
import stat
from dataclasses import dataclass, field

from bolt.build.tree import Entry, Source, Tree
from bolt.errors import InvalidInput
from bolt.images.digests import CHUNK
from bolt.images.safefs import RootDir, lstat_at, remove_at


@dataclass
class Destination:
    """A root file system being written, with the owner and mode of what is copied."""

    root: RootDir
    owner: tuple[int, int] = (0, 0)
    chmod: int | None = None
    chown_dirs: bool = False  # give created parent directories ``owner`` (with --chown)
    _known: set[tuple[str, ...]] = field(default_factory=set)
    _dirs: list[tuple[list[str], float]] = field(default_factory=list)

    def ensure_dir(self, parts: list[str], mode: int = 0o755) -> None:
        """Make the directory ``parts`` and any missing parents."""
        for k in range(1, len(parts) + 1):
            prefix = tuple(parts[:k])
            if prefix in self._known:
                continue
            fd = self.root.open_dir(list(prefix), create=False)
            if fd is None:
                fd = self.root.open_dir(list(prefix), create=True)
                assert fd is not None
                owner = self.owner if self.chown_dirs else (0, 0)
                os.fchown(fd, *owner)
                os.chmod(fd, mode if k == len(parts) else 0o755)
            os.close(fd)
            self._known.add(prefix)

    def finish(self) -> None:
        """Directory mtimes last, deepest first (children changed them meanwhile)."""
        for parts, mtime in reversed(self._dirs):
            fd = self.root.open_dir(parts, create=False)
            if fd is not None:
                try:
                    os.utime(fd, (mtime, mtime))
                finally:
                    os.close(fd)


def target_of(dest: str, sources: list[Source], workdir: str) -> tuple[str, bool]:
    """The absolute destination and whether it is a directory the sources go into."""
    path = posixpath.normpath(posixpath.join(workdir or "/", dest))
    into_dir = dest.endswith("/") or dest in (".", "")
    if len(sources) > 1 and not into_dir:
        raise InvalidInput(
            f"with several sources the destination must be a directory ending in '/': {dest!r}"
        )
    return path, into_dir


def copy_sources(
    tree: Tree, sources: list[Source], dest: str, into_dir: bool, out: Destination
) -> None:
    """Copy each source: a directory's contents into ``dest``; a file (or other) to
    ``dest/NAME`` when ``dest`` is (or must be) a directory, else to ``dest`` itself."""
    dest_parts = _parts(dest)
    for source in sources:
        entries = tree.walk(source)
        top = next(entries)
        if top.kind == "dir":
            out.ensure_dir(dest_parts)
            for entry in entries:
                _write(out, dest_parts + _parts(entry.rel), entry)
            continue
        if into_dir or _is_dir(out.root, dest_parts):
            out.ensure_dir(dest_parts)
            _write(out, [*dest_parts, source.name], top)
        else:
            if not dest_parts:
                raise InvalidInput(f"cannot copy {source.name!r} over the root directory")
            out.ensure_dir(dest_parts[:-1])
            _write(out, dest_parts, top)
    out.finish()


def _is_dir(root: RootDir, parts: list[str]) -> bool:
    fd = root.open_dir(parts, create=False)
    if fd is None:
        return False
    os.close(fd)
    return True


def _write(out: Destination, parts: list[str], entry: Entry) -> None:
    out.ensure_dir(parts[:-1])
    parent = out.root.open_parent(parts, create=False)
    assert parent is not None
    name = parts[-1]
    st = entry.st
    mode = out.chmod if out.chmod is not None else stat.S_IMODE(st.st_mode)
    uid, gid = out.owner
    try:
        kind = entry.kind
        if kind == "dir":
            existing = lstat_at(parent, name)
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                _remove(out, parent, name)
                os.mkdir(name, 0o700, dir_fd=parent)
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
            try:
                os.fchown(fd, uid, gid)
                os.chmod(fd, mode)
            finally:
                os.close(fd)
            out._known.add(tuple(parts))
            out._dirs.append((parts, st.st_mtime))
            return
        _remove(out, parent, name)
        if kind == "file":
            _copy_file(entry, parent, name)
            os.chown(name, uid, gid, dir_fd=parent, follow_symlinks=False)
            os.chmod(name, mode, dir_fd=parent)
        elif kind == "symlink":
            os.symlink(entry.link, name, dir_fd=parent)
            out.root.forget()
            os.chown(name, uid, gid, dir_fd=parent, follow_symlinks=False)
        elif kind in ("fifo", "chr", "blk"):
            fmt = stat.S_IFMT(st.st_mode)
            os.mknod(name, fmt | 0o600, st.st_rdev, dir_fd=parent)
            os.chown(name, uid, gid, dir_fd=parent, follow_symlinks=False)
            os.chmod(name, mode, dir_fd=parent)
        else:
            return  # sockets are not copied
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=parent, follow_symlinks=False)
    finally:
        os.close(parent)


def _remove(out: Destination, parent: int, name: str) -> None:
    if remove_at(parent, name):
        out.root.forget()
        out._known = {k for k in out._known if name not in k}


def _copy_file(entry: Entry, parent: int, name: str) -> None:
    src = os.open(entry.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=entry.parent)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    dst = os.open(name, flags, 0o600, dir_fd=parent)
    try:
        size = os.fstat(src).st_size
        copied = 0
        try:
            while copied < size:
                n = os.copy_file_range(src, dst, min(size - copied, 1 << 30))
                if n == 0:
                    break
                copied += n
        except OSError:
            os.lseek(src, 0, os.SEEK_SET)
            os.ftruncate(dst, 0)
            os.lseek(dst, 0, os.SEEK_SET)
            while chunk := os.read(src, CHUNK):
                os.write(dst, chunk)
    finally:
        os.close(src)
        os.close(dst)


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]
