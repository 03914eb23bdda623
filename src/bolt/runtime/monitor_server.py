"""A lean, single-threaded process that forks monitors on request, for long-lived and
threaded callers (the Engine, Surge).

Forking the caller itself is cheap only while it is small and single-threaded: a large
Python process pays for its page tables at the fork and for copy-on-write faults in the
child, and a threaded one must not fork at all.  Starting ``python -m
bolt.runtime.monitor_start`` per container pays an interpreter each time.  So the Engine
starts this server once (``MonitorServer``) and sends it each job with the container's
attach socket (SCM_RIGHTS); the server forks a monitor from its own small heap and reaps
it later.  It also keeps one monitor forked ahead (``_fork_warm``): detached, with the
state database open, waiting on a channel whose other end it hands to the caller.  The
caller sends its next job straight down that channel, one process hop fewer, and asks for
another warm monitor once that container has started, so that the fork does not compete
with the runtime.  The server exits when the caller closes its end, and warm monitors
when their channel closes.
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

from bolt.runtime import linux
from bolt.runtime.monitor import MonitorJob

WANT = bytes(4)  # a job of length 0: "fork the next warm monitor and hand it to me"
SPARE = b"\xff" * 4  # then a length and JSON: "mount a spare root file system for this image"


class MonitorServer:
    """The caller's side: start the server on first use, send jobs to it."""

    def __init__(self, root: Path | None = None) -> None:
        self._root = root  # where most jobs' containers live: warm monitors open its database
        self._sock: socket.socket | None = None
        self._warm: socket.socket | None = None  # a channel to a monitor waiting for a job
        self._coming = 0  # warm monitors the server is forking for us (asked, not received)
        self._owed = False  # we used one and have not asked for the next yet
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
        self._coming, self._owed = 1, False  # the server hands the first one unasked
        return ours

    def start(self) -> None:
        """Start the server now, if it is not running (it also starts on first use)."""
        with self._lock:
            if self._sock is None:
                self._sock = self._start()

    def replenish(self) -> None:
        """Ask for the next warm monitor, if the last job used ours.  The Engine calls this
        once the container has started (or ended), so that the fork does not compete with
        the runtime's start for the CPU; a job that comes first asks for itself."""
        with self._lock:
            if self._owed and self._sock is not None:
                self._ask()

    def spare(self, image_id: str, layers: tuple[Path, ...]) -> None:
        """Ask the server to mount a spare root file system in its root for the image's
        next container removed on exit (``bolt.runtime.spares``); it keeps it until it
        exits.  Nothing is answered; a server not running is not started for it."""
        payload = json.dumps({"image_id": image_id, "layers": [str(p) for p in layers]}).encode()
        with self._lock:
            if self._sock is None or self._root is None:
                return
            try:
                self._sock.sendall(SPARE + len(payload).to_bytes(4, "big") + payload)
            except OSError:
                self._close()

    def _ask(self) -> None:
        try:
            assert self._sock is not None
            self._sock.sendall(WANT)
            self._coming += 1
            self._owed = False
        except OSError:
            self._close()  # the server is gone: the next job starts another

    def spawn(self, job: MonitorJob) -> socket.socket:
        """A monitor for ``job``; our end of its attach socket.  The job goes straight to
        the warm monitor the server gave us, if we hold one; else through the server."""
        ours, theirs = socket.socketpair()
        payload = json.dumps(job._asdict()).encode()
        message = len(payload).to_bytes(4, "big") + payload
        try:
            with self._lock:
                if self._sock is None:
                    self._sock = self._start()
                if self._direct(message, theirs):
                    return ours
                self._through_server(message, theirs)
            return ours
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()

    def _direct(self, message: bytes, theirs: socket.socket) -> bool:
        """Send the job to a warm monitor: ours, or the one coming (a fork in progress
        costs no more to wait for than a fork through the server)."""
        if self._owed:
            self._ask()
        warm = self._take_warm()
        if warm is None:
            return False
        self._owed = True
        try:
            socket.send_fds(warm, [message], [theirs.fileno()])
            return warm.recv(1) == b"+"  # nothing: it died while it waited (the job is ours)
        except OSError:
            return False
        finally:
            warm.close()

    def _take_warm(self) -> socket.socket | None:
        try:
            while self._warm is None and self._coming and self._sock is not None:
                self._receive()
        except OSError:
            self._close()
        warm, self._warm = self._warm, None
        return warm

    def _receive(self) -> bytes:
        """One byte from the server: ``+`` (a job it took) or ``W`` (a warm monitor's
        channel, kept for the next job)."""
        assert self._sock is not None
        msg, fds = linux.recv_fds(self._sock, 1)
        if msg == b"W" and fds:
            self._coming -= 1
            if self._warm is not None:
                self._warm.close()
            self._warm = socket.socket(fileno=fds[0])
        elif not msg:
            raise OSError("the monitor server exited")
        return msg

    def _through_server(self, message: bytes, theirs: socket.socket) -> None:
        for _attempt in (1, 2):
            if self._sock is None:
                self._sock = self._start()
            try:
                socket.send_fds(self._sock, [message], [theirs.fileno()])
                while self._receive() != b"+":
                    pass
                return
            except OSError:
                self._close()  # a server that died: start another once
        raise OSError("the monitor server did not answer")

    def _close(self) -> None:
        self._coming, self._owed = 0, False
        if self._warm is not None:
            self._warm.close()
            self._warm = None
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


