"""A lean, single-threaded process that forks monitors on request, for long-lived and
threaded callers (the Engine, Surge).

Forking the caller itself is cheap only while it is small and single-threaded: a large
Python process pays for its page tables at the fork and for copy-on-write faults in the
child, and a threaded one must not fork at all.  Starting ``python -m
bolt.runtime.monitor_start`` per container pays an interpreter each time.  So the Engine
starts this server once (``MonitorServer``) and sends it each job with the container's
attach socket (SCM_RIGHTS).  The server keeps one monitor forked ahead from its own small
heap (``_fork_warm``): detached, with the state database open, waiting on a channel.  A
job goes down that channel, and the server forks the next warm monitor while the
container starts; it reaps them all.  The server exits when the caller closes its end.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import select
import socket
import sys
import threading
from pathlib import Path

from bolt.runtime.monitor import MonitorJob


class MonitorServer:
    """The caller's side: start the server on first use, send jobs to it."""

    def __init__(self, root: Path | None = None) -> None:
        self._root = root  # where most jobs' containers live: warm monitors open its database
        self._sock: socket.socket | None = None
        self._pid = 0
        self._lock = threading.Lock()

    @property
    def pid(self) -> int:
        """The server's process id (0 until the first job starts it)."""
        return self._pid

    def _start(self) -> socket.socket:
        import subprocess

        ours, theirs = socket.socketpair()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bolt.runtime.monitor_server",
                str(theirs.fileno()),
                *([str(self._root)] if self._root else []),
            ],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        theirs.close()
        self._pid = proc.pid
        proc.returncode = 0  # reaped by ``close``; no ResourceWarning for a live child
        return ours

    def spawn(self, job: MonitorJob) -> socket.socket:
        """A monitor for ``job``; our end of its attach socket."""
        ours, theirs = socket.socketpair()
        payload = json.dumps(job._asdict()).encode()
        with self._lock:
            for attempt in (1, 2):
                if self._sock is None:
                    self._sock = self._start()
                try:
                    socket.send_fds(self._sock, [len(payload).to_bytes(4, "big") + payload],
                                    [theirs.fileno()])  # fmt: skip
                    if self._sock.recv(1) == b"+":
                        break
                except OSError:
                    pass
                self._close()  # a server that died: start another once
                if attempt == 2:
                    theirs.close()
                    ours.close()
                    raise OSError("the monitor server did not answer")
        theirs.close()
        return ours

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._pid:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self._pid, 0)
            self._pid = 0

    def close(self) -> None:
        with self._lock:
            self._close()


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def preload() -> None:
    """Import, once, what every forked monitor would otherwise import for itself while
    its container starts (measured: ~13 ms per container, most of it ``shutil``, which
    loads the bz2 and lzma extensions)."""
    import selectors  # noqa: F401
    import shutil  # noqa: F401

    import bolt.runtime.monitor_loop
    import bolt.runtime.netavark
    import bolt.runtime.prober
    import bolt.runtime.supervision
    import bolt.volumes  # noqa: F401
    from bolt.runtime import logs  # noqa: F401


def serve(control: socket.socket, root: str | None = None) -> None:
    preload()
    # What is loaded now stays out of every garbage collection, so a forked monitor's
    # collections do not write to (and so copy) the pages it shares with this server.
    gc.freeze()
    spare: socket.socket | None = _fork_warm(control, root)
    while True:
        ready, _, _ = select.select([control], [], [], 1.0)
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        if not ready:
            continue
        msg, fds, _, _ = socket.recv_fds(control, 4, 1)
        if not msg:
            return  # the caller is gone; the warm monitor sees its channel close and exits
        header = msg if len(msg) == 4 else msg + _recv_exact(control, 4 - len(msg))
        job = header + _recv_exact(control, int.from_bytes(header, "big"))
        try:
            for attempt in (1, 2):
                if spare is None:
                    spare = _fork_warm(control, root)
                try:
                    socket.send_fds(spare, [job], fds)
                    break
                except OSError:  # it died while it waited: fork another, once
                    if attempt == 2:
                        raise
                finally:
                    spare.close()
                    spare = None
        finally:
            for fd in fds:
                os.close(fd)
        control.sendall(b"+")
        spare = _fork_warm(control, root)  # while the container starts


def _fork_warm(control: socket.socket, root: str | None) -> socket.socket:
    """Fork the next monitor now, so that a job finds it running: it has already left
    this session, closed what it inherited and opened the state database, and it waits
    on the returned channel for its job (the caller's bytes and attach socket)."""
    ours, theirs = socket.socketpair()
    if os.fork() == 0:
        try:
            ours.close()
            control.close()
            _warm_monitor(theirs, root)
        finally:
            os._exit(1)  # never back into the server's loop
    theirs.close()
    return ours


def _warm_monitor(channel: socket.socket, root: str | None) -> None:
    """A forked monitor waiting for its job (the caller of ``_fork_warm`` exits if
    anything here fails)."""
    from bolt.runtime.monitor_start import become_monitor, run_forked_child
    from bolt.state.db import StateDB

    become_monitor(channel.fileno())
    db = StateDB(Path(root)) if root else None
    msg, fds, _, _ = socket.recv_fds(channel, 4, 1)
    if not msg or not fds:
        os._exit(0)  # the server exited before it had a job for us
    header = msg if len(msg) == 4 else msg + _recv_exact(channel, 4 - len(msg))
    job = MonitorJob(**json.loads(_recv_exact(channel, int.from_bytes(header, "big"))))
    channel.close()
    if db is not None and Path(job.root) != Path(root or ""):
        db.close()
        db = None
    run_forked_child(job, socket.socket(fileno=fds[0]), detached=True, db=db)


def main() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    control = socket.socket(fileno=int(sys.argv[1]))
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    serve(control, sys.argv[2] if len(sys.argv) > 2 else None)


if __name__ == "__main__":
    main()
