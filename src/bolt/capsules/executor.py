"""Runs a capsule restore: the I/O adapter of :mod:`bolt.capsules.twophase`, with its journal.

Each action of the machine is carried out on a provider, and the journal row
(:class:`bolt.capsules.store.SnapshotStore`, table ``restores``) is updated *before* the
next action acts: the records that ``prepare`` returns, the commit decision, every commit,
the rollback.  :func:`repair` runs at the start of every capsule command and API call: a
restore whose process died is driven to its end from the journal — rolled back if it died
before the decision, rolled forward after it — and a capture that died half-way is
discarded (its paused containers unpaused).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bolt.capsules import providers as registry
from bolt.capsules.providers import Context, Document, StateProvider
from bolt.capsules.store import RestoreRecord, SnapshotCorrupt, SnapshotRecord, SnapshotStore
from bolt.capsules.twophase import (
    Abort,
    Action,
    Commit,
    Decide,
    Done,
    Finish,
    Phase,
    Prepare,
    Restore,
)
from bolt.errors import ExitCode, UserError


class RestoreRolledBack(UserError):
    """A restore failed and every provider is back where it was (exit 5)."""

    exit_code = ExitCode.ROLLED_BACK


class RestoreIncomplete(UserError):
    """A restore failed and its rollback could not finish; the next command retries."""


@dataclass
class RestoreReport:
    id: int
    snapshot: str
    providers: list[str]
    restored: bool = False
    repaired: bool = False
    cause: str | None = None
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "restore": self.id,
            "snapshot": self.snapshot,
            "providers": self.providers,
            "result": "restored" if self.restored else "rolled_back",
            "cause": self.cause,
            "problems": self.problems,
        }


def _cause(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError):
        return "interrupted before the restore was committed"
    if isinstance(exc, UserError):
        return exc.message
    return f"internal error: {exc.__class__.__name__}: {exc}"


class _Run:
    """One drive of the machine over the providers, journaling as it goes."""

    def __init__(
        self,
        store: SnapshotStore,
        entry_id: int,
        machine: Restore,
        documents: dict[str, Document],
        records: dict[str, Document],
        providers: dict[str, StateProvider],
        ctx: Context,
    ) -> None:
        self.store, self.id, self.machine = store, entry_id, machine
        self.documents, self.records = documents, records
        self.providers, self.ctx = providers, ctx
        self.problems: list[str] = []

    def journal(
        self, cause: str | None = None, result: str | None = None, phase: Phase | None = None
    ) -> None:
        m = self.machine
        self.store.record_restore(self.id, phase or m.phase, m.steps, self.records, cause, result)

    async def drive(self, actions: list[Action]) -> Done:
        queue = list(actions)
        interrupted: BaseException | None = None
        while queue:
            action = queue.pop(0)
            more: list[Action] = []
            if isinstance(action, Prepare | Commit):
                name = action.provider
                try:
                    more = await self._step(action)
                except BaseException as exc:
                    if not isinstance(exc, Exception):
                        interrupted = exc  # finish the rollback first, then re-raise
                    more = self.machine.failed(name, f"{name}: {_cause(exc)}")
                    self.journal(self.machine.cause)
            elif isinstance(action, Decide):
                self.journal()  # phase is committing: from here on, roll forward
            elif isinstance(action, Abort):
                await self._quietly(action.provider, "roll back", self._abort(action))
            elif isinstance(action, Finish):
                await self._quietly(action.provider, "clean up", self._finish(action.provider))
            elif isinstance(action, Done):
                if self.problems and not action.restored:
                    # keep the row live (aborting): the next command runs the undo again
                    self.journal(
                        action.cause,
                        "not yet rolled back: " + "; ".join(self.problems),
                        phase=Phase.ABORTING,
                    )
                else:
                    self.journal(action.cause, "restored" if action.restored else "rolled back")
                if interrupted is not None:
                    raise interrupted
                return action
            queue = more + queue
        raise RuntimeError("the restore machine stopped without an outcome")

    async def _step(self, action: Prepare | Commit) -> list[Action]:
        name = action.provider
        provider, doc = self.providers[name], self.documents[name]
        if isinstance(action, Prepare):
            self.records[name] = await provider.prepare(doc, self.ctx)
            more = self.machine.prepared(name)
        else:
            await provider.commit(doc, self.records[name], self.ctx)
            more = self.machine.committed(name)
        self.journal()
        return more

    async def _abort(self, action: Abort) -> None:
        name = action.provider
        record = self.records.get(name, {})
        await self.providers[name].abort(
            self.documents[name], record, self.ctx, committed=action.committed
        )

    async def _finish(self, name: str) -> None:
        await self.providers[name].finish(
            self.documents[name], self.records.get(name, {}), self.ctx
        )

    async def _quietly(self, name: str, what: str, work: Any) -> None:
        try:
            await work
        except Exception as exc:
            self.problems.append(f"{name}: could not {what}: {_cause(exc)}")


def _loaded(names: list[str]) -> dict[str, StateProvider]:
    return {p.name: p for p in registry.load_many(names)}


async def restore(
    store: SnapshotStore, snap: SnapshotRecord, say: Callable[[str, str], None] | None = None
) -> RestoreReport:
    """Restore ``snap`` across its providers, all or nothing."""
    names = list(snap.documents)
    missing = [n for n in names if n not in registry.available()]
    if missing:
        raise UserError(
            f"snapshot {snap.name!r} holds state of provider {missing[0]!r}, which is not "
            "installed here; nothing was changed",
            hint="install the package that provides it",
        )
    providers = _loaded(names)
    for name in names:
        try:
            providers[name].check(snap.documents[name])
        except UserError as err:
            raise SnapshotCorrupt(
                f"snapshot {snap.name!r} is damaged: {name}: {err.message}; nothing was changed",
                hint="delete it (`bolt snapshot delete`) and take a new one",
            ) from None
    ctx = Context(store.root, snap.dir, say=say)
    entry = store.begin_restore(snap.name, names, snap.documents)
    machine = Restore(tuple(names))
    run = _Run(store, entry, machine, dict(snap.documents), {}, providers, ctx)
    done = await run.drive(machine.begin())
    report = RestoreReport(entry, snap.name, names, done.restored, False, done.cause, run.problems)
    _raise_unless_restored(report)
    return report


def _raise_unless_restored(report: RestoreReport) -> None:
    if report.restored:
        return
    if report.problems:
        raise RestoreIncomplete(
            f"restoring snapshot {report.snapshot!r} failed ({report.cause}) and could not be "
            "rolled back fully: " + "; ".join(report.problems),
            hint="the next bolt snapshot command retries the rollback",
        )
    raise RestoreRolledBack(
        f"restoring snapshot {report.snapshot!r} failed and was rolled back: {report.cause}"
    )


async def repair(store: SnapshotStore, say: Callable[[str], None]) -> list[RestoreReport]:
    """Finish what dead processes left: captures are discarded, restores driven to their
    end from the journal.  Problems are told through ``say``; they never raise."""
    if not store.pending_repair():
        return []
    for row in store.claim_dead_creations():
        with contextlib.suppress(UserError):
            snap = store.parse(row)
            discard_files(store, snap)
        shutil.rmtree(row["dir"], ignore_errors=True)
        store.delete_row(row["name"])
        say(f"bolt: removed snapshot {row['name']!r}, whose creation was interrupted")
    reports = []
    for entry in store.claim_orphan_restores():
        reports.append(await _resume(store, entry, say))
    return reports


async def _resume(
    store: SnapshotStore, entry: RestoreRecord, say: Callable[[str], None]
) -> RestoreReport:
    names = list(entry.providers)
    report = RestoreReport(entry.id, entry.snapshot, names, repaired=True)
    try:
        providers = _loaded(names)
    except UserError as err:
        say(f"bolt: cannot finish the interrupted restore of {entry.snapshot!r}: {err.message}")
        report.problems.append(err.message)
        return report
    snap = store.find(entry.snapshot)
    files = snap.dir if snap is not None else store.files / "missing"
    ctx = Context(store.root, files)
    machine, actions = Restore.resume(names, entry.phase, entry.steps, entry.cause)
    forward = entry.phase is Phase.COMMITTING
    run = _Run(store, entry.id, machine, dict(entry.documents), dict(entry.records), providers, ctx)
    done = await run.drive(actions)
    report.restored, report.cause, report.problems = done.restored, done.cause, run.problems
    if done.restored:
        say(
            f"bolt: finished the interrupted restore of snapshot {entry.snapshot!r} "
            "(its process died after the commit decision: rolled forward)"
        )
    elif run.problems:
        say(
            f"bolt: the interrupted restore of {entry.snapshot!r} is still not rolled back: "
            + "; ".join(run.problems)
        )
    else:
        how = "its commit failed on the retry" if forward else "it died before its commit"
        say(f"bolt: rolled back the interrupted restore of snapshot {entry.snapshot!r} ({how})")
    return report


def discard_files(store: SnapshotStore, snap: SnapshotRecord) -> list[str]:
    """Let every provider release what the snapshot holds; returns the problems."""
    problems = []
    ctx = Context(store.root, snap.dir)
    for name in registry.available():
        try:
            registry.load(name).discard(snap.documents.get(name), ctx)
        except (UserError, OSError) as exc:
            problems.append(f"{name}: {exc}")
    return problems
