"""``bolt.runtime.oci.Container``: the asyncio library API over Bolt's engine.

    c = await Container.create("busybox", ["sh", "-c", "exit 3"], name="job")
    await c.start()
    code = await c.wait()          # 3

``Container(name)`` attaches to an existing container (one ``bolt run`` made, or a
project service's); it raises ``NotFound`` when there is none.  Blocking work runs in a
thread; the monitor is started as a fresh interpreter, so this is safe in threaded and
asyncio programs.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bolt.errors import BoltError, InvalidInput
from bolt.runtime import attach, engine
from bolt.runtime.request import RunRequest
from bolt.state.db import ContainerRow, StateDB, now


def default_root() -> Path:
    return Path(os.environ.get("BOLT_ROOT") or "/var/lib/bolt")


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Container:
    def __init__(self, name: str, *, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        row = self._db().get(name)
        self.id = row.id
        self.name = row.name

    def _db(self) -> StateDB:
        return StateDB(self.root)

    def _row(self, db: StateDB) -> ContainerRow:
        return engine.reconcile(self.root, db, db.get(self.id))

    @classmethod
    async def create(
        cls,
        image: str,
        command: Sequence[str] = (),
        *,
        root: Path | str | None = None,
        **options: Any,
    ) -> Container:
        """Create (not start) a container; ``options`` are ``RunRequest`` fields
        (name, env, volumes, devices, gpus, memory, network, labels, ...)."""
        base = Path(root) if root is not None else default_root()
        request = RunRequest(image=image, command=list(command), **options)
        if request.tty or request.interactive:
            raise InvalidInput("the library API does not attach a terminal or stdin")
        launched = await asyncio.to_thread(engine.launch, base, request, start=False, fork=False)
        await asyncio.to_thread(_await_created, launched.sock)
        return cls(launched.row.id, root=base)

    @classmethod
    async def run(cls, image: str, command: Sequence[str] = (), **options: Any) -> Container:
        """create() then start()."""
        c = await cls.create(image, command, **options)
        await c.start()
        return c

    async def start(self) -> None:
        def go() -> None:
            db = self._db()
            row = self._row(db)
            if row.status != "created":
                raise InvalidInput(
                    f"container {row.name} is {row.status}; only a created container can start"
                )
            engine.runtime_of(self.root, row).start(row.id)
            db.update(row.id, status="running", started=now())

        await asyncio.to_thread(go)

    async def wait(self, timeout: float | None = None) -> int:
        """The container's exit code, once it has exited."""

        def go() -> int | None:
            db = self._db()
            return engine.wait(self.root, db, db.get(self.id), timeout)

        code = await asyncio.to_thread(go)
        if code is None:
            raise BoltError(f"the exit code of {self.name} is unknown (its monitor was killed)")
        return code

    async def stop(self, timeout: float = 10) -> int | None:
        def go() -> int | None:
            db = self._db()
            return engine.stop(self.root, db, db.get(self.id), timeout).exit_code

        return await asyncio.to_thread(go)

    async def kill(self, sig: str | int = signal.SIGKILL) -> None:
        def go() -> None:
            db = self._db()
            engine.kill(
                self.root, db, db.get(self.id), int(sig) if isinstance(sig, signal.Signals) else sig
            )

        await asyncio.to_thread(go)

    async def remove(self, force: bool = False) -> None:
        def go() -> None:
            db = self._db()
            engine.remove(self.root, db, db.get(self.id), force)

        await asyncio.to_thread(go)

    async def inspect(self) -> dict[str, Any]:
        def go() -> dict[str, Any]:
            from bolt.cli.containers import describe

            return describe(self._row(self._db()))

        return await asyncio.to_thread(go)

    async def status(self) -> str:
        return str((await self.inspect())["status"])

    async def exec(
        self,
        cmd: str | Sequence[str],
        *,
        env: Sequence[str] = (),
        workdir: str | None = None,
        user: str | None = None,
    ) -> ExecResult:
        """Run ``cmd`` (a list, or a string for ``/bin/sh -c``) in the running container."""
        argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        db = self._db()
        row = await asyncio.to_thread(self._row, db)
        if row.status != "running":
            raise InvalidInput(f"container {row.name} is not running")
        full = engine.runtime_of(self.root, row).exec_argv(
            row.id, argv, env=env, cwd=workdir, user=engine.exec_user(self.root, row, user)
        )
        proc = await asyncio.create_subprocess_exec(
            *full,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        return ExecResult(
            proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")
        )

    async def logs(
        self, *, follow: bool = False, tail: int | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Log records (time, stream, log), following new ones while it runs if asked."""
        from bolt.runtime.logs import follow_lines

        db = self._db()
        it = follow_lines(self.root, db, db.get(self.id), tail=tail, follow=follow)
        sentinel = object()
        while True:
            record = await asyncio.to_thread(next, it, sentinel)
            if record is sentinel:
                return
            yield record  # type: ignore[misc]


def _await_created(sock: Any) -> None:
    decoder = attach.Decoder()
    with sock:
        while True:
            data = sock.recv(65536)
            if not data:
                raise BoltError("the container's monitor exited before creating the container")
            for kind, payload in decoder.feed(data):
                if kind == attach.ERROR:
                    raise BoltError(payload.decode(errors="replace"))
                if kind == attach.STARTED:
                    return
