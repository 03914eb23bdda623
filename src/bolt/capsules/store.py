"""Capsule snapshot metadata and the restore journal: ``$BOLT_ROOT/snapshots.db`` (SQLite, WAL).

Two tables:

* ``snapshots`` — one row per snapshot: its name, the directory holding its files
  (``$BOLT_ROOT/snapshots/<id>/``), its state (``creating`` until every provider has
  captured, then ``ready``), the creating process (pid + start time, so that a dead creator's
  leftovers are recognised) and each provider's document.
* ``restores`` — the journal of :mod:`bolt.capsules.executor`: a row is written before any
  provider is touched and updated before each step acts; it holds copies of the documents
  and of what each provider kept at ``prepare``, so the repair never needs the snapshot row.

Everything read back is validated (:func:`parse_documents`, :func:`_restore`): a damaged
row raises :class:`SnapshotCorrupt` naming the snapshot and the field, never a KeyError.
This module knows nothing of providers: values in, values out.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from basis import process
from basis.sqlite import immediate
from bolt.capsules.twophase import Phase, Step
from bolt.errors import InvalidInput, NotFound, UserError

DB_NAME = "snapshots.db"
CREATING, READY = "creating", "ready"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    name TEXT PRIMARY KEY,
    dir TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    state TEXT NOT NULL,
    owner_pid INTEGER NOT NULL,
    owner_start INTEGER NOT NULL,
    trigger TEXT NOT NULL DEFAULT 'manual',
    project TEXT,
    details TEXT NOT NULL DEFAULT '{}',
    documents TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS restores (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    snapshot TEXT NOT NULL,
    providers TEXT NOT NULL,
    phase TEXT NOT NULL,
    steps TEXT NOT NULL,
    documents TEXT NOT NULL,
    records TEXT NOT NULL DEFAULT '{}',
    owner_pid INTEGER NOT NULL,
    owner_start INTEGER NOT NULL,
    created REAL NOT NULL,
    cause TEXT,
    result TEXT
);
"""


class SnapshotCorrupt(UserError):
    """Snapshot metadata read back from the database is not what Bolt wrote."""


def check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"invalid snapshot name {name!r}",
            hint="use letters, digits, '.', '_' and '-' (up to 64, not starting with '.' or '-')",
        )
    return name


@dataclass(frozen=True)
class SnapshotRecord:
    name: str
    dir: Path
    created: float
    state: str
    owner_pid: int
    owner_start: int
    trigger: str
    project: str | None
    details: dict[str, Any]
    documents: dict[str, dict[str, Any]]

    @property
    def owner_alive(self) -> bool:
        return process.alive(self.owner_pid, self.owner_start)


@dataclass(frozen=True)
class RestoreRecord:
    id: int
    snapshot: str
    providers: tuple[str, ...]
    phase: Phase
    steps: dict[str, Step]
    documents: dict[str, dict[str, Any]]
    records: dict[str, dict[str, Any]]
    owner_pid: int
    owner_start: int
    cause: str | None
    result: str | None

    @property
    def owner_alive(self) -> bool:
        return process.alive(self.owner_pid, self.owner_start)


# --------------------------------------------------------------------------- validation


def _json(text: object, where: str) -> Any:
    if not isinstance(text, str):
        raise SnapshotCorrupt(f"{where} is not text in the snapshot database")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise SnapshotCorrupt(f"{where} is not valid JSON ({err.msg} at {err.pos})") from None


def parse_documents(text: object, where: str) -> dict[str, dict[str, Any]]:
    """``{provider name: document}``, each document a JSON object."""
    docs = _json(text, where)
    if not isinstance(docs, dict):
        raise SnapshotCorrupt(f"{where} must be a JSON object of provider documents")
    for provider, doc in docs.items():
        if not isinstance(doc, dict):
            raise SnapshotCorrupt(f"{where}.{provider} must be a JSON object, not {doc!r:.40}")
    return docs


