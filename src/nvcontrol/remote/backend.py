"""The backend seam: the CLI calls one interface, served by a local ``GpuManager`` or, with
``--remote``, by :class:`RemoteManager`, which sends the same method calls to an agent.

Method names and arguments are ``GpuManager``'s own (bound by its signatures); results come
back as the same objects (:mod:`nvcontrol.remote.api` decodes them), transaction progress
arrives as events and is handed to the caller's ``progress`` callback, and prompt answers
travel to the agent's running transaction.  Argv never crosses the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from basis.errors import Unsupported
from nvcontrol.control.manager import GpuManager
from nvcontrol.control.runner import TxOptions
from nvcontrol.remote import api
from nvcontrol.remote.target import RemoteTarget, TrustOptions, set_target, target

__all__ = ["RemoteManager", "RemoteTarget", "TrustOptions", "open_backend", "set_target", "target"]


class RemoteManager:
    """``GpuManager``'s methods, run on an agent."""

    def __init__(self, client: Any, endpoint: str) -> None:
        self.client = client
        self.endpoint = endpoint

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = api.METHODS.get(name)
        local = getattr(GpuManager, name, None)
        if method is None or local is None:
            raise Unsupported(
                f"this command is not available with --remote (it needs `{name}` on this host)",
                hint="run it on the agent's host",
            )

        async def call(*args: Any, **kwargs: Any) -> Any:
            params = api.bind(local, (None, *args), kwargs)
            options = next((a for a in (*args, *kwargs.values()) if isinstance(a, TxOptions)), None)
            return await self.call(name, params, options)

        return call

    async def call(
        self, name: str, params: dict[str, Any], options: TxOptions | None = None
    ) -> Any:
        from bolt.network import quic

        method = api.METHODS[name]
        on_event = None
        answers: asyncio.Queue[dict[str, Any]] | None = None
        bridge: asyncio.Task[None] | None = None
        if options is not None and options.progress is not None:
            progress = options.progress

            def on_event(msg: dict[str, Any]) -> None:
                data = dict(msg.get("data") or {})
                if "outcomes" in data:
                    data["outcomes"] = [api.outcome_from_json(o) for o in data["outcomes"]]
                progress(str(msg.get("event")), data)

        if options is not None and options.answers is not None:
            answers = asyncio.Queue()
            bridge = asyncio.ensure_future(_bridge(options.answers, answers))
        try:
            value = await self.client.send_command(name, params, on_event=on_event, answers=answers)
        except quic.RemoteError as err:
            raise api.decode_error(err.error, self.endpoint) from None
        except quic.QuicError as err:
            raise api.RemoteUserError(str(err), hint=None, exit_code=1) from None
        finally:
            if bridge is not None:
                bridge.cancel()
        return method.decode(value)


async def _bridge(src: asyncio.Queue[bool], dst: asyncio.Queue[dict[str, Any]]) -> None:
    while True:
        keep = await src.get()
        dst.put_nowait({"t": "answer", "keep": bool(keep)})


@contextlib.asynccontextmanager
async def open_backend(*, gpus: bool = True) -> AsyncIterator[Any]:
    """The manager the CLI talks to: local, or the agent named by ``--remote``.
    ``gpus=False``: the command touches only files (snapshot documents, the boot unit), so
    a local manager does not open NVML (it works where no driver is loaded)."""
    tgt = target()
    if tgt is None:
        if not gpus:
            yield GpuManager()
            return
        async with GpuManager() as manager:
            yield manager
        return
    from nvcontrol.remote import keys, trust

    client = await trust.connect(tgt.endpoint, keys.load(), tgt.trust)
    try:
        yield RemoteManager(client, tgt.endpoint)
    finally:
        await client.close(drain=False)  # the CLI exits next: do not wait out the drain
