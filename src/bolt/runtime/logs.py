"""A container's log: JSON lines of ``{"time", "stream", "log"}``, written by its monitor
(``LogWriter``) and read back, optionally following it while the container runs."""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bolt.runtime.layout import ContainerDir
from bolt.state.db import ContainerRow, StateDB


class LogWriter:
    """JSON-lines log: a record per line of output, long partial lines split at 16 KiB."""

    LIMIT = 16 * 1024

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self.partial: dict[str, bytes] = {}

    def write(self, stream: str, data: bytes) -> None:
        buf = self.partial.pop(stream, b"") + data
        *lines, rest = buf.split(b"\n")
        for line in lines:
            self._emit(stream, line + b"\n")
        while len(rest) >= self.LIMIT:
            self._emit(stream, rest[: self.LIMIT])
            rest = rest[self.LIMIT :]
        if rest:
            self.partial[stream] = rest

    def flush(self) -> None:
        for stream, rest in list(self.partial.items()):
            self._emit(stream, rest)
        self.partial.clear()

    def _emit(self, stream: str, raw: bytes) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        record = {"time": stamp, "stream": stream, "log": raw.decode("utf-8", "replace")}
        os.write(self.fd, (json.dumps(record) + "\n").encode())


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
    from bolt.runtime.engine import is_live, reconcile

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