def _typed(row: sqlite3.Row, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = row[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise SnapshotCorrupt(f"{where}.{key} has a damaged value {value!r:.40}")
    return value


def _snapshot(row: sqlite3.Row) -> SnapshotRecord:
    where = f"snapshot {row['name']!r}"
    check_name(row["name"])
    state = row["state"]
    if state not in (CREATING, READY):
        raise SnapshotCorrupt(f"{where}.state is {state!r}, not creating or ready")
    details = _json(row["details"], f"{where}.details")
    if not isinstance(details, dict):
        raise SnapshotCorrupt(f"{where}.details must be a JSON object")
    project = row["project"]
    if project is not None and not isinstance(project, str):
        raise SnapshotCorrupt(f"{where}.project has a damaged value {project!r:.40}")
    return SnapshotRecord(
        name=row["name"],
        dir=Path(_typed(row, "dir", str, where)),
        created=float(_typed(row, "created", (int, float), where)),
        state=state,
        owner_pid=_typed(row, "owner_pid", int, where),
        owner_start=_typed(row, "owner_start", int, where),
        trigger=_typed(row, "trigger", str, where),
        project=project,
        details=details,
        documents=parse_documents(row["documents"], f"{where}.documents"),
    )


def _restore(row: sqlite3.Row) -> RestoreRecord:
    where = f"restore journal entry {row['id']}"
    providers = _json(row["providers"], f"{where}.providers")
    steps = _json(row["steps"], f"{where}.steps")
    records = _json(row["records"], f"{where}.records")
    if not (isinstance(providers, list) and all(isinstance(p, str) for p in providers)):
        raise SnapshotCorrupt(f"{where}.providers must be a list of provider names")
    if not (isinstance(steps, dict) and set(steps) == set(providers)):
        raise SnapshotCorrupt(f"{where}.steps must name each provider once")
    if not isinstance(records, dict):
        raise SnapshotCorrupt(f"{where}.records must be a JSON object")
    try:
        phase = Phase(row["phase"])
        parsed_steps = {p: Step(s) for p, s in steps.items()}
    except ValueError as err:
        raise SnapshotCorrupt(f"{where}: {err}") from None
    return RestoreRecord(
        id=row["id"],
        snapshot=row["snapshot"],
        providers=tuple(providers),
        phase=phase,
        steps=parsed_steps,
        documents=parse_documents(row["documents"], f"{where}.documents"),
        records=records,
        owner_pid=row["owner_pid"],
        owner_start=row["owner_start"],
        cause=row["cause"],
        result=row["result"],
    )


# --------------------------------------------------------------------------- the store


class SnapshotStore:
    """One connection to ``$BOLT_ROOT/snapshots.db`` (created on first use)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(
            str(root / DB_NAME), timeout=30, isolation_level=None, check_same_thread=False
        )
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)

    @property
    def files(self) -> Path:
        return self.root / "snapshots"

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> SnapshotStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE transaction: one writer at a time, durable on exit."""
        with immediate(self.db) as db:
            yield db

    # ------------------------------------------------------------ snapshots

    def begin_snapshot(
        self, name: str, trigger: str, project: str | None, details: dict[str, Any]
    ) -> SnapshotRecord:
        """Record a snapshot being made (state ``creating``); its directory is created."""
        check_name(name)
        pid, start = process.me()
        directory = self.files / f"{name}-{int(time.time())}-{pid}"
        with self.write() as db:
            if db.execute("SELECT 1 FROM snapshots WHERE name=?", (name,)).fetchone():
                raise InvalidInput(
                    f"snapshot {name!r} already exists",
                    hint=f"delete it first (`bolt snapshot delete {name}`) or pick another name",
                )
            db.execute(
                "INSERT INTO snapshots (name, dir, created, state, owner_pid, owner_start,"
                " trigger, project, details) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    name,
                    str(directory),
                    time.time(),
                    CREATING,
                    pid,
                    start,
                    trigger,
                    project,
                    json.dumps(details),
                ),
            )
        directory.mkdir(parents=True, exist_ok=True)
        snap = self.find(name)
        assert snap is not None
        return snap

    def set_details(self, name: str, details: dict[str, Any]) -> None:
        with self.write() as db:
            db.execute("UPDATE snapshots SET details=? WHERE name=?", (json.dumps(details), name))

    def finish_snapshot(self, name: str, documents: dict[str, dict[str, Any]]) -> None:
        with self.write() as db:
            db.execute(
                "UPDATE snapshots SET state=?, documents=? WHERE name=?",
                (READY, json.dumps(documents), name),
            )

    def find(self, name: str) -> SnapshotRecord | None:
        row = self.db.execute("SELECT * FROM snapshots WHERE name=?", (name,)).fetchone()
        return _snapshot(row) if row else None

    def get(self, name: str) -> SnapshotRecord:
        check_name(name)
        snap = self.find(name)
        if snap is None or snap.state != READY:
            known = ", ".join(self.names()) or "none"
            raise NotFound(
                f"no snapshot named {name!r}", hint=f"snapshots: {known} (`bolt snapshot list`)"
            )
        return snap

    def names(self) -> list[str]:
        rows = self.db.execute(
            "SELECT name FROM snapshots WHERE state=? ORDER BY created", (READY,)
        )
        return [r["name"] for r in rows]

    def rows(self) -> list[sqlite3.Row]:
        """Every snapshot row, unparsed (``list`` reports damaged ones instead of failing)."""
        return list(self.db.execute("SELECT * FROM snapshots ORDER BY created, name"))

    @staticmethod
    def parse(row: sqlite3.Row) -> SnapshotRecord:
        return _snapshot(row)

    def delete_row(self, name: str) -> None:
        with self.write() as db:
            db.execute("DELETE FROM snapshots WHERE name=?", (name,))

    def claim_dead_creations(self) -> list[sqlite3.Row]:
        """Snapshots whose creator died before finishing; this process becomes their owner."""
        pid, start = process.me()
        with self.write() as db:
            dead = [
                r
                for r in db.execute("SELECT * FROM snapshots WHERE state=?", (CREATING,))
                if not process.alive(r["owner_pid"], r["owner_start"])
            ]
            for r in dead:
                db.execute(
                    "UPDATE snapshots SET owner_pid=?, owner_start=? WHERE name=?",
                    (pid, start, r["name"]),
                )
        return dead

    # ------------------------------------------------------------ restore journal

    def begin_restore(
        self, snapshot: str, providers: list[str], documents: dict[str, dict[str, Any]]
    ) -> int:
        """Journal a restore before anything is touched; refuses while another is live."""
        pid, start = process.me()
        with self.write() as db:
            for other in self._live(db):
                if other.owner_alive:
                    raise UserError(
                        f"restore {other.id} of snapshot {other.snapshot!r} by process "
                        f"{other.owner_pid} is still running; nothing was changed",
                        hint="wait for it to finish",
                    )
            cur = db.execute(
                "INSERT INTO restores (snapshot, providers, phase, steps, documents, owner_pid,"
                " owner_start, created) VALUES (?,?,?,?,?,?,?,?)",
                (
                    snapshot,
                    json.dumps(providers),
                    Phase.PREPARING.value,
                    json.dumps(dict.fromkeys(providers, Step.PENDING.value)),
                    json.dumps(documents),
                    pid,
                    start,
                    time.time(),
                ),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

    def record_restore(
        self,
        restore_id: int,
        phase: Phase,
        steps: dict[str, Step],
        records: dict[str, dict[str, Any]],
        cause: str | None = None,
        result: str | None = None,
    ) -> None:
        with self.write() as db:
            db.execute(
                "UPDATE restores SET phase=?, steps=?, records=?, cause=?, result=? WHERE id=?",
                (
                    phase.value,
                    json.dumps({p: s.value for p, s in steps.items()}),
                    json.dumps(records),
                    cause,
                    result,
                    restore_id,
                ),
            )

    def restore_entry(self, restore_id: int) -> RestoreRecord:
        row = self.db.execute("SELECT * FROM restores WHERE id=?", (restore_id,)).fetchone()
        if row is None:
            raise NotFound(f"no restore journal entry {restore_id}")
        return _restore(row)

    def live_restores(self) -> list[RestoreRecord]:
        return self._live(self.db)

    def restoring(self, snapshot: str) -> bool:
        return any(r.snapshot == snapshot for r in self.live_restores())

    def claim_orphan_restores(self) -> list[RestoreRecord]:
        pid, start = process.me()
        with self.write() as db:
            orphans = [r for r in self._live(db) if not r.owner_alive]
            for r in orphans:
                db.execute(
                    "UPDATE restores SET owner_pid=?, owner_start=? WHERE id=?",
                    (pid, start, r.id),
                )
        return orphans

    def pending_repair(self) -> bool:
        """Cheap: whether a dead process left a restore or a creation behind."""
        rows = self.db.execute(
            "SELECT owner_pid, owner_start FROM restores WHERE phase != ? UNION ALL "
            "SELECT owner_pid, owner_start FROM snapshots WHERE state = ?",
            (Phase.DONE.value, CREATING),
        )
        return any(not process.alive(r[0], r[1]) for r in rows)

    @staticmethod
    def _live(db: sqlite3.Connection) -> list[RestoreRecord]:
        rows = db.execute(
            "SELECT * FROM restores WHERE phase != ? ORDER BY id", (Phase.DONE.value,)
        )
        return [_restore(r) for r in rows]
