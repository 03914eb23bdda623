"""Bolt's container state: one SQLite database (WAL) at ``$BOLT_ROOT/state.db``.

The database records intent and what the monitor observed (pids, exit codes).  It is
never the only witness: ``bolt.engine.containers.reconcile`` compares each row with the
processes and the runtime's own state, so a process killed at any point leaves rows the
next command repairs.  Writes are single statements, so a kill never leaves half a row.
"""

# No ``from __future__ import annotations`` here: typing.NamedTuple compiles every string
# annotation when the class is made, which ``bolt run`` would pay at each start.

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from bolt.errors import InvalidInput, NotFound

# Each entry moves the schema one version up (PRAGMA user_version); never edit one that
# has shipped, append another.
MIGRATIONS = (
    """
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    image TEXT NOT NULL,
    image_id TEXT NOT NULL DEFAULT '',
    runtime TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    exit_code INTEGER,
    pid INTEGER,
    pid_start INTEGER,
    monitor_pid INTEGER,
    monitor_start INTEGER,
    auto_remove INTEGER NOT NULL DEFAULT 0,
    command TEXT NOT NULL DEFAULT '[]',
    labels TEXT NOT NULL DEFAULT '{}',
    details TEXT NOT NULL DEFAULT '{}'
);
""",
    """
ALTER TABLE containers ADD COLUMN intent TEXT NOT NULL DEFAULT '{}';
ALTER TABLE containers ADD COLUMN spec_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE containers ADD COLUMN restart_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE containers ADD COLUMN health TEXT;
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    container TEXT NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    attributes TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE networks (
    name TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    subnet TEXT NOT NULL,
    gateway TEXT NOT NULL,
    bridge TEXT NOT NULL,
    internal INTEGER NOT NULL DEFAULT 0,
    labels TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL
);
""",
)
SCHEMA_VERSION = len(MIGRATIONS)

# Statuses: creating (bundle being prepared), created, running, paused, restarting
# (the monitor waits out a back-off), exited, failed, removing.
LIVE = ("created", "running", "paused", "restarting")


class ContainerRow(NamedTuple):
    id: str
    name: str
    image: str
    image_id: str
    runtime: str
    status: str
    created: float
    started: float | None = None
    finished: float | None = None
    exit_code: int | None = None
    pid: int | None = None
    pid_start: int | None = None
    monitor_pid: int | None = None
    monitor_start: int | None = None
    auto_remove: int = 0
    command: str = "[]"
    labels: str = "{}"
    details: str = "{}"
    intent: str = "{}"
    spec_hash: str = ""
    restart_count: int = 0
    health: str | None = None

    @property
    def command_list(self) -> list[str]:
        return list(json.loads(self.command))

    @property
    def labels_dict(self) -> dict[str, str]:
        return dict(json.loads(self.labels))

    @property
    def details_dict(self) -> dict[str, Any]:
        return dict(json.loads(self.details))

    def describe(self) -> dict[str, Any]:
        """What ``bolt ps --json``, ``inspect`` and the library show of a container."""
        details = self.details_dict
        live = self.status in LIVE
        return {
            "id": self.id,
            "name": self.name,
            "image": self.image,
            "image_id": self.image_id,
            "command": self.command_list,
            "status": self.status,
            "exit_code": self.exit_code,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "pid": self.pid if live else None,
            "runtime": self.runtime,
            "monitor_pid": self.monitor_pid if live or self.status == "creating" else None,
            "supervised": not details.get("unsupervised", False),
            "labels": self.labels_dict,
            "error": details.get("error"),
            "restart_count": self.restart_count,
            "health": self.health,
            "spec_hash": self.spec_hash,
            "networks": details.get("networks", {}),
            "ports": details.get("ports", []),
        }


_COLUMNS = list(ContainerRow._fields)


