"""``bolt.capsules.snapshots.Snapshot``: the seed's capsule snapshot API.

    snap = await Snapshot.create("pre-overclock")      # containers + every provider's state
    ...
    await snap.restore()                                # all or nothing; raises on rollback
    Snapshot.list(); Snapshot.delete("pre-overclock")

A snapshot holds, per registered provider (:mod:`bolt.capsules.providers`), one document:
the containers' file systems (:mod:`bolt.capsules.filesystem`) and, with nvcontrol
installed, the GPU configuration.  ``create`` and ``restore`` first repair what a killed
process left (:func:`bolt.capsules.executor.repair`).
"""

from __future__ import annotations

import asyncio
import builtins
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bolt.capsules import executor
from bolt.capsules import providers as registry
from bolt.capsules.providers import Context, Document, Selection
from bolt.capsules.store import READY, SnapshotCorrupt, SnapshotRecord, SnapshotStore, check_name
from bolt.errors import InvalidInput, UserError

Progress = Callable[[str, str], None]


def default_root() -> Path:
    return Path(os.environ.get("BOLT_ROOT") or "/var/lib/bolt")


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


async def repair(root: Path | None = None, say: Callable[[str], None] = _warn) -> int:
    """Finish restores and captures that a killed process left; returns how many."""
    with SnapshotStore(root or default_root()) as store:
        return len(await executor.repair(store, say))


@dataclass(frozen=True)
class Snapshot:
    name: str
    created: float
    trigger: str
    project: str | None
    providers: tuple[str, ...]
    documents: dict[str, Document]
    root: Path

    @classmethod
    def _of(cls, rec: SnapshotRecord, root: Path) -> Snapshot:
        return cls(
            rec.name,
            rec.created,
            rec.trigger,
            rec.project,
            tuple(rec.documents),
            rec.documents,
            root,
        )

    # ------------------------------------------------------------ the seed's API

    @classmethod
    async def create(
        cls,
        name: str,
        *,
        containers: Sequence[str] = (),
        project: str | None = None,
        providers: Sequence[str] | None = None,
        trigger: str = "manual",
        root: Path | str | None = None,
        progress: Progress | None = None,
    ) -> Snapshot:
        """Take a snapshot: the given containers (or a project's, or every container of
        the state root) and the state of ``providers`` (default: every installed one)."""
        base = Path(root) if root is not None else default_root()
        check_name(name)
        selection = Selection(tuple(containers), project)
        loaded = registry.load_many(providers)
        with SnapshotStore(base) as store:
            await executor.repair(store, _warn)
            rec = store.begin_snapshot(
                name, trigger, project, {"selection": {"containers": list(containers)}}
            )
            ctx = Context(base, rec.dir, selection, progress)
            docs: dict[str, Document] = {}
            try:
                for p in loaded:
                    doc = await p.capture(ctx)
                    if doc is not None:
                        docs[p.name] = doc
                if not docs:
                    raise InvalidInput(
                        f"nothing to snapshot: no container selected and no provider "
                        f"({', '.join(p.name for p in loaded)}) has state here",
                        hint="run containers first, or name them with --container",
                    )
                store.finish_snapshot(name, docs)
            except BaseException:
                for p in loaded:
                    try:
                        p.discard(docs.get(p.name), ctx)
                    except (UserError, OSError) as err:
                        _warn(f"warning: {p.name}: {err}")
                shutil.rmtree(rec.dir, ignore_errors=True)
                store.delete_row(name)
                raise
            return cls._of(store.get(name), base)

    async def restore(self, progress: Progress | None = None) -> executor.RestoreReport:
        """Bring every provider back to this snapshot, all or nothing.  Raises
        ``RestoreRolledBack`` (exit 5) when a provider failed and all were rolled back."""
        with SnapshotStore(self.root) as store:
            await executor.repair(store, _warn)
            return await executor.restore(store, store.get(self.name), progress)

    @classmethod
    def get(cls, name: str, *, root: Path | str | None = None) -> Snapshot:
        base = Path(root) if root is not None else default_root()
        with SnapshotStore(base) as store:
            return cls._of(store.get(name), base)

    @classmethod
    def list(cls, *, root: Path | str | None = None) -> builtins.list[Snapshot]:
        """Every snapshot, oldest first; a damaged record raises ``SnapshotCorrupt``
        (``bolt snapshot list`` shows those as damaged instead: :func:`listing`)."""
        base = Path(root) if root is not None else default_root()
        with SnapshotStore(base) as store:
            return [cls._of(store.parse(r), base) for r in store.rows() if r["state"] == READY]

    @classmethod
    def delete(cls, name: str, *, root: Path | str | None = None) -> None:
        base = Path(root) if root is not None else default_root()
        check_name(name)
        with SnapshotStore(base) as store:
            row = next((r for r in store.rows() if r["name"] == name), None)
            if row is None:
                store.get(name)  # raises NotFound with the known names
                return
            if store.restoring(name):
                raise UserError(
                    f"snapshot {name!r} is being restored; nothing was deleted",
                    hint="wait for the restore to finish",
                )
            try:
                rec: SnapshotRecord | None = store.parse(row)
            except SnapshotCorrupt:
                rec = None  # a damaged record can still be deleted
            if rec is not None:
                problems = executor.discard_files(store, rec)
                if problems:
                    raise UserError(
                        f"snapshot {name!r} could not be deleted fully: " + "; ".join(problems)
                    )
            shutil.rmtree(row["dir"], ignore_errors=True)
            store.delete_row(name)

    # ------------------------------------------------------------ showing

    def summary(self) -> dict[str, Any]:
        fs = self.documents.get("containers", {})
        return {
            "name": self.name,
            "created": self.created,
            "trigger": self.trigger,
            "project": self.project,
            "providers": list(self.providers),
            "containers": [c.get("name") for c in fs.get("containers", [])],
            "size": _size(self),
        }


def _size(snap: Snapshot) -> int:
    fs = snap.documents.get("containers", {})
    return sum(int(c.get("size", 0)) for c in fs.get("containers", []) if isinstance(c, dict))


def listing(root: Path) -> builtins.list[dict[str, Any]]:
    """What ``bolt snapshot list`` shows: one summary per snapshot, a damaged one with its
    error instead of failing the whole list."""
    out = []
    with SnapshotStore(root) as store:
        for row in store.rows():
            if row["state"] != READY:
                continue
            try:
                out.append(Snapshot._of(store.parse(row), root).summary())
            except SnapshotCorrupt as err:
                out.append({"name": row["name"], "damaged": err.message})
    return out


def run(coro: Any) -> Any:
    """Run one of the async calls from synchronous code (the CLI)."""
    return asyncio.run(coro)
