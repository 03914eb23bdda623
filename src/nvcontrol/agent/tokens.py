"""Dashboard login tokens, each tied to a role (``nvctl agent token create|revoke|list``).

Only a SHA-256 digest of a token is stored; the token itself is shown once, at creation.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from typing import Any

from basis.errors import InvalidInput, NotFound
from nvcontrol.agent.keys import check_role


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(conn: sqlite3.Connection, name: str, role: str) -> str:
    check_role(role)
    if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").isalnum():
        raise InvalidInput(f"token name {name!r}: use 1-64 letters, digits, '-' or '_'")
    token = "nvt_" + secrets.token_urlsafe(32)
    try:
        conn.execute(
            "INSERT INTO tokens (name, digest, role, added) VALUES (?, ?, ?, ?)",
            (name, _digest(token), role, time.time()),
        )
    except sqlite3.IntegrityError:
        raise InvalidInput(
            f"a token named {name!r} exists", hint="revoke it first or pick another name"
        ) from None
    return token


def revoke(conn: sqlite3.Connection, name: str) -> None:
    cur = conn.execute("UPDATE tokens SET revoked = ? WHERE name = ? AND revoked IS NULL",
                       (time.time(), name))  # fmt: skip
    if cur.rowcount == 0:
        raise NotFound(f"no active token named {name!r}")


def lookup(conn: sqlite3.Connection, token: str) -> tuple[str, str] | None:
    """(name, role) of an active token, or None."""
    if not token or len(token) > 200:
        return None
    r = conn.execute(
        "SELECT name, role FROM tokens WHERE digest = ? AND revoked IS NULL", (_digest(token),)
    ).fetchone()
    return (str(r["name"]), str(r["role"])) if r else None


def all_tokens(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [
        {"name": r["name"], "role": r["role"], "added": r["added"], "active": r["revoked"] is None}
        for r in conn.execute("SELECT * FROM tokens ORDER BY added")
    ]
