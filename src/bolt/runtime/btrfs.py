"""btrfs subvolumes for container upper directories, through btrfs-progs' ``btrfs`` command.

When ``$BOLT_ROOT`` is on btrfs, a container's overlay upper and work directories live in
one subvolume (``fs/``; overlayfs renames between the two, which btrfs refuses across
subvolumes), so a capsule snapshot takes it as a read-only subvolume snapshot (copy-on-write,
no tar) and a restore makes a writable snapshot of that.  Detection is one ``statfs`` call, cheap enough
for the ``bolt run`` path (which must not import subprocess or shutil); the ``btrfs``
command runs only on btrfs.
"""

from __future__ import annotations

import os
from pathlib import Path

from bolt.errors import BoltError, Unsupported
from bolt.runtime import linux

BTRFS_SUPER_MAGIC = 0x9123683E
SUBVOLUME_INODE = 256  # every btrfs subvolume's root directory has this inode number


def is_btrfs(path: Path) -> bool:
    """Whether ``path`` (or its nearest existing parent) is on btrfs."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return linux.fs_magic(str(probe)) == BTRFS_SUPER_MAGIC


def is_subvolume(path: Path) -> bool:
    try:
        return is_btrfs(path) and os.lstat(path).st_ino == SUBVOLUME_INODE
    except FileNotFoundError:
        return False


def _btrfs(*args: str) -> None:
    import shutil
    import subprocess

    tool = shutil.which("btrfs")
    if tool is None:
        raise Unsupported(
            "this state directory is on btrfs but the btrfs command is missing",
            hint="install btrfs-progs",
        )
    proc = subprocess.run([tool, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        message = proc.stderr.strip().splitlines()[-1:] or ["no error output"]
        raise BoltError(f"btrfs {args[0]} {args[1]} failed: {message[0]}")


def make_dir(path: Path, *, subvolume_only: bool = False) -> None:
    """``mkdir -p path``, the last part a subvolume when the parent is on btrfs (with
    ``subvolume_only``, nothing is made elsewhere)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_btrfs(path.parent):
        _btrfs("subvolume", "create", str(path))
    elif not subvolume_only:
        path.mkdir()


def snapshot(source: Path, target: Path, *, readonly: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    _btrfs("subvolume", "snapshot", *(["-r"] if readonly else []), str(source), str(target))


def remove_tree(path: Path) -> None:
    """Remove ``path``: a subvolume (read-only ones included) with ``btrfs subvolume delete``,
    a directory with its contents; nothing if it is absent."""
    if is_subvolume(path):
        _btrfs("subvolume", "delete", str(path))
    elif path.is_dir() and not path.is_symlink():
        import shutil

        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
