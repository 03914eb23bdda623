"""Raw byte streams over a QUIC connection: a call upgraded by the server (see
:mod:`bolt.network.session`) carries bytes both ways, as a TCP connection does.

:class:`RawStream` is the asyncio face of one such stream, the same on both ends: the
adapter feeds it what arrives (``feed``, ``aborted``) and wakes it when acknowledgements
come in (``wake``); its user reads, writes, half-closes and drains.

Backpressure.  Writing waits (``drain``) while more than :data:`HIGH_WATER` bytes are
queued on the stream and not yet acknowledged, so a slow peer slows the writer.  aioquic
grants receive credit as data arrives, not as the application consumes it, so the receive
side cannot push back through QUIC: a stream whose reader falls more than
:data:`MAX_BUFFERED` bytes behind is reset instead (memory stays bounded).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Any

from bolt.network import framing

HIGH_WATER = 256 * 1024
MAX_BUFFERED = 8 * 1024 * 1024
RESET_CODE = 0x10  # application error code of a stream reset by a raw stream's user


class StreamAborted(ConnectionError):
    """The stream was reset, or its connection went away (the message says which)."""


def unacked_bytes(quic: Any, stream_id: int) -> int:
    """Bytes queued on a stream and not yet acknowledged by the peer.

    aioquic 1.7 has no public API for it; this reads the stream sender's buffer, and
    ``tests/remote/test_tunnel_core.py`` fails if that attribute changes."""
    stream = quic._streams.get(stream_id)
    if stream is None:
        return 0
    return len(stream.sender._buffer)


class RawStream:
    def __init__(
        self,
        stream_id: int,
        send: Callable[[bytes, bool], None],
        reset: Callable[[int], None],
        unacked: Callable[[], int],
        forget: Callable[[], None] = lambda: None,
    ) -> None:
        self.stream_id = stream_id
        self._send, self._reset, self._unacked, self._forget = send, reset, unacked, forget
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._eof = False  # the peer finished its half
        self._sent_eof = False
        self._error: str | None = None
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()

    # ------------------------------------------------------------------ adapter side

    def feed(self, data: bytes, end: bool) -> None:
        if self._error is not None:
            return
        if data:
            self._chunks.append(data)
            self._buffered += len(data)
            if self._buffered > MAX_BUFFERED:
                self.abort(f"the reader fell more than {MAX_BUFFERED} bytes behind")
                return
        if end:
            self._eof = True
        self._readable.set()

    def aborted(self, reason: str) -> None:
        if self._error is None:
            self._error = reason
        self._readable.set()
        self._writable.set()

    def wake(self) -> None:
        self._writable.set()

    # ------------------------------------------------------------------ user side

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def at_eof(self) -> bool:
        return self._eof and not self._chunks

    async def read(self) -> bytes:
        """The next bytes, or b"" once the peer finished its half; raises
        :class:`StreamAborted` when the stream was reset."""
        while not self._chunks:
            if self._error is not None:
                raise StreamAborted(self._error)
            if self._eof:
                return b""
            self._readable.clear()
            await self._readable.wait()
        # everything buffered at once: QUIC delivers a packet's worth at a time, and a
        # write (and drain) per 1200 bytes would cost more than the bytes themselves
        data = self._chunks.popleft() if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        return data

    def write(self, data: bytes) -> None:
        if self._error is not None:
            raise StreamAborted(self._error)
        if self._sent_eof:
            raise StreamAborted("the stream's sending half is already finished")
        if data:
            self._send(data, False)

    def write_eof(self) -> None:
        if self._error is None and not self._sent_eof:
            self._sent_eof = True
            self._send(b"", True)

    async def drain(self) -> None:
        """Wait while the peer has not acknowledged more than :data:`HIGH_WATER` bytes."""
        while self._error is None and self._unacked() > HIGH_WATER:
            self._writable.clear()
            await self._writable.wait()
        if self._error is not None:
            raise StreamAborted(self._error)

    def abort(self, reason: str = "aborted") -> None:
        """Reset the stream (both halves); the peer sees it as aborted."""
        if self._error is None:
            with contextlib.suppress(Exception):
                self._reset(RESET_CODE)
        self.aborted(reason)

    def close(self) -> None:
        """Done with the stream: reset it unless both halves finished, then let the
        connection forget it."""
        if self._error is None and not (self._sent_eof and self.at_eof):
            self.abort("closed")
        self._forget()


# --------------------------------------------------------------------------- client


async def open_stream(
    proto: Any, method: str, params: dict[str, Any], timeout_s: float
) -> RawStream:
    """Ask the server to upgrade a call on a new stream; returns the raw stream once the
    server sent ``open``, or raises ``RemoteError`` with the server's refusal."""
    from bolt.network.quic import QuicError, RemoteError

    if proto.terminated is not None:
        raise QuicError(f"the connection is closed: {proto.terminated}")
    quic = proto._quic
    sid = quic.get_next_available_stream_id()
    queue: asyncio.Queue[tuple[bytes, bool]] = asyncio.Queue()
    proto.streams[sid] = queue
    quic.send_stream_data(sid, framing.encode({"t": "call", "method": method, "params": params}))
    proto.transmit()
    dec = framing.FrameDecoder()
    opened = False
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                data, end = await queue.get()
                while True:
                    msg, data = dec.feed_one(data)
                    if msg is None:
                        break
                    kind = msg.get("t")
                    if kind == "open":
                        stream = _client_stream(proto, sid)
                        proto.raw[sid] = stream
                        opened = True
                        if data or end:
                            stream.feed(data, end)
                        while not queue.empty():  # arrived before the stream was registered
                            stream.feed(*queue.get_nowait())
                        return stream
                    if kind == "error":
                        raise RemoteError(msg.get("error") or {})
                if end:
                    raise QuicError(
                        f"the server ended the stream before opening it: "
                        f"{proto.terminated or 'no answer'}"
                    )
    except TimeoutError:
        raise QuicError(f"no answer to {method} within {timeout_s:g} s") from None
    finally:
        proto.streams.pop(sid, None)
        if not opened and proto.terminated is None:
            with contextlib.suppress(Exception):  # free the stream: finish our half
                quic.send_stream_data(sid, b"", end_stream=True)
                proto.transmit()


def _client_stream(proto: Any, sid: int) -> RawStream:
    quic = proto._quic

    def send(data: bytes, end: bool) -> None:
        quic.send_stream_data(sid, data, end_stream=end)
        proto.transmit()

    def reset(code: int) -> None:
        quic.reset_stream(sid, code)
        proto.transmit()
        proto.raw.pop(sid, None)

    return RawStream(
        sid, send, reset, lambda: unacked_bytes(quic, sid), lambda: proto.raw.pop(sid, None)
    )


class RawStreamsMixin:
    """For the QUIC protocol classes: acknowledgements arrive in datagrams, so after each
    one the raw streams' writers may go on (see :meth:`RawStream.drain`)."""

    raw: dict[int, RawStream]

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        super().datagram_received(data, addr)  # type: ignore[misc]
        for raw in list(self.raw.values()):
            raw.wake()