def _whole_header(sock: socket.socket, start: bytes) -> bytes:
    """A message's 4-byte length, of which ``start`` arrived with its descriptor."""
    return start if len(start) == 4 else start + _recv_exact(sock, 4 - len(start))


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
    import bolt.runtime.spares
    import bolt.runtime.supervision
    import bolt.volumes  # noqa: F401
    from bolt.runtime import logs  # noqa: F401


def serve(control: socket.socket, root: str | None = None) -> None:
    preload()
    # What is loaded now stays out of every garbage collection, so a forked monitor's
    # collections do not write to (and so copy) the pages it shares with this server.
    gc.freeze()
    _hand_warm(control, root)  # the caller's first job finds a monitor waiting
    try:
        _serve(control, root)
    finally:
        if root is not None:  # the caller is gone: nobody asks for its spares any more
            from bolt.runtime import spares

            with contextlib.suppress(OSError):
                spares.discard(Path(root), owner=spares.me())


def _serve(control: socket.socket, root: str | None) -> None:
    while True:
        ready, _, _ = select.select([control], [], [], 1.0)
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        if not ready:
            continue
        msg, fds = linux.recv_fds(control, 4)
        if not msg:
            return  # the caller is gone; so is every warm monitor's channel
        header = _whole_header(control, msg)
        if header == SPARE:
            for fd in fds:
                os.close(fd)
            request = json.loads(_recv_exact(control, int.from_bytes(_recv_exact(control, 4))))
            if root is not None:
                _make_spare(Path(root), request)
            continue
        size = int.from_bytes(header, "big")
        if size == 0:  # WANT: the caller used its warm monitor
            _hand_warm(control, root)
            continue
        job = header + _recv_exact(control, size)
        try:
            for _attempt in (1, 2):  # a monitor that dies before it has the job: once more
                monitor = _fork_warm(control, root)
                try:
                    socket.send_fds(monitor, [job], fds)
                    if monitor.recv(1) == b"+":
                        break
                except OSError:
                    pass
                finally:
                    monitor.close()
        finally:
            for fd in fds:
                os.close(fd)
        control.sendall(b"+")


def _make_spare(root: Path, request: dict[str, object]) -> None:
    """Mount a spare for the request's image, owned by this server, after removing what
    a killed owner left.  A spare only saves time: one that cannot be made is not made,
    and the server goes on."""
    from bolt.errors import BoltError
    from bolt.runtime import spares

    layers = [Path(str(p)) for p in request["layers"]]  # type: ignore[attr-defined]
    with contextlib.suppress(BoltError, OSError):
        spares.discard(root, dead_owners=True)
        spares.make(root, str(request["image_id"]), layers, owner=spares.me())


def _hand_warm(control: socket.socket, root: str | None) -> None:
    """Fork a warm monitor and give the caller its channel (``W``)."""
    channel = _fork_warm(control, root)
    try:
        socket.send_fds(control, [b"W"], [channel.fileno()])
    finally:
        channel.close()


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
    msg, fds = linux.recv_fds(channel, 4)
    if not msg or not fds:
        os._exit(0)  # the server exited before it had a job for us
    header = _whole_header(channel, msg)
    job = MonitorJob(**json.loads(_recv_exact(channel, int.from_bytes(header, "big"))))
    channel.sendall(b"+")
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
    # The caller gone mid-message (it exited, or closed with a warm monitor's channel
    # unread) ends the server as quietly as its closing the socket does.
    with contextlib.suppress(OSError, EOFError):
        serve(control, sys.argv[2] if len(sys.argv) > 2 else None)


if __name__ == "__main__":
    main()
