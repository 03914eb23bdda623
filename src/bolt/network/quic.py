"""The asyncio adapter between aioquic and :mod:`bolt.network.session` (moves bytes only).

Library API (the seed's)::

    client = await QuicClient.connect("host:4433", key=my_key, pinned_cert=pem)
    value = await client.send_command("power_status", {"selector": "0"})

:class:`QuicServer` runs a handler coroutine per authenticated call; it enforces the
limits (connections, concurrent calls, frame size, idle timeout) and cancels a call whose
connection goes away, so the application can undo what that client left half done.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aioquic.asyncio import QuicConnectionProtocol, serve
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import ConnectionTerminated, QuicEvent, StreamDataReceived, StreamReset

from bolt.network import framing, identity, session, streams

ALPN = "bolt-quic/1"
DEFAULT_PORT = 4433
# How long a receiver holds an ACK (aioquic: 1 ms).  aioquic sends an ACK only once it is
# due, never on a packet that leaves earlier, so at 1 ms every call and every reply is
# followed by an ACK-only packet each way: two more datagrams, and two more wake-ups of
# the peer, per call.  At 20 ms, one ACK covers every call of a burst (measured, warm
# `gpu info` at load ~4: p50 -30 %, CPU per call -30 % on both sides).  Below the 25 ms
# max_ack_delay aioquic advertises, so the peer's loss timers already allow for it.  Set
# through a private attribute; tests/remote/test_protocol.py fails if aioquic renames it.
ACK_DELAY_S = 0.02


def tune_ack_delay(quic: Any) -> None:
    if isinstance(getattr(quic, "_ack_delay", None), float):
        quic._ack_delay = ACK_DELAY_S


class QuicError(Exception):
    """The connection failed or was closed (the message says why)."""


class RemoteError(Exception):
    """The server answered a call with an error (its ``error`` object is kept)."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(str(error.get("message", "remote error")))
        self.error = error


