"""Reading a container's log back (``bolt logs``, ``Engine.logs``), following it while
the container runs; the monitor writes it (``bolt.runtime.logs.LogWriter``)."""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bolt.engine.containers import is_live, reconcile
from bolt.runtime.layout import ContainerDir
from bolt.state.db import ContainerRow, StateDB


def _records(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill; the next ones are whole


def follow_lines(
    root: Path, db: StateDB, row: ContainerRow, *, tail: int | None = None, follow: bool = False
) -> Iterator[dict[str, Any]]:
    """Log records of ``row`` (the last ``tail`` ones), then new ones until it stops."""
    path = ContainerDir.of(root, row.id).log
    try:
        f = path.open()
    except FileNotFoundError:
        return
    with f:
        whole = f.read()
        end = whole.rfind("\n") + 1
        f.seek(end)
        lines = whole[:end].splitlines()
        if tail is not None:
            lines = list(deque(lines, maxlen=max(0, tail)))
        yield from _records(iter(lines))
        if not follow:
            return
        partial = whole[end:]
        last_check = 0.0
        while True:
            chunk = f.read()
            if chunk:
                partial += chunk
                cut = partial.rfind("\n") + 1
                yield from _records(iter(partial[:cut].splitlines()))
                partial = partial[cut:]
                continue
            now = time.monotonic()
            if now - last_check > 0.25:
                last_check = now
                current = db.refresh(row)
                if current is None or not is_live(reconcile(root, db, current)):
                    rest = f.read()
                    if rest:
                        partial += rest
                        continue
                    return
            time.sleep(0.05)
