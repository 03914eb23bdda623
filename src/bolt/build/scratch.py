"""Build scratch space: ``$BOLT_ROOT/build/<id>/``, one directory per running build, held
by an ``flock`` while it runs (on the same file system as the layer cache, so a finished
upper directory is renamed into it).  A build killed midway leaves its directory behind,
maybe with a RUN container still running over a mounted overlay; whoever finds a directory
whose lock is free cleans it (the next build, ``bolt system prune``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from basis import workdirs
from bolt.build import container
from bolt.runtime import rootfs as overlay


def reap_killed_builds(root: Path) -> list[str]:
    """Clean what builds killed midway left under ``root/build`` (their lock is free): a
    container still running a RUN step is killed and deleted, the overlays unmounted, the
    scratch directory removed.  Returns the names of the directories removed.  Called
    when a build starts and by ``bolt system prune``."""
    base = root / "build"
    if not base.is_dir():
        return []
    removed = []
    for entry in workdirs.abandoned(base):  # a running build holds its directory's lock
        for scratch in entry.glob("step-*/scratch"):
            container.reap(scratch, root)
        for rootfs in entry.glob("step-*/rootfs"):
            overlay.unmount(rootfs)
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry.name)
    return removed


def work_dir(root: Path, stack: contextlib.ExitStack) -> Path:
    """A private scratch directory, locked while this build runs; ones left by killed
    builds are cleaned first (:func:`reap_killed_builds`)."""
    reap_killed_builds(root)
    base = root / "build"
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=base))
    fd = workdirs.hold(work)

    def cleanup() -> None:
        for rootfs in work.glob("step-*/rootfs"):
            overlay.unmount(rootfs)
        shutil.rmtree(work, ignore_errors=True)
        os.close(fd)

    stack.callback(cleanup)
    return work
