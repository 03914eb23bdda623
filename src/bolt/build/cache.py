"""The build cache: step key -> the layer that step made, in ``$BOLT_ROOT/build-cache.db``.

SQLite (WAL), not annotations in the image layout: a lookup per step must be cheap and
concurrent builds must be able to record steps without rewriting ``index.json`` (which
every image command reads).  A row names a layer blob in the image store; a row whose blob
is gone (``bolt image rm`` / ``prune`` collected it) is a miss and is deleted.
"""

from __future__ import annotations

import sqlite3
import time
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
"""


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

    def clear(self) -> int:
        return self.conn.execute("DELETE FROM steps").rowcount
