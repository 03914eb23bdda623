"""The write-ahead journal and recorded GPU state, in SQLite (rollback journal, synchronous=FULL).

Owns three tables:

* ``transactions`` — one row per change: the pre-transaction configuration, the owner
  (pid + its start time, so that a reused pid is not mistaken for the owner), the phase,
  the confirm deadline and flag.  The row is written *before* the GPU is touched.
* ``locked_clocks`` — what ``clocks lock`` set, per GPU UUID and boot (NVML has no getter;
  a record from an earlier boot is void, as the driver forgets locks at reboot).
* ``fan_controllers`` — running ``fan curve run`` processes and the GPUs they drive.
* ``probe_loads`` — simulated load that an ``overclock test``/``auto`` process put on
  nvsim GPUs, so that the load of a killed probe is taken off by the next command.

It knows nothing of NVML: values in, values out.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from basis import process
from basis.errors import PermissionDenied, UserError
from basis.sqlite import immediate
from nvcontrol.control import paths

OPEN = "open"  # being applied, watched, or waiting for confirmation
COMMITTED = "committed"
ROLLED_BACK = "rolled_back"
ROLLBACK_PENDING = "rollback_pending"  # the restore could not finish (e.g. GPU lost)
LIVE = (OPEN, ROLLBACK_PENDING)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS transactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    description TEXT NOT NULL,
    gpus TEXT NOT NULL,
    before TEXT NOT NULL,
    owner_pid INTEGER NOT NULL,
    owner_start INTEGER NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    confirm_deadline REAL,
    confirmed INTEGER NOT NULL DEFAULT 0,
    result TEXT
);
CREATE TABLE IF NOT EXISTS locked_clocks (
    uuid TEXT NOT NULL,
    domain TEXT NOT NULL,
    min_mhz INTEGER NOT NULL,
    max_mhz INTEGER NOT NULL,
    boot_id TEXT NOT NULL,
    PRIMARY KEY (uuid, domain)
);
CREATE TABLE IF NOT EXISTS probe_loads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pid INTEGER NOT NULL,
    pid_start INTEGER NOT NULL,
    gpus TEXT NOT NULL,
    nvsim_state TEXT NOT NULL,
    started REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS fan_controllers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pid INTEGER NOT NULL,
    pid_start INTEGER NOT NULL,
    gpus TEXT NOT NULL,
    started REAL NOT NULL
);
"""


