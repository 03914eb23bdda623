"""``Engine``: the container manager that the CLI, Surge and the library share.

    with Engine(root) as eng:
        info = eng.run(ContainerIntent(image="busybox", command=["sleep", "9"]), name="x")
        eng.stop("x"); eng.remove("x")

Every call opens what it needs, reconciles the rows it touches with the live processes,
and is safe from a thread (``asyncio.to_thread``).  Monitors are forked by the engine's
monitor server (``bolt.runtime.monitor_server``: one small process started on first use),
so neither a large nor a threaded caller forks itself.  The async helpers poll the event
table, so no thread waits per container.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from bolt.engine import containers as lifecycle
from bolt.engine import operations
from bolt.engine.containers import Conflict
from bolt.errors import BoltError, InvalidInput
from bolt.runtime import attach
from bolt.runtime.driver import RUNTIME_EXEC_FAILED, command_error, runtime_message
from bolt.runtime.intent import ContainerIntent, from_dict
from bolt.runtime.monitor_server import MonitorServer
from bolt.state.db import ContainerRow, StateDB

List = list  # the builtin, for annotations after ``Engine.list``
POLL = 0.05  # seconds between looks at the event table while following it


def default_root() -> Path:
    return Path(os.environ.get("BOLT_ROOT") or "/var/lib/bolt")


class ContainerInfo(NamedTuple):
    id: str
    name: str
    image: str
    status: str
    exit_code: int | None
    health: str | None
    restart_count: int
    created: float
    started: float | None
    finished: float | None
    labels: dict[str, str]
    spec_hash: str
    intent: ContainerIntent | None
    networks: dict[str, str]
    ports: list[dict[str, Any]]
    pid: int | None
    error: str | None

    @classmethod
    def of(cls, row: ContainerRow) -> ContainerInfo:
        d = row.describe()
        try:
            intent: ContainerIntent | None = from_dict(json.loads(row.intent))
        except (TypeError, ValueError, KeyError):
            intent = None  # a row written before intents were stored
        return cls(
            id=row.id,
            name=row.name,
            image=row.image,
            status=row.status,
            exit_code=row.exit_code,
            health=row.health,
            restart_count=row.restart_count,
            created=row.created,
            started=row.started,
            finished=row.finished,
            labels=row.labels_dict,
            spec_hash=row.spec_hash,
            intent=intent,
            networks=dict(d["networks"]),
            ports=list(d["ports"]),
            pid=d["pid"],
            error=d["error"],
        )


class EngineEvent(NamedTuple):
    time: float
    id: str  # the container's
    name: str
    type: str  # created started exited health restarted removed paused unpaused ...
    attributes: dict[str, Any]
    seq: int = 0

    @property
    def container(self) -> str:
        return self.id


class LogLine(NamedTuple):
    time: str
    stream: str
    text: str


class ExecResult(NamedTuple):
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Engine:
    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(os.path.abspath(root)) if root is not None else default_root()
        self._db: StateDB | None = None
        self._lock = threading.Lock()
        self._monitors: MonitorServer | None = None
        self._local = threading.local()  # each thread's connection for starting containers
        self._connections: list[StateDB] = []
        self._oneshots: collections.Counter[str] = collections.Counter()  # runs per image

    # -- plumbing -----------------------------------------------------------------------
    @property
    def db(self) -> StateDB:
        if self._db is None:
            self._db = StateDB(self.root)
        return self._db

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
            self._local = threading.local()
        for db in connections:
            db.close()
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._monitors is not None:
            self._monitors.close()
            self._monitors = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fresh(self) -> StateDB:
        """A connection of the calling thread's own (closed by the caller)."""
        return StateDB(self.root)

    def _thread_db(self) -> StateDB:
        """The calling thread's connection for starting containers, kept until ``close``.

        Opening one per container costs ~0.5 ms; and while one stays open, no other
        connection (a monitor's, a query's) is the last to close, which would make SQLite
        checkpoint and delete the write-ahead log each time (~0.7 ms, with fsyncs)."""
        db: StateDB | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = StateDB(self.root)
            with self._lock:
                self._connections.append(db)
        return db

    def _row(self, db: StateDB, ref: str) -> ContainerRow:
        return lifecycle.reconcile(self.root, db, db.get(ref))

    def _with_row(self, ref: str, fn: Callable[[StateDB, ContainerRow], Any]) -> Any:
        db = self._fresh()
        try:
            return fn(db, self._row(db, ref))
        finally:
            db.close()

    def _monitor_server(self) -> MonitorServer:
        """Monitors come from this engine's monitor server (started on first use): a
        small single-threaded process that forks them cheaply, whatever this one is."""
        with self._lock:
            if self._monitors is None:
                self._monitors = MonitorServer(self.root)
            return self._monitors

    def _launched(self, launched: lifecycle.Launched) -> ContainerInfo:
        with launched.sock, self._lost_monitor(launched):
            lifecycle.await_started(launched.sock)
        self._monitor_server().replenish()
        return self.inspect(launched.row.id)

    @contextlib.contextmanager
    def _lost_monitor(self, launched: lifecycle.Launched) -> Iterator[None]:
        """A monitor that vanishes before taking the container over leaves it failed,
        not "creating" in this process's name (which ``rm -f`` would wait on)."""
        try:
            yield
        except lifecycle.MonitorLost:
            lifecycle.abandon_if_lost(self.root, self._thread_db(), launched.row)
            raise

    # -- containers ---------------------------------------------------------------------
    def warm_up(self) -> None:
        """Start the monitor server now rather than inside the first container start (an
        interpreter's boot, which every start waiting on that first one would pay)."""
        self._monitor_server().start()

    def create(
        self, intent: ContainerIntent, name: str | None = None, *, hold_terminal: bool = False
    ) -> ContainerInfo:
        """Created, not started (the runtime's ``create``; ``start`` runs it).  See
        ``run`` for ``hold_terminal``."""
        if not hold_terminal:
            _no_terminal(intent)
        fork = self._monitor_server()
        return self._launched(
            lifecycle.launch(
                self.root, intent, name=name, start=False, fork=fork, db=self._thread_db()
            )
        )

    def run(
        self, intent: ContainerIntent, name: str | None = None, *, hold_terminal: bool = False
    ) -> ContainerInfo:
        """Create and start, detached.  A ``tty`` or ``interactive`` intent needs
        ``hold_terminal``: nothing attaches, the monitor holds the terminal (or the open
        end of stdin) and logs the output, as ``docker run -dit`` leaves it."""
        if not hold_terminal:
            _no_terminal(intent)
        fork = self._monitor_server()
        return self._launched(
            lifecycle.launch(self.root, intent, name=name, fork=fork, db=self._thread_db())
        )

    def start(self, ref: str) -> ContainerInfo:
        """created -> running, or exited/failed -> running again; ``Conflict`` when a
        concurrent caller started it first."""
        db = self._fresh()
        try:
            row = self._row(db, ref)
            if row.status == "created":
                return ContainerInfo.of(lifecycle.start_created(self.root, db, row))
        finally:
            db.close()
        fork = self._monitor_server()
        return self._launched(lifecycle.start_again(self.root, row.id, fork=fork))

    def stop(self, ref: str, timeout: float | None = None) -> ContainerInfo:
        return self._with_row(
            ref, lambda db, row: ContainerInfo.of(lifecycle.stop(self.root, db, row, timeout))
        )

    def kill(self, ref: str, signal: str | int = "KILL") -> None:
        self._with_row(ref, lambda db, row: lifecycle.kill(self.root, db, row, signal))

    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        self._with_row(ref, lambda db, row: lifecycle.remove(self.root, db, row, force, volumes))

    def wait(self, ref: str, timeout: float | None = None) -> int | None:
        return self._with_row(  # type: ignore[no-any-return]
            ref, lambda db, row: lifecycle.wait(self.root, db, row, timeout)
        )

    def pause(self, ref: str) -> ContainerInfo:
        from bolt.engine import freezer

        return self._with_row(
            ref, lambda db, row: ContainerInfo.of(freezer.pause(self.root, db, row))
        )  # type: ignore[no-any-return]

    def unpause(self, ref: str) -> ContainerInfo:
        from bolt.engine import freezer

        return self._with_row(
            ref, lambda db, row: ContainerInfo.of(freezer.unpause(self.root, db, row))
        )  # type: ignore[no-any-return]

    def exec(
        self,
        ref: str,
        argv: Sequence[str] | str,
        env: Sequence[str] = (),
        user: str | None = None,
        workdir: str | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        """Run ``argv`` (a list, or a string for ``/bin/sh -c``) in the running container."""
        import subprocess

        args = ["/bin/sh", "-c", argv] if isinstance(argv, str) else list(argv)
        if not args:
            raise InvalidInput("exec: no command given")

        def command(db: StateDB, row: ContainerRow) -> list[str]:
            if row.status != "running":
                raise InvalidInput(f"container {row.name} is {row.status}, not running")
            return lifecycle.runtime_of(self.root, row).exec_argv(
                row.id,
                args,
                env=operations.exec_env(self.root, row, tuple(env)),
                cwd=workdir,
                user=operations.exec_user(self.root, row, user),
            )

        full = self._with_row(ref, command)
        proc = subprocess.run(full, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        stderr = proc.stderr.decode(errors="replace")
        code = proc.returncode
        if code == RUNTIME_EXEC_FAILED:  # the runtime's own failure: say 127/126 if it is one
            kind = command_error(runtime_message(stderr))
            code = int(kind.exit_code) if kind is not None else code
        return ExecResult(code, proc.stdout.decode(errors="replace"), stderr)

    def run_oneshot(
        self,
        intent: ContainerIntent,
        name: str | None = None,
        stream: Callable[[str, str], None] | None = None,
    ) -> int:
        """Run to completion in the foreground; ``stream(stream_name, text)`` gets the
        output as it comes; the container's exit code."""
        _no_terminal(intent)
        fork = self._monitor_server()
        launched = lifecycle.launch(self.root, intent, name=name, fork=fork, db=self._thread_db())
        try:
            with launched.sock, self._lost_monitor(launched):
                return _relay_until_exit(launched.sock, stream)
        finally:
            fork.replenish()
            self._want_spare(intent, launched)

    def _want_spare(self, intent: ContainerIntent, launched: lifecycle.Launched) -> None:
        """From an image's second one-shot run removed on exit on, the monitor server keeps
        a spare root file system of it mounted for the next one (``bolt.runtime.spares``;
        measured in docs/benchmarks.md); it unmounts them when this engine closes."""
        image_id = launched.row.image_id
        if not intent.auto_remove or not image_id or not launched.layers:
            return
        with self._lock:
            self._oneshots[image_id] += 1
            again = self._oneshots[image_id] > 1
        if again:
            self._monitor_server().spare(image_id, launched.layers)

    def list(
        self, all: bool = True, labels: Mapping[str, str] | None = None
    ) -> list[ContainerInfo]:
        db = self._fresh()
        try:
            rows = db.with_labels(dict(labels)) if labels else db.all()
            rows = [lifecycle.reconcile(self.root, db, r) for r in rows]
        finally:
            db.close()
        rows = [r for r in rows if r.status != "removed"]
        if not all:
            rows = [r for r in rows if lifecycle.is_live(r)]
        return [ContainerInfo.of(r) for r in rows]

    def inspect(self, ref: str) -> ContainerInfo:
        return self._with_row(ref, lambda db, row: ContainerInfo.of(row))  # type: ignore[no-any-return]

    def logs(self, ref: str, follow: bool = False, tail: int | None = None) -> Iterator[LogLine]:
        from bolt.engine.logs import follow_lines

        db = self._fresh()
        try:
            row = db.get(ref)
            for record in follow_lines(self.root, db, row, tail=tail, follow=follow):
                yield LogLine(record["time"], record["stream"], record["log"])
        finally:
            db.close()

    def prune(self) -> List[str]:
        db = self._fresh()
        try:
            return operations.prune(self.root, db)
        finally:
            db.close()

    # -- events -------------------------------------------------------------------------
    def _start_seq(self, db: StateDB, since: float | None) -> int:
        return db.last_event() if since is None else db.first_event_since(since)

    def events(self, since: float | None = None, follow: bool = True) -> Iterator[EngineEvent]:
        """Events from ``since`` (a time; default: from now on), following new ones."""
        db = self._fresh()
        try:
            seq = self._start_seq(db, since)
            while True:
                rows = db.events_after(seq)
                for r in rows:
                    seq = r[0]
                    yield _event(r)
                if not rows:
                    if not follow:
                        return
                    time.sleep(POLL)
        finally:
            db.close()

    async def aevents(self, since: float | None = None) -> AsyncIterator[EngineEvent]:
        db = self._fresh()
        try:
            seq = self._start_seq(db, since)
            while True:
                rows = db.events_after(seq)
                for r in rows:
                    seq = r[0]
                    yield _event(r)
                if not rows:
                    await asyncio.sleep(POLL)
        finally:
            db.close()

    async def await_exit(self, ref: str, timeout: float | None = None) -> int | None:
        """The exit code once the container has exited (and will not be restarted)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            info = await asyncio.to_thread(self.inspect, ref)
            if info.status in ("exited", "failed"):
                return info.exit_code
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{info.name} is still {info.status}")
            await asyncio.sleep(POLL * 2)

    async def await_health(self, ref: str, status: str = "healthy", timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            info = await asyncio.to_thread(self.inspect, ref)
            if info.health == status:
                return
            if info.status in ("exited", "failed"):
                raise BoltError(f"{info.name} exited before it became {status}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{info.name} is {info.health}, not {status}")
            await asyncio.sleep(POLL * 2)

    # -- networks and volumes -------------------------------------------------------------
    def network_create(
        self,
        name: str,
        subnet: str | None = None,
        internal: bool = False,
        labels: Mapping[str, str] | None = None,
    ) -> Any:
        from bolt.engine import networks

        with self._lock:
            return networks.create(self.root, self.db, name, subnet, internal, dict(labels or {}))

    def network_remove(self, name: str) -> None:
        from bolt.engine import networks

        with self._lock:
            networks.remove(self.root, self.db, name)

    def network_list(self, labels: Mapping[str, str] | None = None) -> List[Any]:
        from bolt.engine import networks

        with self._lock:
            return networks.list_networks(self.db, dict(labels or {}))

    def network_inspect(self, name: str) -> Any:
        from bolt.engine import networks

        with self._lock:
            return networks.get(self.db, name)

    def volume_create(self, name: str, labels: Mapping[str, str] | None = None) -> Path:
        from bolt import volumes

        return volumes.create(self.root, name, dict(labels or {}))

    def volume_remove(self, name: str) -> None:
        from bolt import volumes

        volumes.remove(self.root, name)

    def volume_list(self, labels: Mapping[str, str] | None = None) -> List[dict[str, Any]]:
        from bolt import volumes

        return volumes.listing(self.root, dict(labels or {}))


def _no_terminal(intent: ContainerIntent) -> None:
    if intent.tty or intent.interactive:
        raise InvalidInput("the library API does not attach a terminal or stdin")


def _event(r: tuple[Any, ...]) -> EngineEvent:
    return EngineEvent(
        time=r[1], id=r[2], name=r[3], type=r[4], attributes=json.loads(r[5]), seq=r[0]
    )


def _relay_until_exit(sock: Any, stream: Callable[[str, str], None] | None) -> int:
    decoder = attach.Decoder()
    while True:
        data = sock.recv(65536)
        if not data:
            raise lifecycle.MonitorLost("the container's monitor exited unexpectedly")
        for kind, payload in decoder.feed(data):
            if kind == attach.ERROR:
                raise attach.error_of(payload)
            if kind in (attach.OUT, attach.ERR) and stream is not None:
                stream(
                    "stdout" if kind == attach.OUT else "stderr", payload.decode(errors="replace")
                )
            elif kind == attach.EXIT:
                return int(payload)


__all__ = ["Conflict", "ContainerInfo", "Engine", "EngineEvent", "ExecResult", "LogLine"]
