"""What a container needs from an image (id, config, unpacked layer directories), cached.

Resolving through ``bolt.images.store`` loads the whole image library and reads every
manifest; ``bolt run`` only needs the answer.  The answer is cached in the state database,
keyed by the reference and by the identity (inode, size, mtime) of the OCI layout's
``index.json``, which changes whenever any tag changes.  A hit also requires every layer
directory to still exist, so pruned layers fall back to the store (which unpacks them).
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any, NamedTuple

SCHEMA = """
CREATE TABLE IF NOT EXISTS image_cache (
    ref TEXT PRIMARY KEY,
    index_key TEXT NOT NULL,
    image_id TEXT NOT NULL,
    config TEXT NOT NULL,
    layers TEXT NOT NULL
);
"""


class ResolvedImage(NamedTuple):
    id: str
    config: dict[str, Any]
    layers: list[Path]  # lowest first
    diff_ids: tuple[str, ...] = ()


def _index_key(root: Path) -> str | None:
    try:
        st = os.stat(root / "images" / "index.json")
    except OSError:
        return None
    return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def resolve(root: Path, conn: sqlite3.Connection, ref: str) -> ResolvedImage:
    """The image ``ref`` names; raises the store's ``NotFound`` when there is none."""
    conn.executescript(SCHEMA)
    key = _index_key(root)
    row = conn.execute(
        "SELECT index_key, image_id, config, layers FROM image_cache WHERE ref=?", (ref,)
    ).fetchone()
    if row is not None and key is not None and row[0] == key:
        layers = [Path(p) for p in json.loads(row[3])]
        if all(p.is_dir() for p in layers):
            return ResolvedImage(id=row[1], config=json.loads(row[2]), layers=layers)
    from bolt.images.store import ImageStore

    store = ImageStore(root)
    image = store.resolve(ref)
    layers = store.layer_dirs(image)
    if key is not None and key == _index_key(root):
        conn.execute(
            "INSERT OR REPLACE INTO image_cache VALUES (?,?,?,?,?)",
            (ref, key, image.id, json.dumps(image.config), json.dumps([str(p) for p in layers])),
        )
    return ResolvedImage(
        id=image.id, config=dict(image.config), layers=layers, diff_ids=tuple(image.diff_ids)
    )
