"""The agent's SQLite database, ``$NVCTL_STATE_DIR/agent/agent.db`` (WAL): authorized
client keys, dashboard login tokens and the append-only audit log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from basis.errors import fs_errors
from nvcontrol.control import paths

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    fingerprint TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    role TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    added REAL NOT NULL,
    revoked REAL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    key TEXT NOT NULL,
    role TEXT NOT NULL,
    origin TEXT NOT NULL,
    action TEXT NOT NULL,
    params TEXT NOT NULL,
    before TEXT NOT NULL,
    after TEXT NOT NULL,
    result TEXT NOT NULL,
    exit_code INTEGER NOT NULL,
    message TEXT
);
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    added REAL NOT NULL,
    revoked REAL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


def agent_dir() -> Path:
    return paths.state_dir() / "agent"


def connect() -> sqlite3.Connection:
    path = agent_dir() / "agent.db"
    with fs_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        conn = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(_SCHEMA)
    return conn
