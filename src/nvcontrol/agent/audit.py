"""The append-only audit log of every mutating call: who (key fingerprint and role), when,
what (method and arguments), the GPU values before and after, and the result.

Rows are only ever inserted; triggers in the schema refuse UPDATE and DELETE.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Entry:
    key: str
    role: str
    origin: str  # "quic" | "https" | "local"
    action: str
    params: dict[str, Any]
    before: dict[str, Any]
    after: dict[str, Any]
    result: str  # "ok" | "error" | "rolled_back" | "denied"
    exit_code: int
    message: str | None = None


def append(conn: sqlite3.Connection, e: Entry) -> int:
    cur = conn.execute(
        "INSERT INTO audit (time, key, role, origin, action, params, before, after, result, "
        "exit_code, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            time.time(),
            e.key,
            e.role,
            e.origin,
            e.action,
            json.dumps(e.params, default=str),
            json.dumps(e.before, default=str),
            json.dumps(e.after, default=str),
            e.result,
            e.exit_code,
            e.message,
        ),
    )
    return int(cur.lastrowid or 0)


def read(conn: sqlite3.Connection, limit: int = 100) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    return [
        {
            "id": r["id"],
            "time": r["time"],
            "key": r["key"],
            "role": r["role"],
            "origin": r["origin"],
            "action": r["action"],
            "params": json.loads(r["params"]),
            "before": json.loads(r["before"]),
            "after": json.loads(r["after"]),
            "result": r["result"],
            "exit_code": r["exit_code"],
            "message": r["message"],
        }
        for r in rows
    ]


def changed(
    before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the fields that differ, per GPU UUID: (before, after)."""
    b_out: dict[str, Any] = {}
    a_out: dict[str, Any] = {}
    for uuid in sorted(set(before) | set(after)):
        b, a = before.get(uuid, {}), after.get(uuid, {})
        fields = [f for f in sorted(set(b) | set(a)) if b.get(f) != a.get(f)]
        if fields:
            b_out[uuid] = {f: b.get(f) for f in fields}
            a_out[uuid] = {f: a.get(f) for f in fields}
    return b_out, a_out
