"""Relaying a TCP connection over a raw QUIC stream, both ways, and ``bolt://`` endpoints.

The same pump serves both ends of a tunnel: the client's (a local TCP connection that
``nvctl remote forward`` accepted) and the agent's (its TCP connection to the service).
Each direction reads a chunk, writes it and waits for the other side to take it (TCP's
``drain``, :meth:`RawStream.drain`), so a slow reader slows the writer instead of filling
memory.  An end-of-stream is passed on as a half-close; an error on either side resets
the other.  A tunnel with no bytes in either direction for ``idle_timeout_s`` is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass

from bolt.network.streams import RawStream, StreamAborted

CHUNK = 64 * 1024
SCHEME = "bolt://"
_NAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,62})$")


@dataclass(frozen=True)
class ServiceEndpoint:
    """``bolt://SERVICE:PORT``: a TCP port of a service, by its name in a project network."""

    service: str
    port: int

    def __str__(self) -> str:
        return f"{SCHEME}{self.service}:{self.port}"


def parse_endpoint(text: str) -> ServiceEndpoint:
    """``bolt://SERVICE:PORT`` (the scheme may be left out); raises ValueError."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the endpoint is empty (give bolt://SERVICE:PORT)")
    body = text.strip()
    if "://" in body:
        if not body.startswith(SCHEME):
            raise ValueError(f"{text!r}: the scheme must be bolt:// (bolt://SERVICE:PORT)")
        body = body[len(SCHEME) :]
    name, sep, port = body.rpartition(":")
    if not sep or not name:
        raise ValueError(f"{text!r} is not bolt://SERVICE:PORT")
    if not _NAME.match(name):
        raise ValueError(f"{text!r}: {name!r} is not a service name")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
    return ServiceEndpoint(name, int(port))


@dataclass
class RelayStats:
    to_stream: int = 0  # bytes the TCP side sent into the stream
    from_stream: int = 0  # bytes the stream delivered to the TCP side
    ended: str = "closed"  # how the relay ended: "closed", "idle", or the error


class IdleTimer:
    """Pure: fed the time of each activity and asked whether ``timeout_s`` passed since."""

    def __init__(self, timeout_s: float | None, now: float) -> None:
        self.timeout_s = timeout_s
        self.last = now

    def touch(self, now: float) -> None:
        self.last = now

    def expired(self, now: float) -> bool:
        return self.timeout_s is not None and now - self.last >= self.timeout_s


async def relay(
    stream: RawStream,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    idle_timeout_s: float | None = None,
) -> RelayStats:
    """Pump bytes both ways until both halves are finished, an error, or idleness."""
    stats = RelayStats()
    idle = IdleTimer(idle_timeout_s, time.monotonic())

    async def tcp_to_stream() -> None:
        while data := await reader.read(CHUNK):
            idle.touch(time.monotonic())
            stats.to_stream += len(data)
            stream.write(data)
            await stream.drain()
        stream.write_eof()

    async def stream_to_tcp() -> None:
        while data := await stream.read():
            idle.touch(time.monotonic())
            stats.from_stream += len(data)
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    async def watchdog() -> None:
        assert idle_timeout_s is not None
        while not idle.expired(time.monotonic()):
            await asyncio.sleep(min(idle_timeout_s / 4, 1.0))

    pumps = [asyncio.ensure_future(tcp_to_stream()), asyncio.ensure_future(stream_to_tcp())]
    dog = asyncio.ensure_future(watchdog()) if idle_timeout_s else None
    try:
        pending = set(pumps)
        while pending:
            waiting = pending | ({dog} if dog is not None else set())
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if dog is not None and dog in done:
                stats.ended = "idle"
                stream.abort(f"idle for {idle_timeout_s:g} s")
                break
            for task in done:
                pending.discard(task)
                err = task.exception()
                if err is not None:
                    stats.ended = _why(err)
                    stream.abort(stats.ended)
                    pending.clear()
                    break
    finally:
        for task in [*pumps, *([dog] if dog is not None else [])]:
            task.cancel()
        for task in pumps:
            with contextlib.suppress(BaseException):
                await task
        if stats.ended != "closed":
            stream.abort(stats.ended)
        stream.close()
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return stats


def _why(err: BaseException) -> str:
    if isinstance(err, StreamAborted):
        return str(err)
    return f"{err.__class__.__name__}: {err}" if str(err) else err.__class__.__name__
