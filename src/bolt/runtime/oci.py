"""``bolt.runtime.oci.Container``: the seed's asyncio container API, over ``bolt.engine.Engine``.

    c = await Container.create("busybox", ["sh", "-c", "exit 3"], name="job")
    await c.start()
    code = await c.wait()          # 3

``Container(name)`` attaches to an existing container (one ``bolt run`` made, or a
project service's); it raises ``NotFound`` when there is none.  Blocking work runs in a
thread with an engine of its own, so this is safe in threaded and asyncio programs.

(The module keeps the seed's path; the Engine it uses sits above the low runtime.)
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from bolt.engine.api import Engine, ExecResult
from bolt.errors import BoltError, NotFound
from bolt.runtime.intent import ContainerIntent

T = TypeVar("T")

__all__ = ["Container", "ExecResult"]


# Surge's labels (bolt.surge.intents), spelled here: the runtime does not import Surge.
_SERVICE, _NUMBER, _ONEOFF, _PROJECT = (
    "bolt.surge.service", "bolt.surge.number", "bolt.surge.oneoff", "bolt.surge.project",
)  # fmt: skip


def _service_container(eng: Engine, service: str) -> Any:
    """The first replica of a project service named ``service`` (the seed's
    ``Container::new("driver-updater")``); NotFound when none, or when several projects
    have one."""
    found = [
        c
        for c in eng.list(labels={_SERVICE: service, _ONEOFF: "false"})
        if c.labels.get(_NUMBER) == "1"
    ]
    projects = sorted({c.labels.get(_PROJECT, "") for c in found})
    if len(projects) > 1:
        raise NotFound(
            f"container {service!r}: several projects have a service of that name "
            f"({', '.join(projects)})",
            hint="give the container's full name",
        )
    if not found:
        raise NotFound(f"no container or project service named {service!r}")
    return found[0]


def default_root() -> Path:
    return Path(os.environ.get("BOLT_ROOT") or "/var/lib/bolt")


def _text_forms(options: dict[str, Any]) -> dict[str, Any]:
    """Accept the flag-like forms too: ``memory="64m"``, ``env=["K=V"]``,
    ``volumes=["data:/d"]``, ``tmpfs=["/t"]``, ``network="host"``, ``ports=["8080:80"]``."""
    from bolt.runtime import flags

    out = dict(options)
    if isinstance(out.get("memory"), str):
        out["memory"] = flags.parse_size(out["memory"], "memory")
    if isinstance(out.get("env"), (list, tuple)):
        out["env"], host = flags.split_env(list(out["env"]), "env")
        out["env_host"] = tuple(host)
    mounts = list(out.pop("mounts", ()))
    mounts += [flags.parse_volume(v, "volumes") for v in out.pop("volumes", ())]
    mounts += [flags.parse_tmpfs(t, "tmpfs") for t in out.pop("tmpfs", ())]
    if mounts:
        out["mounts"] = tuple(mounts)
    if "network" in out:
        out["network_mode"] = out.pop("network")
    if out.get("ports"):
        out["ports"] = tuple(
            flags.parse_port(p, "ports") if isinstance(p, str) else p for p in out["ports"]
        )
    return out


class Container:
    def __init__(self, name: str, *, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        with Engine(self.root) as eng:
            try:
                info = eng.inspect(name)
            except NotFound:
                info = _service_container(eng, name)
        self.id = info.id
        self.name = info.name

    async def _call(self, fn: Callable[[Engine], T]) -> T:
        def go() -> T:
            with Engine(self.root) as eng:
                return fn(eng)

        return await asyncio.to_thread(go)

    @classmethod
    async def create(
        cls,
        image: str,
        command: Sequence[str] = (),
        *,
        root: Path | str | None = None,
        name: str | None = None,
        **options: Any,
    ) -> Container:
        """Create (not start) a container; ``options`` are ``ContainerIntent`` fields
        (env, mounts, devices, gpus, memory, network_mode, labels, ...)."""
        base = Path(root) if root is not None else default_root()
        intent = ContainerIntent(image=image, command=list(command), **_text_forms(options))

        def go() -> str:
            with Engine(base) as eng:
                return eng.create(intent, name=name).id

        return cls(await asyncio.to_thread(go), root=base)

    @classmethod
    async def run(cls, image: str, command: Sequence[str] = (), **options: Any) -> Container:
        """create() then start()."""
        c = await cls.create(image, command, **options)
        await c.start()
        return c

    async def start(self) -> None:
        """Start a created container, or run a stopped one again."""
        await self._call(lambda eng: eng.start(self.id))

    async def wait(self, timeout: float | None = None) -> int:
        """The container's exit code, once it has exited."""
        code = await self._call(lambda eng: eng.wait(self.id, timeout))
        if code is None:
            raise BoltError(f"the exit code of {self.name} is unknown (its monitor was killed)")
        return code

    async def stop(self, timeout: float = 10) -> int | None:
        return await self._call(lambda eng: eng.stop(self.id, timeout).exit_code)

    async def kill(self, sig: str | int = signal.SIGKILL) -> None:
        number = int(sig) if isinstance(sig, signal.Signals) else sig
        await self._call(lambda eng: eng.kill(self.id, number))

    async def remove(self, force: bool = False) -> None:
        await self._call(lambda eng: eng.remove(self.id, force))

    async def inspect(self) -> dict[str, Any]:
        info = await self._call(lambda eng: eng.inspect(self.id))
        return {k: v for k, v in info._asdict().items() if k != "intent"}

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
        return await self._call(
            lambda eng: eng.exec(self.id, cmd, env=env, user=user, workdir=workdir)
        )

    async def logs(
        self, *, follow: bool = False, tail: int | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Log records (time, stream, log), following new ones while it runs if asked."""
        eng = Engine(self.root)
        it = eng.logs(self.id, follow=follow, tail=tail)
        try:
            while True:
                line = await asyncio.to_thread(next, it, None)
                if line is None:
                    return
                yield {"time": line.time, "stream": line.stream, "log": line.text}
        finally:
            eng.close()
