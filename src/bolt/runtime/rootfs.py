"""A container's root file system: overlayfs over the image's unpacked layers.

Layout under ``$BOLT_ROOT/containers/<id>/``: ``upper/`` and ``work/`` (the container's own
changes) and ``bundle/rootfs`` (the merged mount the runtime pivots into).
"""

from __future__ import annotations

import os
from pathlib import Path

from bolt.errors import BoltError
from bolt.runtime import linux


def mount_overlay(layers_lowest_first: list[Path], container_dir: Path, target: Path) -> None:
    """Mount ``target`` as overlayfs; the highest layer wins, the container's upper on top."""
    upper, work = container_dir / "upper", container_dir / "work"
    for d in (upper, work, target):
        d.mkdir(parents=True, exist_ok=True)
    lowers = [str(p) for p in reversed(layers_lowest_first)]
    if not lowers:
        empty = container_dir / "empty-layer"
        empty.mkdir(exist_ok=True)
        lowers = [str(empty)]
    data = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"
    cwd = None
    if len(data) > 3500:
        # The mount data is limited to one page: name the layers relative to their parent.
        common = os.path.commonpath(lowers)
        cwd = os.getcwd()
        os.chdir(common)
        rel = [os.path.relpath(p, common) for p in lowers]
        data = f"lowerdir={':'.join(rel)},upperdir={upper},workdir={work}"
    try:
        linux.mount("overlay", str(target), "overlay", 0, data)
    except OSError as exc:
        raise BoltError(
            f"cannot mount the container's root file system at {target}: {exc.strerror}"
        ) from exc
    finally:
        if cwd is not None:
            os.chdir(cwd)


def unmount(target: Path) -> None:
    """Unmount ``target`` (and anything left mounted below it); no error if not mounted."""
    while linux.is_mountpoint(str(target)):
        if not linux.umount(str(target), detach=True):
            break
