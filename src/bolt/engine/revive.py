"""Repair of a restarting container whose monitor was killed (``kill -9``): whichever
command reconciles it first ends what is left and starts it under a new monitor."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from bolt.engine.containers import (
    _ensure_rootfs,
    _job,
    _with,
    await_started,
    runtime_of,
    wait_pid,
)
from bolt.errors import BoltError
from bolt.runtime import linux
from bolt.runtime.cgroups import kill_cgroups
from bolt.runtime.monitor_start import spawn_exec
from bolt.state.db import ContainerRow, StateDB, now


def revive(root: Path, db: StateDB, row: ContainerRow) -> ContainerRow:
    """A container whose policy restarts it lost its monitor (kill -9): end what is
    left of it and run it again under a new monitor.  Compare-and-set, so of two
    commands that notice at once only one revives it."""
    me = {"monitor_pid": os.getpid(), "monitor_start": linux.proc_start_time(os.getpid())}
    won = db.transition(
        row.id, (row.status,), status="creating", pid=None, pid_start=None,
        restart_count=row.restart_count + 1, **me,
    )  # fmt: skip
    if not won:
        return db.refresh(row) or row
    rt = runtime_of(root, row)
    try:
        rt.kill(row.id, signal.SIGKILL, all_processes=True)
        kill_cgroups(row.id)
        wait_pid(row.pid, row.pid_start, 10)
        with contextlib.suppress(BoltError, OSError):
            rt.delete(row.id, force=True)
        _ensure_rootfs(root, db, row)
        db.add_event(row.id, row.name, "restarted", restart_count=row.restart_count + 1,
                     reason="monitor lost")  # fmt: skip
        row = db.refresh(row) or row
        with spawn_exec(_job(root, row, rt, start=True, interactive=False)) as sock:
            await_started(sock)
    except BoltError as err:
        db.update(row.id, status="failed", finished=now(), details=_with(row, error=str(err)))
    return db.refresh(row) or row
