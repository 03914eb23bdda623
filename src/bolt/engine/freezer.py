"""``pause`` and ``unpause``: the runtime freezes the container's cgroup (cgroup freezer);
the row's status follows as a compare-and-set, and each is an event."""

from __future__ import annotations

from pathlib import Path

from bolt.engine.containers import Conflict, reconcile, runtime_of
from bolt.errors import InvalidInput
from bolt.state.db import ContainerRow, StateDB


def pause(root: Path, db: StateDB, row: ContainerRow) -> ContainerRow:
    row = reconcile(root, db, row)
    if row.status != "running":
        raise InvalidInput(f"container {row.name} is {row.status}, not running")
    runtime_of(root, row).pause(row.id)
    if not db.transition(row.id, ("running",), status="paused"):
        runtime_of(root, row).resume(row.id)
        raise Conflict(f"container {row.name} changed state while being paused")
    db.add_event(row.id, row.name, "paused")
    return db.refresh(row) or row


def unpause(root: Path, db: StateDB, row: ContainerRow) -> ContainerRow:
    row = reconcile(root, db, row)
    if row.status != "paused":
        raise InvalidInput(f"container {row.name} is {row.status}, not paused")
    runtime_of(root, row).resume(row.id)
    if not db.transition(row.id, ("paused",), status="running"):
        raise Conflict(f"container {row.name} changed state while being unpaused")
    db.add_event(row.id, row.name, "unpaused")
    return db.refresh(row) or row
