"""Authorized client keys and their roles (``nvctl agent authorize|revoke|list``)."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from basis.errors import InvalidInput, NotFound
from bolt.network import identity
from nvcontrol.remote.api import ROLES


@dataclass(frozen=True)
class AuthorizedKey:
    fingerprint: str
    public_key: str
    role: str
    comment: str
    added: float
    revoked: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "public_key": self.public_key,
            "role": self.role,
            "comment": self.comment,
            "added": self.added,
            "revoked": self.revoked,
            "active": self.revoked is None,
        }


def _row(r: sqlite3.Row) -> AuthorizedKey:
    return AuthorizedKey(
        r["fingerprint"], r["public_key"], r["role"], r["comment"], r["added"], r["revoked"]
    )


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}", hint="roles: " + ", ".join(ROLES))
    return role


def authorize(conn: sqlite3.Connection, public_line: str, role: str) -> AuthorizedKey:
    check_role(role)
    try:
        raw = identity.parse_public_line(public_line)
    except identity.KeyError_ as err:
        raise InvalidInput(
            f"PUBKEY: {err}", hint="pass the last line `nvctl remote keygen` printed, quoted"
        ) from None
    parts = public_line.strip().split(maxsplit=2)
    comment = parts[2] if len(parts) > 2 else ""
    fp = identity.fingerprint(raw)
    line = f"{parts[0]} {parts[1]}"
    conn.execute(
        "INSERT INTO keys (fingerprint, public_key, role, comment, added, revoked) "
        "VALUES (?, ?, ?, ?, ?, NULL) ON CONFLICT(fingerprint) DO UPDATE SET "
        "role = excluded.role, comment = excluded.comment, revoked = NULL",
        (fp, line, role, comment, time.time()),
    )
    return get(conn, fp)


def _resolve(conn: sqlite3.Connection, who: str) -> str:
    """A fingerprint, a unique fingerprint prefix, or a public-key line → the fingerprint."""
    text = who.strip()
    if text.startswith(identity.PUBKEY_PREFIX):
        try:
            return identity.fingerprint(identity.parse_public_line(text))
        except identity.KeyError_ as err:
            raise InvalidInput(f"KEY: {err}") from None
    rows = conn.execute(
        "SELECT fingerprint FROM keys WHERE fingerprint LIKE ? ESCAPE '\\'",
        (text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",),
    ).fetchall()
    if len(rows) != 1:
        raise NotFound(
            f"no authorized key matches {who!r}" if not rows else f"{who!r} matches several keys",
            hint="`nvctl agent list` shows the fingerprints",
        )
    return str(rows[0]["fingerprint"])


def revoke(conn: sqlite3.Connection, who: str) -> AuthorizedKey:
    fp = _resolve(conn, who)
    conn.execute(
        "UPDATE keys SET revoked = ? WHERE fingerprint = ? AND revoked IS NULL", (time.time(), fp)
    )
    return get(conn, fp)


def get(conn: sqlite3.Connection, fp: str) -> AuthorizedKey:
    r = conn.execute("SELECT * FROM keys WHERE fingerprint = ?", (fp,)).fetchone()
    if r is None:
        raise NotFound(f"no authorized key {fp}")
    return _row(r)


def all_keys(conn: sqlite3.Connection) -> list[AuthorizedKey]:
    return [_row(r) for r in conn.execute("SELECT * FROM keys ORDER BY added")]


def role_of(conn: sqlite3.Connection, fp: str) -> tuple[str | None, str]:
    """The role of an active key, or None and why not (for the denial message)."""
    r = conn.execute("SELECT role, revoked FROM keys WHERE fingerprint = ?", (fp,)).fetchone()
    if r is None:
        return None, "unknown key"
    if r["revoked"] is not None:
        return None, "the key was revoked"
    return str(r["role"]), ""
