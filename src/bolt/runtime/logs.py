"""A container's log: JSON lines of ``{"time", "stream", "log"}``, written by its monitor
(``LogWriter``); ``bolt.engine.logs`` reads them back."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path


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
