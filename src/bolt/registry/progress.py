"""Progress of transfers: Rich bars on a terminal, one plain line per event otherwise.

The library reports through the :class:`Progress` protocol; :func:`for_stream` picks a
renderer.  Rich is imported only when bars are drawn.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Protocol, TextIO


class Progress(Protocol):
    def start(self, key: str, label: str, total: int) -> None: ...
    def advance(self, key: str, amount: int) -> None: ...
    def finish(self, key: str, note: str) -> None: ...
    def close(self) -> None: ...


class Silent:
    """Reports nothing (the library's default)."""

    def start(self, key: str, label: str, total: int) -> None:
        pass

    def advance(self, key: str, amount: int) -> None:
        pass

    def finish(self, key: str, note: str) -> None:
        pass

    def close(self) -> None:
        pass


class Lines:
    """One line when a transfer starts and one when it ends: for logs and pipes."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._labels: dict[str, str] = {}

    def start(self, key: str, label: str, total: int) -> None:
        with self._lock:
            self._labels[key] = label
            print(f"{label}: {human_size(total)}", file=self._out, flush=True)

    def advance(self, key: str, amount: int) -> None:
        pass

    def finish(self, key: str, note: str) -> None:
        with self._lock:
            print(f"{self._labels.get(key, key)}: {note}", file=self._out, flush=True)

    def close(self) -> None:
        pass


class Bars:
    """A Rich progress bar per transfer."""

    def __init__(self, out: TextIO) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TransferSpeedColumn,
        )
        from rich.progress import (
            Progress as RichProgress,
        )

        self._bars = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("{task.fields[note]}"),
            console=Console(file=out),
        )
        self._tasks: dict[str, Any] = {}
        self._totals: dict[str, int] = {}
        self._bars.start()

    def start(self, key: str, label: str, total: int) -> None:
        self._totals[key] = total
        if key in self._tasks:  # started again (a retry)
            self._bars.reset(self._tasks[key], total=total, note="")
        else:
            self._tasks[key] = self._bars.add_task(label, total=total, note="")

    def advance(self, key: str, amount: int) -> None:
        self._bars.advance(self._tasks[key], amount)

    def finish(self, key: str, note: str) -> None:
        self._bars.update(self._tasks[key], completed=self._totals[key], note=note)

    def close(self) -> None:
        self._bars.stop()


def for_stream(out: TextIO | None = None, quiet: bool = False) -> Progress:
    out = out or sys.stderr
    if quiet:
        return Silent()
    if out.isatty():
        return Bars(out)
    return Lines(out)


def human_size(size: int, sep: str = " ") -> str:
    """Decimal units, as registries and `docker images` count them."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f}{sep}{unit}" if unit == "B" else f"{value:.1f}{sep}{unit}"
        value /= 1000
    return f"{value:.1f}{sep}GB"
