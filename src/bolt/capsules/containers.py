"""What capsule snapshots need of the container engine, in one place.

Selecting containers (given ones, a project's by its label, or all), a container's overlay
upper directory, pausing (cgroup freezer, through the OCI runtime's ``pause``/``resume``),
and stopping/starting one around a restore.  Everything else of capsules talks to
containers only through here, so moving to the Engine's ``upper_dir``/``pause``/``unpause``
changes this file alone.  Blocking calls: run them in a thread.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from bolt.capsules.providers import Selection
from bolt.errors import BoltError, InvalidInput
from bolt.runtime import engine, rootfs
from bolt.runtime.layout import ContainerDir
from bolt.state.db import ContainerRow, StateDB

PROJECT_LABEL = "bolt.surge.project"
RUNNING = "running"


@dataclass(frozen=True)
class Target:
    id: str
    name: str
    image_id: str
    status: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "image_id": self.image_id, "status": self.status}


def _target(row: ContainerRow) -> Target:
    return Target(row.id, row.name, row.image_id, row.status)


def select(root: Path, selection: Selection) -> list[Target]:
    db = StateDB(root)
    try:
        if selection.containers:
            rows = [engine.reconcile(root, db, db.get(ref)) for ref in selection.containers]
        else:
            rows = [engine.reconcile(root, db, r) for r in db.all()]
            if selection.project is not None:
                rows = [r for r in rows if r.labels_dict.get(PROJECT_LABEL) == selection.project]
        out = []
        for row in rows:
            if row.status == "creating":
                raise InvalidInput(f"container {row.name} is still being created; try again")
            if not row.auto_remove:  # a --rm container's upper dir is volatile: not kept
                out.append(_target(row))
        return list({t.id: t for t in out}.values())
    finally:
        db.close()


def find(root: Path, cid: str, name: str, image_id: str) -> Target | None:
    """The container a snapshot entry names: the same id, else one of the same name made
    from the same image (a project re-created it)."""
    db = StateDB(root)
    try:
        row = db.find(cid)
        if row is None:
            row = db.find(name)
            if row is not None and row.image_id != image_id:
                return None
        return None if row is None else _target(engine.reconcile(root, db, row))
    finally:
        db.close()


def status(root: Path, cid: str) -> str | None:
    db = StateDB(root)
    try:
        row = db.find(cid)
        return None if row is None else engine.reconcile(root, db, row).status
    finally:
        db.close()


def container_dir(root: Path, cid: str) -> Path:
    return ContainerDir.of(root, cid).path


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


def _runtime_call(root: Path, cid: str, verb: str) -> None:
    db = StateDB(root)
    try:
        row = db.get(cid)
    finally:
        db.close()
    rt = engine.runtime_of(root, row)
    proc = rt._run(verb, cid, check=False)
    if proc.returncode != 0:
        state = rt.state(cid) or {}
        wanted = "paused" if verb == "pause" else "running"
        if state.get("status") != wanted:  # already there is not a failure
            from bolt.runtime.driver import runtime_message

            raise BoltError(f"cannot {verb} container {row.name}: {runtime_message(proc.stderr)}")


def pause(root: Path, cid: str) -> None:
    """Freeze every process of a running container (its writes stop mid-way, consistently)."""
    _runtime_call(root, cid, "pause")


def unpause(root: Path, cid: str) -> None:
    _runtime_call(root, cid, "resume")


def paused(root: Path, cid: str) -> bool:
    db = StateDB(root)
    try:
        row = db.find(cid)
    finally:
        db.close()
    if row is None:
        return False
    return (engine.runtime_of(root, row).state(cid) or {}).get("status") == "paused"


def stop(root: Path, cid: str) -> None:
    """Stop the container (no error if it is not running) and unmount its root file
    system, so its upper directory may be replaced."""
    db = StateDB(root)
    try:
        row = db.find(cid)
        if row is not None:
            if paused(root, cid):
                unpause(root, cid)  # a frozen process cannot act on its stop signal
            engine.stop(root, db, row, timeout=0)  # its files are being replaced anyway
    finally:
        db.close()
    rootfs.unmount(ContainerDir.of(root, cid).rootfs)


def start(root: Path, cid: str) -> None:
    """Run a stopped container again (no error if it already runs)."""
    from bolt.runtime.oci import _await_created

    if status(root, cid) == RUNNING:
        return
    launched = engine.start_again(root, cid, fork=False)
    _await_created(launched.sock)


def unpause_quietly(root: Path, cids: list[str]) -> None:
    for cid in cids:
        with contextlib.suppress(BoltError, OSError):
            if paused(root, cid):
                unpause(root, cid)
