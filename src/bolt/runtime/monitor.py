"""The per-container monitor: starts the container, owns its stdio, logs, records the exit.

One monitor process per container, started by ``bolt run`` (forked, so it costs no new
interpreter) or by the library (a fresh interpreter): see ``bolt.runtime.monitor_start``.  It makes itself a
child subreaper and leaves the caller's session, so it outlives the CLI.

The container starts with one runtime call, ``run`` in the foreground: the runtime creates
and starts the container, waits for it, passes its exit status on as its own and removes
its own state.  The runtime writes the init's pid file once the container exists; the
monitor learns the pid from it (inotify), records it, and waits for the runtime.  A
container that is only created (the library's ``create``), and runc with a terminal
(runc passes a terminal to a console socket only when it detaches), use ``create`` or
``run --detach`` instead: the runtime exits, the init is re-parented to the monitor, and
the monitor waits for the init itself.  Either way it reaps every orphan, so no zombie is
left.

Output goes to ``log.jsonl`` (one JSON object per line: time, stream, log) and, while a
client is attached, to the attach socket (``bolt.runtime.attach`` frames).  On exit it
records the code in the database and in ``exit``, deletes whatever runtime state is left,
unmounts the root file system, and with ``auto_remove`` removes everything.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from bolt.errors import BoltError
from bolt.runtime import attach, linux, rootfs
from bolt.runtime.driver import COMMAND_HINT, OciRuntime, command_error, runtime_message
from bolt.runtime.layout import RUN_BASE, ContainerDir, removed_dir
from bolt.state.db import StateDB, now

EVENT_READ = 1  # selectors.EVENT_READ, without importing selectors before the start

if TYPE_CHECKING:
    import selectors

    from bolt.runtime.logs import LogWriter
    from bolt.runtime.prober import Prober


class MonitorJob(NamedTuple):
    root: str
    cid: str
    runtime: dict[str, object]
    terminal: bool = False
    interactive: bool = False
    start: bool = True
    auto_remove: bool = False
    restart: tuple[str, int | None] = ("no", None)  # RestartPolicy fields
    healthcheck: tuple[object, ...] | None = None  # HealthCheck fields
    restart_count: int = 0


def exit_code_of(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


class Monitor:
    sel: selectors.BaseSelector  # set, with logs, once the runtime has been spawned
    logs: LogWriter

    def __init__(
        self, job: MonitorJob, attach_sock: socket.socket | None, db: StateDB | None = None
    ) -> None:
        self.job = job
        self.root = Path(job.root)
        self.cdir = ContainerDir.of(self.root, job.cid)
        self.rt = OciRuntime(**job.runtime)  # type: ignore[arg-type]
        self.client = attach_sock
        self._db = db
        self.pid = 0  # the container's init
        self.waited = 0  # whose exit status is the container's: the runtime's run, or the init
        self.runtime_pid = 0
        self.runtime_status: int | None = None
        self.status: int | None = None  # the wait status of ``waited``
        self.streams: dict[int, str] = {}
        self.stdin_fd: int | None = None
        self.master: int | None = None
        self.pending_in = bytearray()  # client input the container has not read yet
        self.eof_after_pending = False
        self.prober: Prober | None = None
        self.spent_watch: int | None = None  # an inotify descriptor whose close can wait
        self.removed: Path | None = None  # a removed container's directory, to delete

    @property
    def console_path(self) -> Path:
        """Where the runtime passes the terminal: the container directory, unless that
        path is too long for a socket (108 bytes), then a short one in /run/bolt."""
        path = self.cdir.console_socket
        if len(str(path)) < 100:
            return path
        from bolt.runtime import runroot

        runroot.ensure_base()  # any tmpfs is mounted there before, never over, the socket
        short = RUN_BASE
        short.mkdir(mode=0o700, parents=True, exist_ok=True)
        return short / f"{self.job.cid[:32]}.sock"

    @property
    def db(self) -> StateDB:
        """Opened on first use: nothing but the runtime stands between fork and start."""
        if self._db is None:
            self._db = StateDB(self.root)
        return self._db

    # -- attach client -------------------------------------------------------------------
    def send(self, kind: int, payload: bytes = b"") -> None:
        if self.client is None:
            return
        try:
            self.client.sendall(attach.encode(kind, payload))
        except OSError:
            self.drop_client()

    def drop_client(self) -> None:
        if self.client is not None:
            with contextlib.suppress(
                KeyError, ValueError, AttributeError
            ):  # AttributeError: no selector yet
                self.sel.unregister(self.client)
            self.client.close()
            self.client = None

    # -- start ----------------------------------------------------------------------------
    def launch(self) -> None:
        """Start the runtime; afterwards ``pid`` is the init and ``waited`` is set."""
        job, cdir = self.job, self.cdir
        if not job.start:
            verb = ["create"]
        elif job.terminal and self.rt.name == "runc":
            verb = ["run", "--detach"]
        else:
            verb = ["run"]
        foreground = verb == ["run"]
        cdir.pid_file.unlink(missing_ok=True)  # a last run's file must not count
        args = [*verb, "--bundle", str(cdir.bundle), "--pid-file", str(cdir.pid_file)]
        listener: socket.socket | None = None
        err_r, err_w = os.pipe()
        if job.terminal:
            with contextlib.suppress(FileNotFoundError):
                self.console_path.unlink()
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(str(self.console_path))
            listener.listen(1)
            args += ["--console-socket", str(self.console_path)]
            stdio = (os.open(os.devnull, os.O_RDONLY), err_w, err_w)
        else:
            out_r, out_w = os.pipe()
            if job.interactive:
                in_r, in_w = os.pipe()
                self.stdin_fd = in_w
            else:
                in_r = os.open(os.devnull, os.O_RDONLY)
            stdio = (in_r, out_w, err_w)
            self.streams = {out_r: "stdout", err_r: "stderr"}
        watch = linux.watch_directory(str(cdir.bundle)) if foreground else None
        try:
            self.runtime_pid = self.rt.spawn(*args, job.cid, stdio=stdio)
        finally:
            for fd in set(stdio):
                os.close(fd)
        self._prepare_supervision()  # while the runtime works
        if listener is not None:
            self.master = self._receive_console(listener, err_r)
            self.streams = {self.master: "stdout"}
        if watch is not None:
            self.waited = self.runtime_pid
            self.pid = self._wait_pid_file(watch, err_r)
        else:
            if self.runtime_status is None:
                self.runtime_status = os.waitpid(self.runtime_pid, 0)[1]
            if self.runtime_status != 0:
                raise self._failure(err_r)
            self.pid = self._read_pid() or 0
            self.waited = self.pid
        if job.terminal:
            os.close(err_r)

    def _prepare_supervision(self) -> None:
        """Load and open what supervision and clean-up need (the CLI never needs them)."""
        import selectors
        import shutil  # noqa: F401  (for auto_remove, loaded now rather than at the exit)

        from bolt.runtime.logs import LogWriter

        self.sel = selectors.DefaultSelector()
        self.logs = LogWriter(self.cdir.log)
        # From now on a dead creator no longer makes the row look abandoned.
        self.db.update(self.job.cid, **identity())

    def _failure(self, err_r: int) -> BoltError:
        message = runtime_message(_read_available(err_r))
        text = f"{self.rt.name} could not create the container: {message}"
        kind = command_error(message)
        if kind is None:
            return BoltError(text)
        return kind(text, hint=COMMAND_HINT)

    def _read_pid(self) -> int | None:
        try:
            return int(self.cdir.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _runtime_exited(self) -> bool:
        """Whether the runtime has exited (its status is kept in ``runtime_status``)."""
        if self.runtime_status is None:
            pid, status = os.waitpid(self.runtime_pid, os.WNOHANG)
            if pid == 0:
                return False
            self.runtime_status = status
        return True

    def _wait_pid_file(self, watch: int, err_r: int) -> int:
        """The init's pid, once the runtime has written it; the runtime's error if it
        exits without having created the container."""
        exited = os.pidfd_open(self.runtime_pid)
        try:
            while True:
                if "pid" in linux.written_names(watch):
                    pid = self._read_pid()
                    if pid:
                        return pid
                if self._runtime_exited():
                    pid = self._read_pid()  # a container that has already run and exited
                    if pid:
                        return pid
                    raise self._failure(err_r)
                select.select([watch, exited], [], [])
        finally:
            os.close(exited)
            # Closing an inotify descriptor waits for an RCU grace period (milliseconds,
            # measured up to 8 ms here): keep it until this monitor has said the container
            # exited (a restart, or the process's exit, closes it).
            self.spent_watch = watch

    def _receive_console(self, listener: socket.socket, err_r: int) -> int:
        listener.settimeout(0.05)
        try:
            while True:
                try:
                    conn, _ = listener.accept()
                    break
                except TimeoutError:
                    if self._runtime_exited():
                        listener.settimeout(0)  # it may have connected just before
                        try:
                            conn, _ = listener.accept()
                            break
                        except BlockingIOError:
                            raise self._failure(err_r) from None
            with conn:
                _, fds = linux.recv_fds(conn, 4096)
            if not fds:
                raise BoltError(f"{self.rt.name} did not pass a terminal")
            return fds[0]
        finally:
            listener.close()
            with contextlib.suppress(FileNotFoundError):
                self.console_path.unlink()

    # -- supervise ------------------------------------------------------------------------
    def supervise(self) -> int:
        import time

        for fd in self.streams:
            os.set_blocking(fd, False)
            self.sel.register(fd, EVENT_READ, "output")
        if self.client is not None:
            self.sel.register(self.client, EVENT_READ, "client")
        if self.waited == self.runtime_pid and self.runtime_status is not None:
            self.status = self.runtime_status  # a foreground run that has already ended
        pidfd = os.pidfd_open(self.waited)
        self.sel.register(pidfd, EVENT_READ, "exit")
        self.decoder = attach.Decoder()
        deadline: float | None = None
        while self.streams and (deadline is None or time.monotonic() < deadline):
            timeout = 0.02 if self.pending_in else 0.5 if deadline else 5.0
            if self.prober is not None:
                timeout = min(timeout, self.prober.wait())
            for key, _ in self.sel.select(timeout=timeout):
                if key.data == "output":
                    self._pump(int(key.fd))  # type: ignore[arg-type]
                elif key.data == "client":
                    self._from_client()
                elif key.data == "exit":
                    self.sel.unregister(pidfd)
                    os.close(pidfd)
                    self._wait_init()
            self._flush_stdin()
            self._reap()
            if self.prober is not None and self.status is None:
                self._health(self.prober.tick())
            if self.status is not None and deadline is None:
                deadline = time.monotonic() + 2.0  # drain what is still buffered
        if self.status is None:
            self._wait_init()
        self.logs.flush()
        return exit_code_of(self.status or 0)

    def _pump(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: the terminal's other side is gone
            data = b""
        stream = self.streams[fd]
        if not data:
            self.sel.unregister(fd)
            del self.streams[fd]
            if fd != self.master:
                os.close(fd)
            return
        self.logs.write(stream, data)
        self.send(attach.OUT if stream == "stdout" else attach.ERR, data)

    def _from_client(self) -> None:
        if self.client is None:  # dropped earlier in this round
            return
        try:
            data = self.client.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.drop_client()
            self.eof_after_pending = True  # the container still gets what was sent
            return
        for kind, payload in self.decoder.feed(data):
            if kind == attach.IN:
                self.pending_in += payload
            elif kind == attach.IN_EOF:
                self.eof_after_pending = True
            elif kind == attach.SIGNAL:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, int(payload))
            elif kind == attach.RESIZE and self.master is not None:
                import fcntl
                import struct
                import termios

                rows, cols = struct.unpack("!HH", payload)
                fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def _flush_stdin(self) -> None:
        """Write what the container will take now; never block (its output must flow)."""
        fd = self.master if self.master is not None else self.stdin_fd
        if fd is None:
            self.pending_in.clear()
            return
        os.set_blocking(fd, False)
        while self.pending_in:
            try:
                written = os.write(fd, self.pending_in[:65536])
            except BlockingIOError:
                break
            except OSError:
                self.pending_in.clear()
                self._close_stdin()
                return
            del self.pending_in[:written]
        if not self.pending_in and self.eof_after_pending:
            self._close_stdin()
        # Back-pressure: stop reading the client while the container lags behind.
        if self.client is not None:
            paused = len(self.pending_in) > (1 << 20)
            registered = self.client in [k.fileobj for k in self.sel.get_map().values()]
            if paused and registered:
                self.sel.unregister(self.client)
            elif not paused and not registered:
                self.sel.register(self.client, EVENT_READ, "client")

    def _close_stdin(self) -> None:
        if self.stdin_fd is not None:
            os.close(self.stdin_fd)
            self.stdin_fd = None

    def _wait_init(self) -> None:
        if self.status is None:
            try:
                _, self.status = os.waitpid(self.waited, 0)
            except ChildProcessError:
                self.status = 255 << 8  # reaped elsewhere: the code is unknown

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.waited and self.status is None:
                self.status = status
            elif self.prober is not None:
                self._health(self.prober.finished(pid, status)[1])

    def _health(self, change: str | None) -> None:
        if change is not None:
            self.db.update(self.job.cid, health=change)
            self.db.add_event(self.job.cid, self._name(), "health", health=change)

    # -- finish ---------------------------------------------------------------------------
    def finish(self, code: int) -> None:
        """Record the code, release the container, and only then say it exited: whoever
        sees "exited" may start it again at once, so nothing of this run may be left."""
        if not self.job.auto_remove:  # a removed container keeps no record
            with contextlib.suppress(OSError):
                self.cdir.exit_file.write_text(str(code))
        name = self._name()
        events: list[tuple[str, str, str, dict[str, object]]] = [
            (self.job.cid, name, "exited", {"exit_code": code})
        ]
        if self.job.auto_remove:  # the row goes with its events, in one commit
            self.cleanup([*events, (self.job.cid, name, "removed", {})])
        else:
            self.cleanup()
            with self.db.batch():
                self.db.update(self.job.cid, status="exited", exit_code=code, finished=now())
                self.db.add_events(events)
        self.send(attach.EXIT, str(code).encode())
        self.sweep()

    def stopped_by_user(self) -> bool:
        row = self.db.find(self.job.cid)
        return row is None or bool(row.details_dict.get("stopped"))

    def between_runs(self, code: int, restarts: int) -> None:
        """The run ended and another follows: the bundle and root file system stay."""
        with contextlib.suppress(BoltError, OSError):
            self.rt.delete(self.job.cid, force=True)
        if self.spent_watch is not None:  # off the start path now
            os.close(self.spent_watch)
            self.spent_watch = None
        self.logs.flush()
        self.db.update(
            self.job.cid, status="restarting", exit_code=code, restart_count=restarts,
            pid=None, pid_start=None, health="starting" if self.job.healthcheck else None,
        )  # fmt: skip
        name = self._name()
        self.db.add_event(self.job.cid, name, "exited", exit_code=code)
        self.db.add_event(self.job.cid, name, "restarted", restart_count=restarts)

    def sleep_unless_stopped(self, delay: float) -> bool:
        """Wait out the back-off; False if a user stopped the container meanwhile."""
        import time

        end = time.monotonic() + delay
        while time.monotonic() < end:
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))
            if self.stopped_by_user():
                return False
        return True

    def _name(self) -> str:
        """The container's name (read each time: ``bolt rename`` may change it)."""
        row = self.db.conn.execute("SELECT name FROM containers WHERE id=?", (self.job.cid,))
        found = row.fetchone()
        return str(found[0]) if found else self.job.cid[:12]

    def _move_out(self) -> Path | None:
        """Take the container's directory out of ``containers/`` at once; it is unmounted
        and its files deleted by ``sweep`` after the exit is reported (measured: the
        deletion takes 7-16 ms of metadata writes on a loaded machine, one rename ~0.2 ms)."""
        target = removed_dir(self.root) / self.job.cid
        try:
            target.parent.mkdir(exist_ok=True)
            os.rename(self.cdir.path, target)  # the mounted root file system moves with it
        except OSError:
            rootfs.delete_container_dir(self.cdir.path)
            return None
        return target

    def sweep(self) -> None:
        """Unmount and delete what ``cleanup`` moved out, after the client has heard the
        outcome (the unmount is ~0.5 ms of the exit path otherwise)."""
        if self.removed is not None:
            rootfs.delete_container_dir(self.removed)
            self.removed = None

    def cleanup(self, events: list[tuple[str, str, str, dict[str, object]]] | None = None) -> None:
        """Delete what the runtime left of the container (a foreground run leaves nothing)
        and unmount; with auto_remove, remove it all: network, anonymous volumes, and the
        row (with ``events`` recorded in the same commit)."""
        with contextlib.suppress(BoltError, OSError):
            self.rt.delete(self.job.cid, force=True)
        if not self.job.auto_remove:
            with contextlib.suppress(OSError):
                rootfs.unmount(self.cdir.rootfs)
        else:  # its root file system is unmounted by ``sweep``, after the exit is reported
            from bolt import volumes

            row = self.db.find(self.job.cid)
            if self.cdir.network_record.exists():  # netavark's module loads subprocess
                from bolt.runtime import netavark

                with contextlib.suppress(BoltError, OSError):
                    netavark.teardown_container(self.cdir)
            self.removed = self._move_out()
            for volume in (row.details_dict.get("anonymous_volumes") or ()) if row else ():
                with contextlib.suppress(BoltError, OSError):
                    volumes.remove(self.root, volume)
            with self.db.batch():
                self.db.delete(self.job.cid)
                if events:
                    self.db.add_events(events)


def _read_available(fd: int) -> str:
    os.set_blocking(fd, False)
    chunks = []
    with contextlib.suppress(OSError):
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode("utf-8", "replace")


def identity() -> dict[str, object]:
    """This monitor's columns: a recycled pid must never pass for it."""
    return {"monitor_pid": os.getpid(), "monitor_start": linux.proc_start_time(os.getpid())}
