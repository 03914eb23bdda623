"""A lean, single-threaded process that forks monitors on request, for long-lived and
threaded callers (the Engine, Surge).

Forking the caller itself is cheap only while it is small and single-threaded: a large
Python process pays for its page tables at the fork and for copy-on-write faults in the
child, and a threaded one must not fork at all.  Starting ``python -m
bolt.runtime.monitor_start`` per container pays an interpreter each time.  So the Engine
starts this server once (``MonitorServer``) and sends it each job with the container's
attach socket (SCM_RIGHTS); the server forks a monitor from its own small heap and reaps
it later.  The server exits when the caller closes its end.
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

from bolt.runtime.monitor import MonitorJob


class MonitorServer:
    """The caller's side: start the server on first use, send jobs to it."""

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def _start(self) -> socket.socket:
        import subprocess

        ours, theirs = socket.socketpair()
        proc = subprocess.Popen(
            [sys.executable, "-m", "bolt.runtime.monitor_server", str(theirs.fileno())],
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


def serve(control: socket.socket) -> None:
    from bolt.runtime.monitor_start import run_forked_child

    preload()
    # What is loaded now stays out of every garbage collection, so a forked monitor's
    # collections do not write to (and so copy) the pages it shares with this server.
    gc.freeze()
    while True:
        ready, _, _ = select.select([control], [], [], 1.0)
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        if not ready:
            continue
        msg, fds, _, _ = socket.recv_fds(control, 4, 1)
        if not msg:
            return
        size = int.from_bytes(
            msg if len(msg) == 4 else msg + _recv_exact(control, 4 - len(msg)), "big"
        )
        job = MonitorJob(**json.loads(_recv_exact(control, size)))
        attach_sock = socket.socket(fileno=fds[0])
        if os.fork() == 0:
            control.close()
            run_forked_child(job, attach_sock)
        attach_sock.close()
        control.sendall(b"+")


def main() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    control = socket.socket(fileno=int(sys.argv[1]))
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    serve(control)


if __name__ == "__main__":
    main()
