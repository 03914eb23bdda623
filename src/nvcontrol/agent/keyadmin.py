"""Authorizing and revoking client keys, audited: one path for ``nvctl agent authorize|
revoke`` on the agent's host and for an admin's same commands over ``--remote``."""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any

from basis.errors import NotFound
from bolt.network import identity
from nvcontrol.agent import audit, keys


def authorize(
    conn: sqlite3.Connection, pubkey: str, role: str, *, who: str, who_role: str, origin: str
) -> dict[str, Any]:
    before: dict[str, Any] = {}
    with contextlib.suppress(NotFound, identity.KeyError_):
        old = keys.get(conn, identity.fingerprint(identity.parse_public_line(pubkey)))
        before = {"role": old.role, "revoked": old.revoked}
    k = keys.authorize(conn, pubkey, role)
    audit.append(conn, audit.Entry(who, who_role, origin, "authorize", {"key": k.fingerprint},
                                   before, {"role": k.role}, "ok", 0))  # fmt: skip
    return k.to_json()


def revoke(
    conn: sqlite3.Connection, key: str, *, who: str, who_role: str, origin: str
) -> dict[str, Any]:
    k = keys.revoke(conn, key)
    audit.append(conn, audit.Entry(who, who_role, origin, "revoke", {"key": k.fingerprint},
                                   {"role": k.role}, {"revoked": k.revoked}, "ok", 0))  # fmt: skip
    return k.to_json()


def listing(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [k.to_json() for k in keys.all_keys(conn)]
