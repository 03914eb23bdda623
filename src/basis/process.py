"""Process identity: a process is its pid plus its start time, so a recycled pid is never
mistaken for the process a record names.  Crash repair everywhere rests on this."""

from __future__ import annotations

import os


def _stat_fields(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    return data[data.rindex(b")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if it does not exist
    (a zombie still has one: see :func:`alive`)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def state(pid: int) -> str | None:
    """The one-letter state of ``/proc/PID/stat`` (R, S, Z, …), or None if gone."""
    fields = _stat_fields(pid)
    return fields[0].decode() if fields else None


def alive(pid: int | None, start: int | None) -> bool:
    """True if ``pid`` still names the process that had ``start`` and is not a zombie
    (killed but not yet reaped is just as dead).  ``start=None`` checks the pid only."""
    if not pid:
        return False
    fields = _stat_fields(pid)
    if not fields or fields[0] in (b"Z", b"X"):
        return False
    return start is None or int(fields[19]) == start


def me() -> tuple[int, int]:
    """This process's identity (pid, start time)."""
    pid = os.getpid()
    start = start_time(pid)
    assert start is not None
    return pid, start
