"""How a monitor process comes to life: forked from the CLI, or as a fresh interpreter.

``spawn_forked`` forks the calling (single-threaded) process, so ``bolt run`` pays for no
new interpreter; ``spawn_exec`` runs ``python -m bolt.runtime.monitor_start``, which is safe
from threaded programs such as the asyncio library.  Either way the monitor leaves the
caller's session, closes every descriptor it inherited but the attach socket, points its
stdio at /dev/null and runs ``bolt.runtime.monitor_loop.serve``; an error that ends it is
written to the container's ``monitor.log``.  The library's
monitor server keeps one monitor forked ahead and detached, waiting for its job.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bolt.runtime.layout import ContainerDir
from bolt.runtime.monitor import MonitorJob

if TYPE_CHECKING:
    from bolt.state.db import StateDB


def become_monitor(keep: int) -> None:
    """Leave the caller's session, point fds 0-2 at /dev/null, and close every other
    descriptor inherited but ``keep``: whatever the caller had open (pipes a test harness
    waits on, its database) must not live as long as the container.  Then become the
    subreaper of the container's processes, ignoring the signals the runtime's spawn
    resets to default (so the container never inherits the monitor's dispositions).  Its
    name becomes ``bolt-monitor``, which ``rm -f`` looks for before it kills anything."""
    import signal

    from bolt.runtime import linux
    from bolt.runtime.driver import SPAWN_DEFAULT_SIGNALS

    os.setsid()
    linux.set_process_name(linux.MONITOR_NAME)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)
    os.closerange(3, keep)
    os.closerange(max(keep + 1, 3), 1 << 20)
    linux.set_child_subreaper()
    for sig in SPAWN_DEFAULT_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def log_errors_to(log: Path) -> None:
    """From now on the monitor's fds 1 and 2 go to the container's ``monitor.log``."""
    out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)


def run_forked_child(
    job: MonitorJob,
    sock: socket.socket | None,
    *,
    detached: bool = False,
    db: StateDB | None = None,
) -> None:
    """Body of the forked monitor: never returns.  ``detached``: ``become_monitor`` was
    done already (a warm monitor, see ``bolt.runtime.monitor_server``); ``db``: a
    connection to the job's state database it opened while it waited."""
    code = 1
    try:
        if not detached:
            become_monitor(sock.fileno() if sock is not None else 2)
        from bolt.runtime.monitor_loop import serve  # the caller never needs it

        code = serve(job, sock, db)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            # made only when there is something to say: one file fewer per container
            log_errors_to(ContainerDir.of(Path(job.root), job.cid).monitor_log)
            print(f"bolt monitor: {exc!r}", file=sys.stderr)
    finally:
        os._exit(code)


def spawn_forked(job: MonitorJob, orphan: bool = False) -> tuple[int | None, socket.socket]:
    """Fork a monitor from this (single-threaded) process; return its pid and our socket
    end.  With ``orphan`` (a long-lived caller) the monitor is a grandchild, so the caller
    never holds its zombie, and no pid is returned."""
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        ours.close()
        if orphan and os.fork() != 0:
            os._exit(0)
        run_forked_child(job, theirs)
    theirs.close()
    if orphan:
        os.waitpid(pid, 0)
        return None, ours
    return pid, ours


def spawn_exec(job: MonitorJob) -> socket.socket:
    """Start a monitor as a fresh interpreter (safe from threaded programs)."""
    import subprocess

    ours, theirs = socket.socketpair()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bolt.runtime.monitor_start",
            json.dumps(job._asdict()),
            str(theirs.fileno()),
        ],
        pass_fds=[theirs.fileno()],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    theirs.close()
    proc.wait()  # the child forks the real monitor and exits at once
    return ours


def main() -> None:
    job = MonitorJob(**json.loads(sys.argv[1]))
    sock = socket.socket(fileno=int(sys.argv[2]))
    if os.fork() != 0:
        os._exit(0)
    run_forked_child(job, sock)


if __name__ == "__main__":
    main()
