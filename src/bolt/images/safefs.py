"""Paths resolved strictly inside one directory, as if it were ``/`` (chroot semantics).

A layer may hold symlinks that point anywhere (``/bin/sh -> /bin/busybox``, or a hostile
``evil -> /etc``) and later members that are written through them.  Every component is
opened relative to a directory file descriptor with ``O_NOFOLLOW``; symlinks met on the way
are read and resolved by hand against the root, and ``..`` never climbs above it.  So a
path can only ever name something inside the root, whatever the tree contains, and nothing
here passes a path with a symlink or ``..`` to the kernel.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

from bolt.images.errors import UnsafeLayer

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_SYMLINKS = 40


def member_parts(name: str) -> list[str]:
    """The components of an archive member name, kept inside the root: a leading ``/`` is
    dropped (the path is taken as relative to the root) and ``..`` is refused, since no
    honest archive needs it."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeLayer(
            f"archive member {name!r} climbs out of the root with '..'",
            hint="the layer is malformed or hostile; nothing was written outside the target",
        )
    return parts


def hardlink_outside(name: str, linkname: str) -> UnsafeLayer:
    """The error for a hardlink whose target is not a file earlier in its own layer: a
    layer is unpacked alone (an overlayfs lower dir), so a link to a lower layer's file,
    to a path through a symlink or to nothing cannot be made, and one that climbs out
    must not be."""
    return UnsafeLayer(
        f"hardlink {name!r} points at {linkname!r}, which is not a file earlier in the layer",
        hint="the layer is malformed or hostile; nothing was stored or written outside",
    )


class RootDir:
    """An open directory inside which every path is resolved."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, _DIR_FLAGS)
        # the last directory resolved: members come grouped by directory, and walking
        # from the root for each one costs a stat and an open per component
        self._cached: tuple[tuple[str, ...], int] | None = None

    def close(self) -> None:
        self.forget()
        os.close(self.fd)

    def forget(self) -> None:
        """Drop the cached directory; call after anything that could change how a path
        resolves (an entry removed or replaced, a symlink created)."""
        if self._cached is not None:
            os.close(self._cached[1])
            self._cached = None

    def __enter__(self) -> RootDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open_dir(self, parts: list[str], *, create: bool) -> int | None:
        """A new fd of the directory ``parts`` names (symlinks in it resolved inside the
        root); missing directories are made when ``create``, else ``None`` is returned."""
        stack = [os.dup(self.fd)]
        pending = list(parts)
        links = 0
        try:
            while pending:
                name = pending.pop(0)
                if name in ("", "."):
                    continue
                if name == "..":
                    if len(stack) > 1:
                        os.close(stack.pop())
                    continue
                cur = stack[-1]
                try:
                    st = os.stat(name, dir_fd=cur, follow_symlinks=False)
                except FileNotFoundError:
                    if not create:
                        return None
                    os.mkdir(name, 0o755, dir_fd=cur)
                    st = os.stat(name, dir_fd=cur, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    links += 1
                    if links > MAX_SYMLINKS:
                        raise UnsafeLayer(f"too many levels of symlinks in {'/'.join(parts)!r}")
                    target = os.readlink(name, dir_fd=cur)
                    if target.startswith("/"):
                        while len(stack) > 1:
                            os.close(stack.pop())
                    pending[:0] = target.split("/")
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    if not create:
                        return None
                    raise UnsafeLayer(
                        f"cannot write below {'/'.join(parts)!r}: {name!r} is not a directory"
                    )
                stack.append(os.open(name, _DIR_FLAGS, dir_fd=cur))
            return stack.pop()
        finally:
            for fd in stack:
                os.close(fd)

    def open_parent(self, parts: list[str], *, create: bool = True) -> int | None:
        """A new fd of the directory that holds ``parts[-1]``."""
        key = tuple(parts[:-1])
        if self._cached is not None and self._cached[0] == key:
            return os.dup(self._cached[1])
        fd = self.open_dir(parts[:-1], create=create)
        if fd is not None:
            self.forget()
            self._cached = (key, os.dup(fd))
        return fd


def lstat_at(dirfd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def remove_at(dirfd: int, name: str) -> bool:
    """Remove ``name`` in ``dirfd`` (a whole tree if it is a directory), never following a
    symlink; returns whether there was anything to remove."""
    st = lstat_at(dirfd, name)
    if st is None:
        return False
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dirfd)
    else:
        try:
            os.unlink(name, dir_fd=dirfd)
        except FileNotFoundError:
            return False
    return True


def proc_path(dirfd: int, name: str) -> str:
    """A path naming ``name`` inside ``dirfd`` for calls that take no ``dir_fd`` (xattrs);
    only the final component is ``name``, so ``follow_symlinks=False`` still holds."""
    return f"/proc/self/fd/{dirfd}/{name}"


def ignorable_xattr_error(err: OSError) -> bool:
    return err.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES)
