"""A container's root file system: overlayfs over the image's unpacked layers.

Layout under ``$BOLT_ROOT/containers/<id>/``: ``upper/`` and ``work/`` (the container's own
changes; on btrfs both inside the subvolume ``fs/``) and ``bundle/rootfs`` (the merged mount
the runtime pivots into).
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from bolt.errors import BoltError
from bolt.runtime import btrfs, linux
from bolt.runtime.layout import ContainerDir


def mount_overlay(
    layers_lowest_first: list[Path], container_dir: Path, target: Path, *, volatile: bool = False
) -> None:
    """Mount ``target`` as overlayfs; the highest layer wins, the container's upper on top.

    ``volatile`` skips every sync of the upper directory, which makes the unmount cheap;
    the kernel then refuses to mount that upper directory again unless it is volatile
    again (its contents never claimed to be durable).  Kernels before 5.10 lack the
    option; there the mount is an ordinary one."""
    cdir = ContainerDir(container_dir)
    if not (container_dir / "upper").exists():
        btrfs.make_dir(cdir.fs_subvolume, subvolume_only=True)  # on btrfs, for snapshots
    upper, work = cdir.overlay_dirs
    for d in (upper, work, target):
        d.mkdir(parents=True, exist_ok=True)
    lowers = [str(p) for p in reversed(layers_lowest_first)]
    if not lowers:
        empty = container_dir / "empty-layer"
        empty.mkdir(exist_ok=True)
        lowers = [str(empty)]
    if volatile:
        for marker in (work / "work" / "incompat" / "volatile", work / "work" / "incompat"):
            with contextlib.suppress(FileNotFoundError):
                marker.rmdir()
    options = ",volatile" if volatile else ""
    data = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}{options}"
    cwd = None
    if len(data) > 3500 and _mount_many(lowers, upper, work, target, volatile):
        return
    if len(data) > 3500:
        # The mount data is limited to one page: name the layers relative to their parent.
        common = os.path.commonpath(lowers)
        cwd = os.getcwd()
        os.chdir(common)
        rel = [os.path.relpath(p, common) for p in lowers]
        data = f"lowerdir={':'.join(rel)},upperdir={upper},workdir={work}{options}"
    try:
        try:
            linux.mount("overlay", str(target), "overlay", 0, data)
        except OSError as exc:
            if not (volatile and exc.errno == errno.EINVAL):
                raise
            linux.mount("overlay", str(target), "overlay", 0, data.removesuffix(options))
    except OSError as exc:
        raise BoltError(
            f"cannot mount the container's root file system at {target}: {exc.strerror}"
        ) from exc
    finally:
        if cwd is not None:
            os.chdir(cwd)


def _mount_many(lowers: list[str], upper: Path, work: Path, target: Path, volatile: bool) -> bool:
    """A stack too long for mount(2)'s one page of options, through the new mount API
    (see :mod:`bolt.runtime.fsmount`); False where the kernel lacks it."""
    from bolt.runtime import fsmount

    if len(lowers) > fsmount.MAX_LOWER:
        raise BoltError(
            f"an image of {len(lowers)} layers cannot be mounted: overlayfs stacks at most "
            f"{fsmount.MAX_LOWER}",
            hint="squash the image into fewer layers",
        )
    try:
        return fsmount.mount_overlay(lowers, str(upper), str(work), str(target), volatile=volatile)
    except OSError as exc:
        raise BoltError(
            f"cannot mount the container's root file system at {target}: {exc.strerror}"
        ) from exc


def unmount(target: Path) -> None:
    """Unmount ``target`` (every mount stacked on it); no error if not mounted."""
    while linux.umount(str(target), detach=True):  # False (EINVAL) once nothing is left
        pass


def delete_container_dir(path: Path) -> None:
    """Delete a container's directory (in ``containers/``, or moved out of it with its
    root file system still mounted) and the bundle it links to in the run directory:
    unmount first, so the deletion never walks the mount."""
    import shutil

    from bolt.runtime import runroot

    try:
        unmount(ContainerDir(path).rootfs)
    except OSError:
        return  # left for ``bolt system prune`` rather than deleted through the mount
    runroot.delete(ContainerDir(path))
    shutil.rmtree(path, ignore_errors=True)
