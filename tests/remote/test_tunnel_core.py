"""Tunnels without root: the upgraded stream's pure protocol, the agent's tunnel rules, and
the bolt network layer relaying real TCP over a loopback QUIC connection."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from basis.errors import ExitCode
from bolt.network import framing, identity, quic, relay, session, streams
from nvcontrol.agent.tunnel import Connect, Refuse, TunnelRules, check_address, decide
from tests.remote.test_protocol import _frames, _handshake, _server


def _authenticated() -> session.ServerSession:
    key = identity.new_client_key()
    srv = _server({identity.fingerprint(identity.raw_public(key)): "operator"})
    _handshake(srv, key)
    return srv


def _call(srv: session.ServerSession, sid: int = 4) -> None:
    frame = framing.encode({"t": "call", "method": "tunnel", "params": {"target": "bolt://w:80"}})
    assert srv.stream_data(sid, frame, False) == [
        session.Call(sid, "tunnel", {"target": "bolt://w:80"})
    ]


def test_an_upgraded_call_carries_raw_bytes_both_ways_until_each_half_ends() -> None:
    srv = _authenticated()
    _call(srv)
    opened = srv.upgrade(4, {"target": "bolt://w:80"})
    assert _frames(opened, 4) == [{"t": "open", "target": "bolt://w:80"}]
    # bytes that would be a malformed frame are plain data now
    assert srv.stream_data(4, b"GET / HTTP/1.0\r\n", False) == [
        session.Data(4, b"GET / HTTP/1.0\r\n")
    ]
    assert srv.send_raw(4, b"HTTP/1.0 200 OK\r\n") == [session.Send(4, b"HTTP/1.0 200 OK\r\n")]
    assert srv.stream_data(4, b"", True) == [session.Data(4, b"", True)]
    assert srv.send_raw(4, b"bye", True) == [session.Send(4, b"bye", True)]
    assert srv.send_raw(4, b"more") == []  # our half is finished
    assert not srv.closed and srv.active_calls == 0


def test_upgrade_needs_a_running_call_and_raw_sends_need_an_upgrade() -> None:
    srv = _authenticated()
    assert srv.upgrade(8, {}) == []
    assert srv.send_raw(8, b"x") == []
    _call(srv, 8)
    assert srv.send_raw(8, b"x") == []  # still a call: replies are frames
    srv.upgrade(8, {})
    srv.raw_gone(8)
    assert srv.send_raw(8, b"x") == []


def test_a_frame_decoder_hands_back_the_bytes_after_the_open_frame() -> None:
    dec = framing.FrameDecoder()
    data = framing.encode({"t": "open"}) + b"SSH-2.0-banner"
    assert dec.feed_one(data[:3]) == (None, b"")
    assert dec.feed_one(data[3:]) == ({"t": "open"}, b"SSH-2.0-banner")


@pytest.mark.parametrize(
    "text, ok",
    [
        ("bolt://gpu-manager:3000", True),
        ("web:80", True),
        ("http://web:80", False),
        ("bolt://web", False),
        ("bolt://:80", False),
        ("bolt://web:0", False),
        ("bolt://web:65536", False),
        ("bolt://we b:80", False),
        ("", False),
    ],
)
def test_service_endpoints_are_parsed_strictly(text: str, ok: bool) -> None:
    if ok:
        assert str(relay.parse_endpoint(text)).startswith("bolt://")
    else:
        with pytest.raises(ValueError):
            relay.parse_endpoint(text)


RULES = TunnelRules(names={"web": "127.0.0.1"}, max_per_connection=2)


def test_viewers_may_not_open_tunnels_and_operators_may() -> None:
    refused = decide(RULES, "viewer", {"target": "bolt://web:80"}, 0)
    assert isinstance(refused, Refuse) and refused.error.exit_code == ExitCode.PERMISSION
    assert "needs operator" in refused.error.message
    ok = decide(RULES, "operator", {"target": "bolt://web:80"}, 0)
    assert ok == Connect(relay.ServiceEndpoint("web", 80), "127.0.0.1", True)
    admin_only = TunnelRules(min_role="admin")
    assert isinstance(decide(admin_only, "operator", {"target": "bolt://db:5432"}, 0), Refuse)
    assert isinstance(decide(admin_only, "admin", {"target": "bolt://db:5432"}, 0), Connect)


@pytest.mark.parametrize(
    "params, code",
    [
        ({"target": "bolt://web:80"}, None),
        ({"target": "bolt://web:80", "extra": 1}, ExitCode.INVALID_INPUT),
        ({"target": 80}, ExitCode.INVALID_INPUT),
        ({"target": "bolt://localhost:22"}, ExitCode.INVALID_INPUT),
        ({"target": "bolt://127.0.0.1:22"}, ExitCode.INVALID_INPUT),
        ({"target": "bolt://10.0.0.1:22"}, ExitCode.INVALID_INPUT),
    ],
)
def test_tunnel_requests_are_checked_before_anything_connects(
    params: dict[str, object], code: ExitCode | None
) -> None:
    got = decide(RULES, "admin", params, 0)
    if code is None:
        assert isinstance(got, Connect)
    else:
        assert isinstance(got, Refuse) and got.error.exit_code == code


def test_the_per_connection_limit_and_the_off_switch_refuse() -> None:
    assert isinstance(decide(RULES, "operator", {"target": "bolt://web:80"}, 1), Connect)
    full = decide(RULES, "operator", {"target": "bolt://web:80"}, 2)
    assert isinstance(full, Refuse) and "2 tunnels open" in full.error.message
    off = decide(TunnelRules(enabled=False), "admin", {"target": "bolt://web:80"}, 0)
    assert isinstance(off, Refuse) and off.error.exit_code == ExitCode.UNSUPPORTED


def test_an_unmapped_name_may_not_resolve_to_the_agents_own_loopback() -> None:
    unmapped = Connect(relay.ServiceEndpoint("web", 80), "web", False)
    mapped = Connect(relay.ServiceEndpoint("web", 80), "127.0.0.1", True)
    for address in ("127.0.0.1", "::1", "0.0.0.0", "169.254.1.1", "224.0.0.1"):
        refused = check_address(unmapped, address)
        assert refused is not None and refused.exit_code == ExitCode.PERMISSION
    assert check_address(unmapped, "10.89.0.5") is None
    assert check_address(mapped, "127.0.0.1") is None


def test_unacked_bytes_reads_aioquics_stream_sender() -> None:
    # The one private aioquic attribute the tunnels use (for backpressure): fail loudly
    # when an aioquic release moves it.
    conn = QuicConnection(configuration=QuicConfiguration(is_client=True))
    sid = conn.get_next_available_stream_id()
    conn.send_stream_data(sid, b"x" * 1000)
    assert streams.unacked_bytes(conn, sid) == 1000
    assert streams.unacked_bytes(conn, sid + 4) == 0


def test_idle_timer_expires_only_after_silence() -> None:
    timer = relay.IdleTimer(10.0, now=100.0)
    assert not timer.expired(109.9)
    timer.touch(105.0)
    assert not timer.expired(114.0) and timer.expired(115.0)
    assert not relay.IdleTimer(None, 0.0).expired(1e9)


# --------------------------------------------------------------------------- over loopback


async def _echo_server() -> tuple[asyncio.base_events.Server, int, list[bytes]]:
    got: list[bytes] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = b""
        while chunk := await reader.read(65536):
            data += chunk
            writer.write(chunk)
            await writer.drain()
        got.append(data)
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], got


def _identity(tmp: Path) -> tuple[str, str, str]:
    key, cert = identity.new_server_identity("test", ["127.0.0.1"])
    identity.save_server_identity(key, cert, tmp / "k.pem", tmp / "c.pem")
    return str(tmp / "k.pem"), str(tmp / "c.pem"), identity.cert_pem(cert)


async def _tunnel_through(tmp: Path, payload: bytes) -> tuple[bytes, list[bytes], str]:
    echo, port, got = await _echo_server()
    key_path, cert_path, pem = _identity(tmp)
    client_key = identity.new_client_key()
    ended: list[str] = []

    async def handler(ctx: quic.CallContext, method: str, params: dict[str, object]) -> object:
        if params.get("target") != "refuse-me":
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert ctx.upgrade is not None
            stream = ctx.upgrade({"address": f"127.0.0.1:{port}"})
            ended.append((await relay.relay(stream, reader, writer)).ended)
            return None
        raise ValueError("no")

    server = quic.QuicServer(cert_path=cert_path, key_path=key_path,
                             authorize=lambda fp: ("operator", ""), handler=handler)  # fmt: skip
    _host, qport = await server.start("127.0.0.1", 0)
    client = await quic.QuicClient.connect(f"127.0.0.1:{qport}", key=client_key, pinned_cert=pem)
    try:
        with pytest.raises(quic.RemoteError, match="no"):
            await client.open_stream("tunnel", {"target": "refuse-me"})
        stream = await client.open_stream("tunnel", {"target": "echo"})

        async def send() -> None:
            for i in range(0, len(payload), 100_000):
                stream.write(payload[i : i + 100_000])
                await stream.drain()
            stream.write_eof()

        sender = asyncio.ensure_future(send())
        back = b""
        while chunk := await stream.read():
            back += chunk
        await sender
        stream.close()
        for _ in range(100):
            if ended:
                break
            await asyncio.sleep(0.02)
        return back, got, ended[0] if ended else "not ended"
    finally:
        await client.close()
        server.close()
        echo.close()


def test_a_raw_stream_relays_tcp_both_ways_with_half_close(tmp_path: Path) -> None:
    payload = os.urandom(1_000_000)  # far above the high-water mark: drain must work
    back, got, ended = asyncio.run(_tunnel_through(tmp_path, payload))
    assert back == payload  # echoed whole, in order
    assert got == [payload]  # the service saw the client's EOF (half-close) and all bytes
    assert ended == "closed"