class StateDB:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(
            str(root / "state.db"), timeout=30, isolation_level=None, check_same_thread=False
        )
        self.conn.execute("PRAGMA synchronous=NORMAL")
        if self.conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            self._migrate()

    def _migrate(self) -> None:
        """Bring the schema to ``SCHEMA_VERSION``, one step per transaction (a concurrent
        opener waits on the write lock and then finds the work done)."""
        self.conn.execute("PRAGMA journal_mode=WAL")
        while True:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                version = self.conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise InvalidInput(
                        f"{self.root / 'state.db'} has schema version {version}, newer than "
                        f"this Bolt's {SCHEMA_VERSION}",
                        hint="upgrade Bolt",
                    )
                if version == SCHEMA_VERSION:
                    self.conn.execute("COMMIT")
                    return
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version={version + 1}")
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        self.conn.close()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """The statements inside as one transaction: one commit, seen all at once."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def insert(self, row: ContainerRow) -> None:
        values = [getattr(row, c) for c in _COLUMNS]
        try:
            self.conn.execute(
                f"INSERT INTO containers ({','.join(_COLUMNS)}) VALUES ({','.join('?' * len(_COLUMNS))})",
                values,
            )
        except sqlite3.IntegrityError as exc:
            raise InvalidInput(
                f"container name {row.name!r} is already in use",
                hint=f"remove it with 'bolt rm {row.name}' or pick another --name",
            ) from exc

    def update(self, cid: str, **changes: Any) -> None:
        unknown = set(changes) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"unknown columns {unknown}")
        sets = ",".join(f"{k}=?" for k in changes)
        self.conn.execute(f"UPDATE containers SET {sets} WHERE id=?", [*changes.values(), cid])

    def transition(self, cid: str, from_status: tuple[str, ...], **changes: Any) -> bool:
        """Compare-and-set: apply ``changes`` only while the row's status is one of
        ``from_status``; False if another caller changed it first."""
        unknown = set(changes) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"unknown columns {unknown}")
        sets = ",".join(f"{k}=?" for k in changes)
        marks = ",".join("?" * len(from_status))
        cur = self.conn.execute(
            f"UPDATE containers SET {sets} WHERE id=? AND status IN ({marks})",
            [*changes.values(), cid, *from_status],
        )
        return cur.rowcount == 1

    def add_event(self, cid: str, name: str, kind: str, **attributes: Any) -> None:
        self.conn.execute(
            "INSERT INTO events (time, container, name, type, attributes) VALUES (?,?,?,?,?)",
            (time.time(), cid, name, kind, json.dumps(attributes)),
        )

    def add_events(self, events: list[tuple[str, str, str, dict[str, Any]]]) -> None:
        """Several (container, name, type, attributes) events in one write."""
        stamp = time.time()
        values: list[Any] = []
        for cid, name, kind, attrs in events:
            values += [stamp, cid, name, kind, json.dumps(attrs)]
        marks = ",".join(["(?,?,?,?,?)"] * len(events))
        self.conn.execute(
            f"INSERT INTO events (time, container, name, type, attributes) VALUES {marks}", values
        )

    def events_after(self, seq: int, limit: int = 1000) -> list[tuple[Any, ...]]:
        """(seq, time, container, name, type, attributes) rows after ``seq``."""
        return self.conn.execute(
            "SELECT seq, time, container, name, type, attributes FROM events"
            " WHERE seq > ? ORDER BY seq LIMIT ?",
            (seq, limit),
        ).fetchall()

    def first_event_since(self, since: float) -> int:
        """The seq just before the first event at or after time ``since``."""
        row = self.conn.execute("SELECT MIN(seq) FROM events WHERE time >= ?", (since,)).fetchone()
        if row[0] is None:
            return self.last_event()
        return int(row[0]) - 1

    def last_event(self) -> int:
        return int(self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])

    def with_labels(self, labels: dict[str, str]) -> list[ContainerRow]:
        """Rows carrying every ``key=value`` of ``labels``."""
        where = " AND ".join("json_extract(labels, ?) IS ?" for _ in labels)
        args: list[Any] = []
        for key, value in labels.items():
            args += ['$."' + key.replace('"', '""') + '"', value]
        return self._rows(f"WHERE {where}" if where else "", tuple(args))

    def delete(self, cid: str) -> None:
        self.conn.execute("DELETE FROM containers WHERE id=?", (cid,))

    def _rows(self, where: str = "", args: tuple[Any, ...] = ()) -> list[ContainerRow]:
        cur = self.conn.execute(
            f"SELECT {','.join(_COLUMNS)} FROM containers {where} ORDER BY created", args
        )
        return [ContainerRow(*r) for r in cur.fetchall()]

    def all(self) -> list[ContainerRow]:
        return self._rows()

    def find(self, ref: str) -> ContainerRow | None:
        """By exact name, exact id, or a unique id prefix."""
        rows = self._rows("WHERE name=? OR id=?", (ref, ref))
        if rows:
            return rows[0]
        if len(ref) >= 3 and all(c in "0123456789abcdef" for c in ref):
            rows = self._rows("WHERE id LIKE ?", (ref + "%",))
            if len(rows) == 1:
                return rows[0]
        return None

    def get(self, ref: str) -> ContainerRow:
        row = self.find(ref)
        if row is None:
            raise NotFound(f"no such container: {ref}", hint="list containers with 'bolt ps -a'")
        return row

    def refresh(self, row: ContainerRow) -> ContainerRow | None:
        rows = self._rows("WHERE id=?", (row.id,))
        return rows[0] if rows else None


def now() -> float:
    return time.time()
