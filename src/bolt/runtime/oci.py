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
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bolt.errors import BoltError, InvalidInput
from bolt.runtime import attach, engine
from bolt.runtime.request import RunRequest
from bolt.state.db import ContainerRow, StateDB, now

T = TypeVar("T")


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
        db = StateDB(self.root)
        try:
            row = db.get(name)
        finally:
            db.close()
        self.id = row.id
        self.name = row.name

    async def _call(self, fn: Callable[[StateDB, ContainerRow], T]) -> T:
        """Run ``fn(db, row)`` in a thread with a connection of its own (closed after)."""

        def go() -> T:
            db = StateDB(self.root)
            try:
                return fn(db, engine.reconcile(self.root, db, db.get(self.id)))
            finally:
                db.close()

        return await asyncio.to_thread(go)

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
        """Start a created container, or run a stopped one again."""

        def go(db: StateDB, row: ContainerRow) -> bool:
            if row.status == "created":
                engine.runtime_of(self.root, row).start(row.id)
                db.update(row.id, status="running", started=now())
                return False
            if row.status in ("exited", "failed"):
                return True
            raise InvalidInput(f"container {row.name} is already {row.status}")

        if await self._call(go):
            launched = await asyncio.to_thread(engine.start_again, self.root, self.id, fork=False)
            await asyncio.to_thread(_await_created, launched.sock)

    async def wait(self, timeout: float | None = None) -> int:
        """The container's exit code, once it has exited."""
        code = await self._call(lambda db, row: engine.wait(self.root, db, row, timeout))
        if code is None:
            raise BoltError(f"the exit code of {self.name} is unknown (its monitor was killed)")
        return code

    async def stop(self, timeout: float = 10) -> int | None:
        return await self._call(lambda db, row: engine.stop(self.root, db, row, timeout).exit_code)

    async def kill(self, sig: str | int = signal.SIGKILL) -> None:
        number = int(sig) if isinstance(sig, signal.Signals) else sig
        await self._call(lambda db, row: engine.kill(self.root, db, row, number))

    async def remove(self, force: bool = False) -> None:
        await self._call(lambda db, row: engine.remove(self.root, db, row, force))

    async def inspect(self) -> dict[str, Any]:
        return await self._call(lambda db, row: row.describe())

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

        def command(db: StateDB, row: ContainerRow) -> list[str]:
            if row.status != "running":
                raise InvalidInput(f"container {row.name} is not running")
            return engine.runtime_of(self.root, row).exec_argv(
                row.id,
                argv,
                env=engine.exec_env(self.root, row, tuple(env)),
                cwd=workdir,
                user=engine.exec_user(self.root, row, user),
            )

        full = await self._call(command)
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

        db = await asyncio.to_thread(StateDB, self.root)
        try:
            it = follow_lines(self.root, db, db.get(self.id), tail=tail, follow=follow)
            sentinel = object()
            while True:
                record = await asyncio.to_thread(next, it, sentinel)
                if record is sentinel:
                    return
                yield record  # type: ignore[misc]
        finally:
            db.close()


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
