"""``nvctl remote forward``: a local TCP port whose connections are tunnelled, through an
agent's QUIC listener, to ``bolt://SERVICE:PORT`` in the agent's project network (like
``ssh -L``).  One authenticated QUIC connection carries every tunnel, one stream each; it is
opened before listening (an unknown key stops the command there) and again on demand
after the agent went away."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass

from basis.errors import InvalidInput, PermissionDenied
from bolt.network import quic, relay
from nvcontrol.remote.target import TrustOptions


@dataclass(frozen=True)
class Forward:
    endpoint: str  # the agent, HOST[:PORT]
    trust: TrustOptions
    listen: tuple[str, int]
    target: relay.ServiceEndpoint


def local_address(text: str) -> tuple[str, int]:
    """``PORT`` (on 127.0.0.1), ``ADDR:PORT`` or ``[V6]:PORT``; port 0 picks a free one."""
    value = text.strip()
    if value.isdigit():
        value = f"127.0.0.1:{value}"
    try:
        host, port = quic.split_endpoint(value, default_port=-1, any_port=True)
    except ValueError as err:
        raise InvalidInput(f"LOCAL {text!r}: {err}", hint="give [ADDR:]PORT, e.g. 8080") from None
    if port < 0:
        raise InvalidInput(f"LOCAL {text!r} has no port", hint="give [ADDR:]PORT, e.g. 8080")
    return host, port


def target(text: str) -> relay.ServiceEndpoint:
    try:
        return relay.parse_endpoint(text)
    except ValueError as err:
        raise InvalidInput(f"TARGET: {err}") from None


class Forwarder:
    def __init__(self, fwd: Forward, key: object, say: Callable[[str], None]) -> None:
        self.fwd = fwd
        self.key = key
        self.say = say
        self._client: quic.QuicClient | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> quic.QuicClient:
        from nvcontrol.remote import trust

        async with self._lock:
            if self._client is None or self._client.closed is not None:
                if self._client is not None:
                    await self._client.close()
                self._client = await trust.connect(self.fwd.endpoint, self.key, self.fwd.trust)
                if self._client.principal == "viewer":
                    await self._client.close()
                    self._client = None
                    raise PermissionDenied(
                        f"{self.fwd.endpoint}: this key's role is viewer, which may not open "
                        "tunnels (operator or above may)",
                        hint="an admin can change the role with `nvctl agent authorize`",
                    )
            return self._client

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            client = await self.client()
            stream = await client.open_tunnel(str(self.fwd.target))
        except quic.RemoteError as err:
            self.say(f"{peer}: the agent refused the tunnel: {err}")
            writer.close()
            return
        except Exception as err:  # one failed connection must not stop the others
            self.say(f"{peer}: no tunnel: {getattr(err, 'message', None) or err}")
            writer.close()
            return
        stats = await relay.relay(stream, reader, writer)
        if stats.ended != "closed":
            self.say(f"{peer}: tunnel ended: {stats.ended}")

    async def run(self, ready: Callable[[str, int], None]) -> None:
        await self.client()  # refuse at once when the agent will not have this key
        server = await asyncio.start_server(self.handle, *self.fwd.listen)
        sock = server.sockets[0].getsockname()
        ready(str(sock[0]), int(sock[1]))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            server.close()
            if self._client is not None:
                await self._client.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()