def _migrate(db: sqlite3.Connection) -> None:
    """Columns added after the first release (CREATE TABLE IF NOT EXISTS keeps old ones)."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(locked_clocks)")}
    if "driver" not in columns:
        db.execute("ALTER TABLE locked_clocks ADD COLUMN driver TEXT")


# --------------------------------------------------------------------------- processes


def process_start(pid: int) -> int | None:
    """The start time of a live process (None if it is gone or a zombie)."""
    return process.start_time(pid) if process.alive(pid, None) else None


alive = process.alive
me = process.me


def exists(path: Path) -> bool:
    """Whether ``path`` exists; a directory this user may not enter counts as "no"."""
    try:
        return path.exists()
    except OSError:
        return False


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class TxRecord:
    id: int
    kind: str
    description: str
    gpus: list[str]
    before: dict[str, Any]
    owner_pid: int
    owner_start: int
    state: str
    created: float
    confirm_deadline: float | None
    confirmed: bool
    result: str | None

    @property
    def owner_alive(self) -> bool:
        return alive(self.owner_pid, self.owner_start)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "description": self.description,
            "gpus": self.gpus,
            "owner_pid": self.owner_pid,
            "owner_alive": self.owner_alive,
            "state": self.state,
            "created": self.created,
            "confirm_deadline": self.confirm_deadline,
            "confirmed": self.confirmed,
            "result": self.result,
        }


def _tx(row: sqlite3.Row) -> TxRecord:
    return TxRecord(
        id=row["id"],
        kind=row["kind"],
        description=row["description"],
        gpus=json.loads(row["gpus"]),
        before=json.loads(row["before"]),
        owner_pid=row["owner_pid"],
        owner_start=row["owner_start"],
        state=row["state"],
        created=row["created"],
        confirm_deadline=row["confirm_deadline"],
        confirmed=bool(row["confirmed"]),
        result=row["result"],
    )


def _problem(path: Path, err: BaseException) -> UserError:
    """The user error for a journal that cannot be opened, read or written."""
    text = str(err)
    if isinstance(err, PermissionError) or "readonly" in text or "unable to open" in text:
        return PermissionDenied(
            f"this user may not use the journal {path} ({text}); nothing was changed",
            hint="GPU changes and their history need root: run nvctl with sudo",
        )
    if isinstance(err, sqlite3.DatabaseError) and not isinstance(err, sqlite3.OperationalError):
        return JournalUnreadable(
            f"the journal {path} is corrupt ({text}); nothing was changed",
            hint=f"move it aside (`mv {path} {path}.corrupt`): nvctl then starts a new one, "
            "without the old history or recorded locked clocks",
        )
    return JournalUnreadable(f"the journal {path} cannot be used: {text}")


class JournalUnreadable(UserError):
    """The journal exists but cannot be read (corrupt, or not this user's to open)."""


class Journal:
    """One connection to the journal database (created on first use).

    Opened read-only with ``readonly=True`` (status, ``transactions``): then a user who
    may not write it can still read it, and nothing is created.  Every problem with the
    file is a user error naming it: a permission problem exits 4, a corrupt file 1."""

    def __init__(self, path: Path | None = None, *, readonly: bool = False) -> None:
        self.path = path or paths.journal_path()
        self.readonly = readonly
        try:
            if readonly:
                self.db = sqlite3.connect(
                    f"{self.path.resolve().as_uri()}?mode=ro",
                    uri=True,
                    timeout=10.0,
                    isolation_level=None,
                )
                self.db.row_factory = sqlite3.Row
                self.db.execute("SELECT count(*) FROM transactions").fetchone()
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            # Not WAL: a WAL database cannot be read by a user who may not create its -shm
            # file beside it, and every user may read the journal (docs/decisions.md).
            self.db.execute("PRAGMA journal_mode=TRUNCATE")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(_SCHEMA)
            _migrate(self.db)
        except (sqlite3.Error, OSError) as err:
            raise _problem(self.path, err) from None

    @classmethod
    def if_exists(cls) -> Journal | None:
        """The journal for reading, if there is one; :class:`JournalUnreadable` (or
        PermissionDenied) when it exists but cannot be read — never "no journal"."""
        path = paths.journal_path()
        if not exists(path):
            return None
        return cls(path, readonly=os.geteuid() != 0 or not os.access(path, os.W_OK))

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE transaction: one writer at a time, committed durably on exit."""
        with immediate(self.db, lambda err: _problem(self.path, err)) as db:
            yield db

    # ------------------------------------------------------------ transactions

    def begin(
        self,
        kind: str,
        description: str,
        gpus: list[str],
        before: dict[str, Any],
        confirm_deadline: float | None = None,
    ) -> int:
        """Record a transaction durably before anything is changed; returns its id.
        Raises ``LookupError`` with the conflicting record if a live one holds a GPU."""
        pid, start = me()
        with self.write() as db:
            for other in self._live(db):
                if set(other.gpus) & set(gpus) and other.owner_alive:
                    raise LookupError(other)
            cur = db.execute(
                "INSERT INTO transactions (kind, description, gpus, before, owner_pid,"
                " owner_start, state, created, confirm_deadline) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    kind,
                    description,
                    json.dumps(gpus),
                    json.dumps(before),
                    pid,
                    start,
                    OPEN,
                    time.time(),
                    confirm_deadline,
                ),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

    def set_before(self, tx_id: int, before: dict[str, Any]) -> None:
        with self.write() as db:
            db.execute("UPDATE transactions SET before=? WHERE id=?", (json.dumps(before), tx_id))

    def set_deadline(self, tx_id: int, deadline: float | None) -> None:
        with self.write() as db:
            db.execute("UPDATE transactions SET confirm_deadline=? WHERE id=?", (deadline, tx_id))

    def finish(self, tx_id: int, state: str, result: str | None = None) -> None:
        with self.write() as db:
            db.execute(
                "UPDATE transactions SET state=?, result=? WHERE id=?", (state, result, tx_id)
            )

    def confirm(self, tx_id: int) -> None:
        with self.write() as db:
            db.execute("UPDATE transactions SET confirmed=1 WHERE id=?", (tx_id,))

    def is_confirmed(self, tx_id: int) -> bool:
        row = self.db.execute("SELECT confirmed FROM transactions WHERE id=?", (tx_id,)).fetchone()
        return bool(row and row["confirmed"])

    def get(self, tx_id: int) -> TxRecord | None:
        row = self.db.execute("SELECT * FROM transactions WHERE id=?", (tx_id,)).fetchone()
        return _tx(row) if row else None

    def live(self) -> list[TxRecord]:
        return self._live(self.db)

    def recent(self, limit: int = 20) -> list[TxRecord]:
        rows = self.db.execute("SELECT * FROM transactions ORDER BY id DESC LIMIT ?", (limit,))
        return [_tx(r) for r in rows]

    def claim_orphans(self) -> list[TxRecord]:
        """Take over live transactions whose owner died (this process becomes the owner,
        so two repairing processes never restore the same transaction twice)."""
        pid, start = me()
        with self.write() as db:
            orphans = [t for t in self._live(db) if not t.owner_alive]
            for t in orphans:
                db.execute(
                    "UPDATE transactions SET owner_pid=?, owner_start=? WHERE id=?",
                    (pid, start, t.id),
                )
        return orphans

    @staticmethod
    def _live(db: sqlite3.Connection) -> list[TxRecord]:
        rows = db.execute(
            f"SELECT * FROM transactions WHERE state IN ({','.join('?' * len(LIVE))}) ORDER BY id",
            LIVE,
        )
        return [_tx(r) for r in rows]

    # ------------------------------------------------------------ locked clocks

    def locked_clocks(self, uuid: str, driver: str | None = None) -> dict[str, tuple[int, int]]:
        """The locks recorded for ``uuid`` in this boot (and, given ``driver``, by this load
        of the driver: a reload forgets locks as a reboot does)."""
        return {
            domain: span
            for domain, span, by in self.lock_records(uuid)
            if driver is None or by is None or by == driver
        }

    def lock_records(self, uuid: str) -> list[tuple[str, tuple[int, int], str | None]]:
        """(domain, span, driver instance) of this boot's lock records for ``uuid``."""
        rows = self.db.execute(
            "SELECT domain, min_mhz, max_mhz, driver FROM locked_clocks"
            " WHERE uuid=? AND boot_id=? ORDER BY domain",
            (uuid, boot_id()),
        )
        return [(r["domain"], (r["min_mhz"], r["max_mhz"]), r["driver"]) for r in rows]

    def record_lock(
        self, uuid: str, domain: str, span: tuple[int, int] | None, driver: str | None = None
    ) -> None:
        with self.write() as db:
            db.execute("DELETE FROM locked_clocks WHERE uuid=? AND domain=?", (uuid, domain))
            if span is not None:
                db.execute(
                    "INSERT INTO locked_clocks (uuid, domain, min_mhz, max_mhz, boot_id, driver)"
                    " VALUES (?,?,?,?,?,?)",
                    (uuid, domain, span[0], span[1], boot_id(), driver),
                )

    # ------------------------------------------------------------ probe loads

    def register_load(self, gpus: list[str], nvsim_state: str) -> int:
        pid, start = me()
        with self.write() as db:
            cur = db.execute(
                "INSERT INTO probe_loads (pid, pid_start, gpus, nvsim_state, started)"
                " VALUES (?,?,?,?,?)",
                (pid, start, json.dumps(gpus), nvsim_state, time.time()),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

    def remove_load(self, load_id: int) -> None:
        with self.write() as db:
            db.execute("DELETE FROM probe_loads WHERE id=?", (load_id,))

    def dead_loads_pending(self) -> bool:
        rows = self.db.execute("SELECT pid, pid_start FROM probe_loads").fetchall()
        return any(not alive(r["pid"], r["pid_start"]) for r in rows)

    def claim_dead_loads(self) -> list[dict[str, Any]]:
        """Take over the loads of probes that died; the caller takes the load off and
        removes each with :meth:`remove_load`."""
        pid, start = me()
        with self.write() as db:
            dead = [
                {
                    "id": r["id"],
                    "pid": r["pid"],
                    "gpus": json.loads(r["gpus"]),
                    "nvsim_state": r["nvsim_state"],
                }
                for r in db.execute("SELECT * FROM probe_loads").fetchall()
                if not alive(r["pid"], r["pid_start"])
            ]
            for d in dead:
                db.execute(
                    "UPDATE probe_loads SET pid=?, pid_start=? WHERE id=?", (pid, start, d["id"])
                )
        return dead

    # ------------------------------------------------------------ fan controllers

    def register_fan_controller(self, gpus: list[str]) -> int:
        pid, start = me()
        with self.write() as db:
            cur = db.execute(
                "INSERT INTO fan_controllers (pid, pid_start, gpus, started) VALUES (?,?,?,?)",
                (pid, start, json.dumps(gpus), time.time()),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

    def remove_fan_controller(self, controller_id: int) -> None:
        with self.write() as db:
            db.execute("DELETE FROM fan_controllers WHERE id=?", (controller_id,))

    def fan_controllers(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM fan_controllers ORDER BY id")
        return [
            {
                "id": r["id"],
                "pid": r["pid"],
                "gpus": json.loads(r["gpus"]),
                "started": r["started"],
                "alive": alive(r["pid"], r["pid_start"]),
            }
            for r in rows
        ]

    def claim_dead_fan_controllers(self) -> list[dict[str, Any]]:
        """Take over registrations of controllers that died; the caller gives their fans
        back to automatic control and then removes each with :meth:`remove_fan_controller`."""
        pid, start = me()
        with self.write() as db:
            dead = [
                {"id": r["id"], "pid": r["pid"], "gpus": json.loads(r["gpus"])}
                for r in db.execute("SELECT * FROM fan_controllers").fetchall()
                if not alive(r["pid"], r["pid_start"])
            ]
            for d in dead:
                db.execute(
                    "UPDATE fan_controllers SET pid=?, pid_start=? WHERE id=?",
                    (pid, start, d["id"]),
                )
        return dead
