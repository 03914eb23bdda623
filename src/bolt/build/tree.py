"""Reading COPY and ADD sources from a directory treated as a root: the build context (with
its ignore rules) or another stage's / image's root file system.

Every path is resolved inside the root (``bolt.images.safefs``): a symlink in the context
or in a stage (``out -> /etc``) is followed as if the root were ``/``, never onto the
host.  A source that is itself a symlink is followed; symlinks inside a copied directory
are copied as symlinks.  ``digest`` hashes what a step reads (paths, types, modes, sizes,
contents, link targets; never mtimes or owners), which goes into the step's cache key.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import os
import posixpath
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from bolt.build.ignore import IgnoreRules
from bolt.errors import InvalidInput, NotFound
from bolt.images.digests import CHUNK
from bolt.images.safefs import MAX_SYMLINKS, RootDir, lstat_at

GLOB_CHARS = set("*?[")
Memo = Callable[[os.stat_result, Callable[[], str]], str]


@dataclass(frozen=True)
class Entry:
    """One thing to copy: ``rel`` is its path below the source ('' for the source itself)."""

    rel: str
    st: os.stat_result
    parent: int  # open fd of the directory holding it (valid while the walk is at it)
    name: str
    link: str = ""  # symlink target

    @property
    def kind(self) -> str:
        mode = self.st.st_mode
        for test, name in (
            (stat.S_ISDIR, "dir"),
            (stat.S_ISREG, "file"),
            (stat.S_ISLNK, "symlink"),
            (stat.S_ISFIFO, "fifo"),
            (stat.S_ISCHR, "chr"),
            (stat.S_ISBLK, "blk"),
        ):
            if test(mode):
                return name
        return "other"


@dataclass(frozen=True)
class Source:
    """A matched source: its path in the root (symlinks followed) and its base name."""

    path: str  # "a/b", "" for the root itself
    name: str


class Tree:
    def __init__(self, path: Path, rules: IgnoreRules | None = None, label: str = "") -> None:
        self.path = path
        self.rules = rules or IgnoreRules()
        self.label = label or str(path)
        self.root = RootDir(path)

    def close(self) -> None:
        self.root.close()

    def __enter__(self) -> Tree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- matching ---------------------------------------------------------------------

    def match(self, pattern: str) -> list[Source]:
        """The sources ``pattern`` (a path, maybe with globs) names; none is an error."""
        clean = posixpath.normpath("/" + pattern).lstrip("/")
        if posixpath.normpath(pattern).startswith("../") or posixpath.normpath(pattern) == "..":
            raise InvalidInput(f"{pattern!r} is outside the {self.label}")
        parts = [p for p in clean.split("/") if p]
        candidates = [""]
        for part in parts:
            nxt: list[str] = []
            for base in candidates:
                if set(part) & GLOB_CHARS:
                    nxt += [
                        _join(base, name)
                        for name in sorted(self._listdir(base))
                        if fnmatch.fnmatchcase(name, part)
                    ]
                else:
                    nxt.append(_join(base, part))
            candidates = nxt
        found: list[Source] = []
        for rel in candidates:
            if rel and self.rules.excluded(rel):
                continue
            real = self.resolve(rel)
            if real is not None:
                found.append(Source(real, posixpath.basename(rel) or posixpath.basename(real)))
        if not found:
            link = self._link_target(clean)
            if link is not None:
                raise NotFound(
                    f"{pattern!r} is a symlink to {link!r}, which is not in the {self.label}",
                    hint="links are resolved inside it, as if it were /; copy the file in",
                )
            hint = f"it may be excluded by {self.rules.source}" if self.rules.source else None
            raise NotFound(f"{pattern!r} does not exist in the {self.label}", hint=hint)
        return found

    def _link_target(self, rel: str) -> str | None:
        parts = _parts(rel)
        parent = self.root.open_parent(parts, create=False) if parts else None
        if parent is None:
            return None
        try:
            st = lstat_at(parent, parts[-1])
            if st is None or not stat.S_ISLNK(st.st_mode):
                return None
            return os.readlink(parts[-1], dir_fd=parent)
        finally:
            os.close(parent)

    def _listdir(self, rel: str) -> list[str]:
        real = self.resolve(rel)
        if real is None:
            return []
        fd = self.root.open_dir(_parts(real), create=False)
        if fd is None:
            return []
        try:
            return os.listdir(fd)
        finally:
            os.close(fd)

    def resolve(self, rel: str) -> str | None:
        """``rel`` with every symlink followed inside the root; None if it does not exist."""
        current = posixpath.normpath("/" + rel).lstrip("/")
        for _ in range(MAX_SYMLINKS):
            parts = _parts(current)
            if not parts:
                return ""
            parent = self.root.open_parent(parts, create=False)
            if parent is None:
                return None
            try:
                st = lstat_at(parent, parts[-1])
                if st is None:
                    return None
                if not stat.S_ISLNK(st.st_mode):
                    # the parents were resolved: name the real path of the directory
                    return _join(_fd_path(parent, self.path), parts[-1])
                target = os.readlink(parts[-1], dir_fd=parent)
            finally:
                os.close(parent)
            base = "/" if target.startswith("/") else "/" + posixpath.dirname(current)
            current = posixpath.normpath(posixpath.join(base, target)).lstrip("/")
        raise InvalidInput(f"too many levels of symlinks in {rel!r} in the {self.label}")

    # --- walking ----------------------------------------------------------------------

    def walk(self, source: Source) -> Iterator[Entry]:
        """The source, then (for a directory) everything below it, sorted, not ignored."""
        parts = _parts(source.path)
        if not parts:
            st = os.fstat(self.root.fd)
            yield Entry("", st, self.root.fd, ".")
            yield from self._below(self.root.fd, "", "")
            return
        parent = self.root.open_parent(parts, create=False)
        if parent is None:
            raise NotFound(f"{source.path!r} vanished from the {self.label}")
        try:
            top = lstat_at(parent, parts[-1])
            if top is None:
                raise NotFound(f"{source.path!r} vanished from the {self.label}")
            yield self._entry("", top, parent, parts[-1])
            if stat.S_ISDIR(top.st_mode):
                fd = os.open(parts[-1], os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
                try:
                    yield from self._below(fd, source.path, "")
                finally:
                    os.close(fd)
        finally:
            os.close(parent)

    def _below(self, dirfd: int, root_rel: str, rel: str) -> Iterator[Entry]:
        for name in sorted(os.listdir(dirfd)):
            in_root = _join(root_rel, name)
            excluded = self.rules.excluded(in_root) if self.rules.patterns else False
            st = lstat_at(dirfd, name)
            if st is None:
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            if excluded and not (is_dir and self.rules.has_exceptions):
                continue
            if not excluded:
                yield self._entry(_join(rel, name), st, dirfd, name)
            if is_dir:
                fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dirfd)
                try:
                    yield from self._below(fd, in_root, _join(rel, name))
                finally:
                    os.close(fd)

    def open_file(self, source: Source) -> BinaryIO:
        """The regular file ``source`` names, open for reading."""
        parts = _parts(source.path)
        parent = self.root.open_parent(parts, create=False) if parts else None
        if parent is None:
            raise NotFound(f"{source.path!r} does not exist in the {self.label}")
        try:
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        except OSError as err:
            raise InvalidInput(f"cannot read {source.path!r}: {err.strerror}") from None
        finally:
            os.close(parent)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise InvalidInput(f"{source.path!r} in the {self.label} is not a file")
        return os.fdopen(fd, "rb")

    def is_file(self, source: Source) -> bool:
        parts = _parts(source.path)
        parent = self.root.open_parent(parts, create=False) if parts else None
        if parent is None:
            return False
        try:
            st = lstat_at(parent, parts[-1])
        finally:
            os.close(parent)
        return st is not None and stat.S_ISREG(st.st_mode)

    @staticmethod
    def _entry(rel: str, st: os.stat_result, parent: int, name: str) -> Entry:
        link = os.readlink(name, dir_fd=parent) if stat.S_ISLNK(st.st_mode) else ""
        return Entry(rel, st, parent, name, link)

    def digest(self, sources: list[Source], memo: Memo | None = None) -> str:
        """A hash of everything ``sources`` hold, for the cache key; ``memo(stat,
        compute)`` may answer a file's sha256 without reading it."""
        h = hashlib.sha256()
        for source in sources:
            h.update(f"source {source.name}\0".encode())
            for entry in self.walk(source):
                h.update(_describe(entry).encode())
                if entry.kind == "file":
                    compute = functools.partial(file_digest, entry)
                    h.update((memo(entry.st, compute) if memo else compute()).encode())
        return "sha256:" + h.hexdigest()


def _describe(entry: Entry) -> str:
    st = entry.st
    dev = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}" if entry.kind in ("chr", "blk") else ""
    size = st.st_size if entry.kind == "file" else 0
    return f"{entry.rel}\0{entry.kind}\0{stat.S_IMODE(st.st_mode):o}\0{size}\0{entry.link}\0{dev}\n"


def file_digest(entry: Entry) -> str:
    h = hashlib.sha256()
    fd = os.open(entry.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=entry.parent)
    with os.fdopen(fd, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _parts(rel: str) -> list[str]:
    return [p for p in rel.split("/") if p not in ("", ".")]


def _join(base: str, name: str) -> str:
    return f"{base}/{name}" if base else name


def _fd_path(fd: int, root: Path) -> str:
    """The path of the open directory ``fd`` relative to ``root`` (it is inside it)."""
    real = os.readlink(f"/proc/self/fd/{fd}")
    base = os.path.realpath(root)
    rel = os.path.relpath(real, base)
    return "" if rel == "." else rel
