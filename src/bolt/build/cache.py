"""The build cache: step key -> the layer that step made, in ``$BOLT_ROOT/build-cache.db``.

It also remembers the sha256 of context files by their identity, so that an unchanged
context is not read again to compute COPY keys.

SQLite (WAL), not annotations in the image layout: a lookup per step must be cheap and
concurrent builds must be able to record steps without rewriting ``index.json`` (which
every image command reads).  A row names a layer blob in the image store; a row whose blob
is gone (``bolt image rm`` / ``prune`` collected it) is a miss and is deleted.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from bolt.build.plan import Layer

SCHEMA = """
CREATE TABLE IF NOT EXISTS steps (
    key TEXT PRIMARY KEY,
    digest TEXT,            -- NULL: the step changed no file
    diff_id TEXT,
    media_type TEXT,
    size INTEGER,
    created TEXT NOT NULL,
    used REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS file_hashes (
    identity TEXT PRIMARY KEY,  -- device, inode, size, mtime and ctime of a context file
    digest TEXT NOT NULL
);
"""
RACY_SECONDS = 2.0  # a file changed this recently may change again within the same tick


class CachedStep:
    def __init__(self, layer: Layer | None, created: str) -> None:
        self.layer = layer
        self.created = created


class BuildCache:
    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(root / "build-cache.db", timeout=30, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)

    def close(self) -> None:
        self.conn.close()

    def get(self, key: str) -> CachedStep | None:
        row = self.conn.execute(
            "SELECT digest, diff_id, media_type, size, created FROM steps WHERE key=?", (key,)
        ).fetchone()
        if row is None:
            return None
        layer = None if row[0] is None else Layer(row[0], row[1], row[2], int(row[3]))
        return CachedStep(layer, row[4])

    def touch(self, key: str) -> None:
        self.conn.execute("UPDATE steps SET used=? WHERE key=?", (time.time(), key))

    def forget(self, key: str) -> None:
        self.conn.execute("DELETE FROM steps WHERE key=?", (key,))

    def put(self, key: str, layer: Layer | None, created: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO steps VALUES (?,?,?,?,?,?,?)",
            (
                key,
                layer.digest if layer else None,
                layer.diff_id if layer else None,
                layer.media_type if layer else None,
                layer.size if layer else None,
                created,
                time.time(),
            ),
        )

    def file_digest(self, st: os.stat_result, compute: Callable[[], str]) -> str:
        """The sha256 of a context file, remembered by its identity (device, inode, size,
        mtime, ctime): an unchanged file is not read again.  Files modified in the last
        seconds are always read (their timestamps may not yet tell a change apart)."""
        identity = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
        row = self.conn.execute(
            "SELECT digest FROM file_hashes WHERE identity=?", (identity,)
        ).fetchone()
        if row is not None:
            return str(row[0])
        digest = compute()
        if time.time() - max(st.st_mtime, st.st_ctime) > RACY_SECONDS:
            self.conn.execute("INSERT OR REPLACE INTO file_hashes VALUES (?,?)", (identity, digest))
        return digest

    def clear(self) -> int:
        return self.conn.execute("DELETE FROM steps").rowcount
