"""What capsule snapshots need of the container engine, in one place.

Selecting containers (given ones, a project's by its label, or all), a container's overlay
upper directory, pausing (the Engine's cgroup freezer), and stopping/starting one around a
restore — all through :class:`bolt.engine.Engine`.  Blocking calls: run them in a thread.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from bolt.capsules.providers import Selection
from bolt.engine import ContainerInfo, Engine
from bolt.errors import BoltError, InvalidInput, NotFound
from bolt.runtime import rootfs
from bolt.runtime.layout import ContainerDir

PROJECT_LABEL = "bolt.surge.project"
RUNNING, PAUSED = "running", "paused"


@dataclass(frozen=True)
class Target:
    id: str
    name: str
    image: str
    status: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "image": self.image, "status": self.status}


def _target(info: ContainerInfo) -> Target:
    return Target(info.id, info.name, info.image, info.status)


def select(root: Path, selection: Selection) -> list[Target]:
    with Engine(root) as eng:
        if selection.containers:
            infos = [eng.inspect(ref) for ref in selection.containers]
        elif selection.project is not None:
            infos = eng.list(labels={PROJECT_LABEL: selection.project})
        else:
            infos = eng.list()
    out = []
    for info in infos:
        if info.status == "creating":
            raise InvalidInput(f"container {info.name} is still being created; try again")
        if info.intent is not None and info.intent.auto_remove:
            continue  # a --rm container's upper dir is volatile: not kept
        out.append(_target(info))
    return list({t.id: t for t in out}.values())


def find(root: Path, cid: str, name: str, image: str) -> Target | None:
    """The container a snapshot entry names: the same id, else one of the same name made
    from the same image (a project re-created it)."""
    with Engine(root) as eng:
        for ref in (cid, name):
            try:
                info = eng.inspect(ref)
            except NotFound:
                continue
            if info.id == cid or info.image == image:
                return _target(info)
    return None


def status(root: Path, cid: str) -> str | None:
    with Engine(root) as eng:
        try:
            return eng.inspect(cid).status
        except NotFound:
            return None


def upper_dir(root: Path, cid: str) -> Path:
    """The writable layer of the container's root file system."""
    return ContainerDir.of(root, cid).overlay_dirs[0]


def restore_unit(root: Path, cid: str) -> tuple[Path, Path, bool]:
    """What a restore swaps as a whole: ``(path, its overlay work dir, is a subvolume)`` —
    on btrfs the subvolume holding upper and work, else the upper directory."""
    cdir = ContainerDir.of(root, cid)
    upper, work = cdir.overlay_dirs
    if cdir.fs_subvolume.is_dir():
        return cdir.fs_subvolume, work, True
    return upper, work, False


def pause(root: Path, cid: str) -> None:
    """Freeze every process of a running container (its writes stop mid-way, consistently)."""
    with Engine(root) as eng:
        eng.pause(cid)


def unpause(root: Path, cid: str) -> None:
    with Engine(root) as eng:
        eng.unpause(cid)


def stop(root: Path, cid: str) -> None:
    """Stop the container at once (its files are being replaced; no error if it is not
    running) and unmount its root file system, so its upper directory may be replaced."""
    with Engine(root) as eng, contextlib.suppress(NotFound):
        eng.stop(cid, timeout=0)
    rootfs.unmount(ContainerDir.of(root, cid).rootfs)


def start(root: Path, cid: str) -> None:
    """Run a stopped container again (no error if it already runs)."""
    if status(root, cid) in (RUNNING, PAUSED):
        return
    with Engine(root) as eng:
        eng.start(cid)


def unpause_quietly(root: Path, cids: list[str]) -> None:
    for cid in cids:
        with contextlib.suppress(BoltError, OSError):
            if status(root, cid) == PAUSED:
                unpause(root, cid)