def split_endpoint(
    endpoint: str, default_port: int = DEFAULT_PORT, *, any_port: bool = False
) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` → (host, port); raises ValueError.
    ``any_port`` admits port 0 (a listener on an ephemeral port)."""
    text = endpoint.strip()
    if not text:
        raise ValueError("empty endpoint")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    if not host:
        raise ValueError(f"no host in {endpoint!r}")
    port = default_port
    if port_text:
        if not port_text.isdigit() or not (0 if any_port else 1) <= int(port_text) < 65536:
            raise ValueError(f"bad port in {endpoint!r}")
        port = int(port_text)
    return host, port


# --------------------------------------------------------------------------- server


@dataclass(frozen=True)
class Limits:
    max_connections: int = 1024
    max_calls_per_connection: int = 32
    max_frame: int = framing.DEFAULT_MAX_FRAME
    idle_timeout_s: float = 10.0


@dataclass
class CallContext:
    """What a handler knows about the call it serves."""

    principal: str
    key_fp: str
    emit: Callable[[dict[str, Any]], None]
    messages: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    # Turn this call's stream into a raw byte stream (the handler then owns it, and its
    # return value is not sent); ``message`` goes out in the ``open`` frame.
    upgrade: Callable[[dict[str, Any]], streams.RawStream] | None = None
    connection: int = 0  # names the connection the call came on (for per-connection limits)


Handler = Callable[[CallContext, str, dict[str, Any]], Awaitable[Any]]
ErrorEncoder = Callable[[BaseException], dict[str, Any]]


def _default_error(exc: BaseException) -> dict[str, Any]:
    return {"message": str(exc), "code": 1}


class _ServerProtocol(streams.RawStreamsMixin, QuicConnectionProtocol):
    server: QuicServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tune_ack_delay(self._quic)
        srv = self.server
        self.session = session.ServerSession(
            server_fp=srv.fingerprint,
            cert_pem=srv.cert_pem,
            nonce=os.urandom(32),
            authorize=srv.authorize,
            max_frame=srv.limits.max_frame,
            max_calls=srv.limits.max_calls_per_connection,
        )
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.contexts: dict[int, CallContext] = {}
        self.raw: dict[int, streams.RawStream] = {}
        self.counted = False
        if len(srv.connections) >= srv.limits.max_connections:
            self._quic.close(error_code=session.LIMIT, reason_phrase="too many connections")
        else:
            srv.connections.add(self)
            self.counted = True

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StreamDataReceived):
            self._run(self.session.stream_data(event.stream_id, event.data, event.end_stream))
        elif isinstance(event, StreamReset):
            if event.stream_id in self.raw:
                self.session.raw_gone(event.stream_id)
                self.raw.pop(event.stream_id).aborted("the peer reset the stream")
                return
            task = self.tasks.get(event.stream_id)
            if task is not None:
                task.cancel()
        elif isinstance(event, ConnectionTerminated):
            self._gone()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._gone()

    def _gone(self) -> None:
        if self.counted:
            self.server.connections.discard(self)
            self.counted = False
        for task in self.tasks.values():
            task.cancel()  # the dead-man's switch: a call loses its client, it is cancelled
        for raw in self.raw.values():
            raw.aborted("the connection closed")

    def _run(self, actions: list[session.Action]) -> None:
        for a in actions:
            if isinstance(a, session.Send):
                self._quic.send_stream_data(a.stream_id, a.data, a.end)
            elif isinstance(a, session.Close):
                self._quic.close(error_code=a.error_code, reason_phrase=a.reason[:200])
                self._gone()
            elif isinstance(a, session.Call):
                self._start(a)
            elif isinstance(a, session.Message):
                ctx = self.contexts.get(a.stream_id)
                if ctx is not None and ctx.messages.qsize() < 64:
                    ctx.messages.put_nowait(a.message)
            elif isinstance(a, session.Data):
                raw = self.raw.get(a.stream_id)
                if raw is not None:
                    raw.feed(a.data, a.end)
        self.transmit()

    def _start(self, call: session.Call) -> None:
        sid = call.stream_id
        assert self.session.principal is not None and self.session.key_fp is not None

        def emit(event: dict[str, Any]) -> None:
            self._run(self.session.reply(sid, {"t": "event", **event}))

        ctx = CallContext(self.session.principal, self.session.key_fp, emit)
        ctx.upgrade = lambda message: self._upgrade(sid, message)
        ctx.connection = id(self)
        self.contexts[sid] = ctx
        self.tasks[sid] = asyncio.ensure_future(self._serve_call(ctx, call))

    def _upgrade(self, sid: int, message: dict[str, Any]) -> streams.RawStream:
        def send(data: bytes, end: bool) -> None:
            self._run(self.session.send_raw(sid, data, end))

        def reset(code: int) -> None:
            self.session.raw_gone(sid)
            self.raw.pop(sid, None)
            self._quic.reset_stream(sid, code)
            self.transmit()

        raw = streams.RawStream(sid, send, reset, lambda: streams.unacked_bytes(self._quic, sid))
        self.raw[sid] = raw
        self._run(self.session.upgrade(sid, message))
        return raw

    async def _serve_call(self, ctx: CallContext, call: session.Call) -> None:
        sid = call.stream_id
        reply: dict[str, Any] | None = None
        try:
            value = await self.server.handler(ctx, call.method, call.params)
        except asyncio.CancelledError:
            return
        except Exception as exc:
            reply = {"t": "error", "error": self.server.encode_error(exc)}
        finally:
            self.tasks.pop(sid, None)
            self.contexts.pop(sid, None)
            raw = self.raw.pop(sid, None)
        if raw is not None:  # an upgraded call ends with its stream, not with a reply
            if raw.error is None and not raw.at_eof:
                raw.abort("the handler finished")
            self.session.raw_gone(sid)
            return
        if reply is not None:
            self._run(self.session.reply(sid, reply, end=True))
            return
        frame = self.server.results.frame(value, self.server.limits.max_frame)
        if frame is None:
            self._run(self.session.reply(sid, {"t": "result", "value": value}, end=True))
        else:
            self._run(self.session.reply_frame(sid, frame, end=True))


class _ResultFrames:
    """The encoded result frames of the last few result *objects*: a handler that answers
    many calls with the very same object (a cached reading) has it encoded and compressed
    once, not per call.  Keyed by identity, and the objects are held, so an id is never
    reused while its entry lives; a handler must not mutate a value it has returned."""

    SIZE = 16

    def __init__(self) -> None:
        self._frames: dict[int, tuple[Any, bytes]] = {}

    def frame(self, value: Any, max_frame: int) -> bytes | None:
        if not isinstance(value, dict | list):
            return None  # small values: encoding is cheap, nothing to share
        hit = self._frames.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        try:
            data = framing.encode({"t": "result", "value": value}, max_frame)
        except framing.FrameError:
            return None  # session.reply turns it into an error frame
        if len(self._frames) >= self.SIZE:
            self._frames.pop(next(iter(self._frames)))
        self._frames[id(value)] = (value, data)
        return data


class QuicServer:
    def __init__(
        self,
        *,
        cert_path: str,
        key_path: str,
        authorize: Callable[[str], tuple[str | None, str]],
        handler: Handler,
        encode_error: ErrorEncoder = _default_error,
        limits: Limits | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.cert_path, self.key_path = cert_path, key_path
        with open(cert_path) as f:
            self.cert_pem = f.read()
        self.fingerprint = identity.cert_fingerprint(identity.load_cert(self.cert_pem))
        self.authorize = authorize
        self.handler = handler
        self.encode_error = encode_error
        self.connections: set[_ServerProtocol] = set()
        self.results = _ResultFrames()
        self._server: Any = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        config = QuicConfiguration(
            is_client=False,
            alpn_protocols=[ALPN],
            idle_timeout=self.limits.idle_timeout_s,
            max_datagram_frame_size=None,
        )
        config.load_cert_chain(self.cert_path, self.key_path)
        proto = type("BoundServerProtocol", (_ServerProtocol,), {"server": self})
        self._server = await serve(host, port, configuration=config, create_protocol=proto)
        sock = self._server._transport.get_extra_info("sockname")
        return sock[0], sock[1]

    def close(self) -> None:
        for conn in list(self.connections):
            conn.close()
        if self._server is not None:
            self._server.close()
            self._server = None


# --------------------------------------------------------------------------- client


class _ClientProtocol(streams.RawStreamsMixin, QuicConnectionProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tune_ack_delay(self._quic)
        self.streams: dict[int, asyncio.Queue[tuple[bytes, bool]]] = {}
        self.raw: dict[int, streams.RawStream] = {}
        self.terminated: str | None = None
        self.udp: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.udp = transport  # type: ignore[assignment]

    def transport_close(self) -> None:
        if self.udp is not None:
            self.udp.close()

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StreamDataReceived):
            raw = self.raw.get(event.stream_id)
            if raw is not None:
                raw.feed(event.data, event.end_stream)
                return
            q = self.streams.get(event.stream_id)
            if q is not None:
                q.put_nowait((event.data, event.end_stream))
        elif isinstance(event, StreamReset):
            raw = self.raw.pop(event.stream_id, None)
            if raw is not None:
                raw.aborted("the agent reset the stream")
        elif isinstance(event, ConnectionTerminated):
            self.terminated = event.reason_phrase or f"closed (code {event.error_code})"
            for q in self.streams.values():
                q.put_nowait((b"", True))
            for raw in self.raw.values():
                raw.aborted(f"the connection closed: {self.terminated}")


class QuicClient:
    """One authenticated connection to a server; calls run concurrently on it."""

    def __init__(self, proto: _ClientProtocol, principal: str | None) -> None:
        self._proto = proto
        self.principal = principal
        self.cert_pem: str | None = None
        self._keepalive: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls,
        endpoint: str,
        *,
        key: Any = None,
        pinned_cert: str | None = None,
        cafile: str | None = None,
        verify: bool = True,
        timeout_s: float = 5.0,
        keepalive_s: float | None = 1.0,
    ) -> QuicClient:
        """Connect and authenticate with ``key`` (an Ed25519 private key).

        The server is verified against ``pinned_cert`` (PEM) or a CA file; ``verify=False``
        only learns the server's certificate (``key`` must then be None)."""
        host, port = split_endpoint(endpoint)
        config = QuicConfiguration(is_client=True, alpn_protocols=[ALPN], idle_timeout=30.0)
        server_fp = None
        if pinned_cert is not None:
            config.verify_mode = ssl.CERT_REQUIRED
            config.cadata = pinned_cert.encode()
            config.server_name = identity.PINNED_NAME
            server_fp = identity.cert_fingerprint(identity.load_cert(pinned_cert))
        elif cafile is not None:
            config.verify_mode = ssl.CERT_REQUIRED
            config.load_verify_locations(cafile)
            config.server_name = host
        elif not verify and key is None:
            config.verify_mode = ssl.CERT_NONE
        else:
            raise ValueError("give a pinned certificate or a CA file to verify the server")
        try:
            proto = await asyncio.wait_for(_open_connection(host, port, config), timeout_s)
        except (TimeoutError, ConnectionError, OSError) as err:
            raise QuicError(_why(err, endpoint)) from None
        client = cls(proto, None)
        try:
            await asyncio.wait_for(client._handshake(key, server_fp), timeout_s)
        except TimeoutError:
            await client.close()
            raise QuicError(f"{endpoint}: no answer to the authentication handshake") from None
        except BaseException:
            await client.close()
            raise
        if keepalive_s:
            client._keepalive = asyncio.ensure_future(client._ping(keepalive_s))
        return client

    async def _handshake(self, key: Any, server_fp: str | None) -> None:
        hs = session.ClientHandshake(key, server_fp)
        q = self._open(session.AUTH_STREAM)
        self._proto._quic.send_stream_data(session.AUTH_STREAM, hs.hello())
        self._proto.transmit()
        while True:
            data, end = await q.get()
            if self._proto.terminated is not None and not data:
                raise session.AuthRefused(self._proto.terminated)
            for out in hs.feed(data, end):
                if isinstance(out, str):
                    self.principal = out
                    self.cert_pem = hs.cert_pem
                    return
                self._proto._quic.send_stream_data(session.AUTH_STREAM, out)
                self._proto.transmit()
            if key is None and hs.cert_pem is not None:
                self.cert_pem = hs.cert_pem
                return
            if end:
                raise QuicError("the server ended the handshake early")

    def _open(self, stream_id: int) -> asyncio.Queue[tuple[bytes, bool]]:
        q: asyncio.Queue[tuple[bytes, bool]] = asyncio.Queue()
        self._proto.streams[stream_id] = q
        return q

    async def send_command(
        self,
        name: str,
        params: dict[str, Any] | None = None,
        *,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        answers: asyncio.Queue[dict[str, Any]] | None = None,
    ) -> Any:
        """Run ``name`` on the server; returns its result or raises :class:`RemoteError`."""
        if self._proto.terminated is not None:
            raise QuicError(f"the connection is closed: {self._proto.terminated}")
        quic = self._proto._quic
        sid = quic.get_next_available_stream_id()
        q = self._open(sid)
        # A call that will send no answers ends its half of the stream at once: one packet,
        # and no separate FIN in the critical path of the next call.
        ended = answers is None
        call = framing.encode({"t": "call", "method": name, "params": params or {}})
        quic.send_stream_data(sid, call, end_stream=ended)
        self._proto.transmit()
        forward = asyncio.ensure_future(self._forward(sid, answers)) if answers else None
        dec = framing.FrameDecoder()
        try:
            while True:
                data, end = await q.get()
                for msg in dec.feed(data, end):
                    kind = msg.get("t")
                    if kind == "event" and on_event is not None:
                        on_event(msg)
                    elif kind == "result":
                        return msg.get("value")
                    elif kind == "error":
                        raise RemoteError(msg.get("error") or {})
                if end:
                    raise QuicError(
                        f"the connection closed during {name}: {self._proto.terminated or 'stream ended'}"
                    )
        finally:
            self._proto.streams.pop(sid, None)
            if forward is not None:
                forward.cancel()
            if self._proto.terminated is None and not ended:
                # finish our half too, so the stream is freed and the peer may open more
                with contextlib.suppress(Exception):
                    quic.send_stream_data(sid, b"", end_stream=True)
                    self._proto.transmit()

    async def open_stream(
        self, method: str, params: dict[str, Any] | None = None, *, timeout_s: float = 10.0
    ) -> streams.RawStream:
        """A call the server upgrades to a raw byte stream (e.g. a tunnel); raises
        :class:`RemoteError` when the server refuses it."""
        return await streams.open_stream(self._proto, method, params or {}, timeout_s)

    async def open_tunnel(self, target: str, *, timeout_s: float = 10.0) -> streams.RawStream:
        """A byte stream to ``bolt://SERVICE:PORT`` in the server's project network."""
        return await self.open_stream("tunnel", {"target": target}, timeout_s=timeout_s)

    @property
    def closed(self) -> str | None:
        """Why the connection closed, or None while it is open."""
        return self._proto.terminated

    async def _forward(self, sid: int, answers: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            msg = await answers.get()
            self._proto._quic.send_stream_data(sid, framing.encode(msg))
            self._proto.transmit()

    async def _ping(self, every_s: float) -> None:
        with contextlib.suppress(Exception):
            while self._proto.terminated is None:
                await asyncio.sleep(every_s)
                self._proto._quic.send_ping(0)
                self._proto.transmit()

    async def close(self, *, drain: bool = True) -> None:
        """Close the connection.  ``drain=False`` sends the close and returns at once,
        without the ~3 probe timeouts (~100 ms) of draining that QUIC asks of a closer
        that stays around: for a process about to exit (the peer learns of the close from
        that one packet, and a lost one ends as the server's idle timeout)."""
        if self._keepalive is not None:
            self._keepalive.cancel()
        with contextlib.suppress(Exception):
            self._proto.close()  # queues CONNECTION_CLOSE and transmits it
            if drain:
                await asyncio.wait_for(self._proto.wait_closed(), 5.0)
        self._proto.transport_close()

    async def __aenter__(self) -> QuicClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _open_connection(host: str, port: int, config: QuicConfiguration) -> _ClientProtocol:
    """What ``aioquic.asyncio.connect`` does, without its context manager, whose exit
    always drains (see :meth:`QuicClient.close`)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    found: Any = infos[0][4]
    addr = (f"::ffff:{found[0]}", found[1], 0, 0) if len(found) == 2 else found
    if config.server_name is None:
        config.server_name = host
    connection = QuicConnection(configuration=config)
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", 0, 0, 0))
        _, proto = await loop.create_datagram_endpoint(
            lambda: _ClientProtocol(connection), sock=sock
        )
    except BaseException:
        sock.close()
        raise
    try:
        proto.connect(addr)  # a v4 address as v6-mapped: the socket is dual-stack
        await proto.wait_connected()
    except BaseException:
        proto.transport_close()
        raise
    return proto


async def fetch_certificate(endpoint: str, timeout_s: float = 5.0) -> str:
    """The certificate a server presents (unverified: for first contact and warnings)."""
    client = await QuicClient.connect(endpoint, verify=False, timeout_s=timeout_s, keepalive_s=None)
    try:
        assert client.cert_pem is not None
        return client.cert_pem
    finally:
        await client.close()


def _why(err: BaseException, endpoint: str) -> str:
    if isinstance(err, asyncio.TimeoutError):
        return f"{endpoint}: no QUIC answer (is the agent running and the certificate trusted?)"
    text = str(err) or err.__class__.__name__
    return f"{endpoint}: {text}"
