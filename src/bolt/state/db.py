"""Bolt's container state: one SQLite database (WAL) at ``$BOLT_ROOT/state.db``.

The database records intent and what the monitor observed (pids, exit codes).  It is
never the only witness: ``bolt.runtime.engine.reconcile`` compares each row with the
processes and the runtime's own state, so a process killed at any point leaves rows the
next command repairs.  Writes are single statements, so a kill never leaves half a row.
"""

# No ``from __future__ import annotations`` here: typing.NamedTuple compiles every string
# annotation when the class is made, which ``bolt run`` would pay at each start.

import json
import sqlite3
import time
from pathlib import Path
from typing import Any, NamedTuple

from bolt.errors import InvalidInput, NotFound

SCHEMA = """
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
"""

# Statuses: creating (bundle being prepared), created, running, exited, removing.
LIVE = ("created", "running")


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
        }


_COLUMNS = list(ContainerRow._fields)


class StateDB:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(
            str(root / "state.db"), timeout=30, isolation_level=None, check_same_thread=False
        )
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)

    def close(self) -> None:
        self.conn.close()

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
