"""Spare root file systems: one overlay mounted ahead for the next container of an image
that is removed on exit, so that its start pays one rename instead of the directories and
the mount (``bolt.engine.Engine.run_oneshot`` asks for them; see docs/decisions.md).

A spare is laid out exactly as ``prepare`` lays out such a container, under a container
id chosen in advance: ``$BOLT_ROOT/spares/<image>/<id>.<owner>/`` holds the overlay's
upper and work directories and the ``bundle`` link, and ``<run dir>/<id>/bundle/rootfs``
(on tmpfs) is the mounted overlay.  A container takes it with one ``rename`` into
``containers/<id>``, after its row (with that id) is written, so the rule that a
container's row comes before its directories holds.  A rename has one winner: two
containers, or a container and a prune, never both get the same spare; the loser makes
its directories the ordinary way.

Names: ``<id>.<owner>`` is ready (``owner``: the process that keeps it, as
``pid-starttime``; its spares go when it exits), ``.<id>.<maker>`` is being made.  The
disk part is made before the run directory and the mount, so that ``bolt system prune``,
which lists the run directories before the spares, never takes a run directory whose
spare it has not seen.  Whatever a killed owner or maker left is removed by the next
prune, and when the next owner in the same root makes its first spare.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from bolt.runtime import linux, rootfs, runroot
from bolt.runtime.layout import ContainerDir, removed_dir

OVERLAYFS_MAGIC = 0x794C7630
_KEY = re.compile(r"[0-9a-f]{64}")


class Spare(NamedTuple):
    cid: str
    path: Path


def base(root: Path) -> Path:
    return root / "spares"


def _key(image_id: str) -> str | None:
    key = image_id.removeprefix("sha256:")
    return key if _KEY.fullmatch(key) else None


def me() -> str:
    """This process as an owner or maker token."""
    from basis import process

    pid, start = process.me()
    return f"{pid}-{start}"


def _alive(token: str) -> bool:
    pid, _, start = token.partition("-")
    if not pid.isdigit() or not start.isdigit():
        return False
    return linux.process_alive(int(pid), int(start))


def find(root: Path, image_id: str) -> Spare | None:
    """A ready spare for the image (not yet taken: ``take`` may still lose it)."""
    key = _key(image_id)
    if key is None:
        return None
    directory = base(root) / key
    try:
        names = os.listdir(directory)
    except OSError:
        return None
    for name in names:
        if not name.startswith("."):
            return Spare(name.partition(".")[0], directory / name)
    return None


def take(spare: Spare, cdir: ContainerDir) -> bool:
    """Move the spare to ``cdir`` (whose row, with the spare's id, the caller has
    written).  False if another caller took it first: nothing was moved.  True: the
    container directory holds it, whose root file system must still be checked with
    ``mounted`` (a reboot empties the run directory)."""
    try:
        os.rename(spare.path, cdir.path)
    except OSError:
        return False
    return True


def mounted(cdir: ContainerDir) -> bool:
    """Whether the container's root file system is the overlay a spare mounted."""
    return linux.fs_magic(str(cdir.rootfs)) == OVERLAYFS_MAGIC


KEEP = 4  # spares one owner keeps in a root at most (one per image): the newest images'


def make(root: Path, image_id: str, layers: Sequence[Path], owner: str) -> bool:
    """Mount a spare for the image unless one is ready; True if one was made.  An owner
    that already keeps ``KEEP`` spares first drops its oldest."""
    key = _key(image_id)
    if key is None or find(root, image_id) is not None or not runroot.ensure_base():
        return False
    own = _owned(root, owner)
    for old in own[: max(0, len(own) - KEEP + 1)]:
        _delete(root, old)
    cid = os.urandom(32).hex()
    directory = base(root) / key
    making = directory / f".{cid}.{me()}"
    making.mkdir(parents=True)  # before the run directory: see the module's docstring
    try:
        bundle = runroot.in_run_dir(root, cid).bundle
        bundle.mkdir(parents=True)
        (making / "bundle").symlink_to(bundle)
        rootfs.mount_overlay(list(layers), making, bundle / "rootfs", volatile=True)
        os.rename(making, directory / f"{cid}.{owner}")
    except BaseException:
        import shutil

        rootfs.delete_container_dir(making)  # unmounts first, through the link
        shutil.rmtree(runroot.in_run_dir(root, cid).path, ignore_errors=True)  # if unlinked
        raise
    return True


def discard(
    root: Path,
    *,
    image_id: str | None = None,
    owner: str | None = None,
    dead_owners: bool = False,
) -> int:
    """Unmount and delete spares: every one, or those of ``image_id``, or those of
    ``owner``, or (``dead_owners``) those whose owner has exited.  Spares that a live
    process is making are left alone; a dead maker's are deleted.  Returns how many."""
    key = _key(image_id) if image_id is not None else None
    if image_id is not None and key is None:
        return 0
    try:
        keys = [key] if key is not None else os.listdir(base(root))
    except OSError:
        return 0
    count = 0
    for k in keys:
        directory = base(root) / k
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            token = name.lstrip(".").partition(".")[2]
            if name.startswith("."):
                if _alive(token):
                    continue
            elif (owner is not None and token != owner) or (dead_owners and _alive(token)):
                continue
            count += _delete(root, directory / name)
        with contextlib.suppress(OSError):
            directory.rmdir()  # an image whose spare was taken leaves its directory empty
    return count


def _delete(root: Path, path: Path) -> bool:
    """Take a spare out of ``spares/`` (a container may take it first: False) and
    delete it, its mount first."""
    doomed = removed_dir(root) / f"spare-{path.name.lstrip('.').partition('.')[0]}"
    try:
        doomed.parent.mkdir(exist_ok=True)
        os.rename(path, doomed)
    except OSError:
        return False
    rootfs.delete_container_dir(doomed)
    return True


def _owned(root: Path, owner: str) -> list[Path]:
    """The ready spares ``owner`` keeps in ``root``, oldest first."""
    found = []
    with contextlib.suppress(OSError):
        for k in os.listdir(base(root)):
            with contextlib.suppress(OSError):
                for entry in os.scandir(base(root) / k):
                    if not entry.name.startswith(".") and entry.name.endswith(f".{owner}"):
                        found.append((entry.stat(follow_symlinks=False).st_mtime, entry.path))
    return [Path(path) for _, path in sorted(found)]


def cids(root: Path) -> set[str]:
    """The container ids of every spare, ready or being made (``bolt system prune``
    keeps their run directories)."""
    found: set[str] = set()
    try:
        keys = os.listdir(base(root))
    except OSError:
        return found
    for k in keys:
        with contextlib.suppress(OSError):
            found.update(n.lstrip(".").partition(".")[0] for n in os.listdir(base(root) / k))
    return found


def image_ids(root: Path) -> list[str]:
    """The images that have spares (``sha256:`` ids)."""
    try:
        return ["sha256:" + k for k in os.listdir(base(root)) if _KEY.fullmatch(k)]
    except OSError:
        return []
