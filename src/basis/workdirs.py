"""Working directories that say whether their owner is alive: the owner holds an
exclusive ``flock`` on the directory for as long as it works in it, so a directory whose
lock can be taken was left by a process that died.  Image imports (staging areas) and
builds (scratch directories) both sweep their area this way."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


def hold(path: Path) -> int:
    """Lock ``path`` (a directory) for this process; returns the descriptor that keeps the
    lock.  Close it (or exit) to let the directory be swept."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def abandoned(area: Path) -> Iterator[Path]:
    """The directories under ``area`` whose owner is gone, in name order.  Each one's lock
    is held while the caller handles it (so no new owner can take it meanwhile) and freed
    when the iteration moves on."""
    for entry in sorted(area.iterdir()):
        try:
            fd = os.open(entry, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            continue  # not a directory, or gone already
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # its owner is working in it now
        try:
            yield entry
        finally:
            os.close(fd)
