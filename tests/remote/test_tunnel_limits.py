"""A tunnel's limits on a real agent (nvsim, loopback): the idle timeout closes it, a
connection may hold only --max-tunnels at once, and a revoked key opens no more."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bolt.network import identity, quic, streams
from tests.conftest import NvsimInstance
from tests.remote.agent_fixture import Agent, make_agent

pytestmark = [pytest.mark.nvsim]


@pytest.fixture
def limited(nvsim_gpus: NvsimInstance, tmp_path: Path) -> Iterator[tuple[Agent, int]]:
    async def serve() -> asyncio.base_events.Server:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while data := await reader.read(65536):
                writer.write(data)
            writer.close()

        return await asyncio.start_server(echo, "127.0.0.1", 0)

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(serve())
    port = server.sockets[0].getsockname()[1]
    threading.Thread(target=loop.run_forever, daemon=True).start()
    a = make_agent(nvsim_gpus, tmp_path / "agent")
    a.start("--tunnel-map", "echo=127.0.0.1", "--max-tunnels", "1", "--tunnel-idle-timeout", "1")
    try:
        yield a, port
    finally:
        log = a.stop()
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        assert "Traceback" not in log, log


async def _connect(a: Agent, key: identity.Ed25519PrivateKey) -> quic.QuicClient:
    pem = Path(json.loads(a.admin("identity", "--json").stdout)["certificate"]).read_text()
    return await quic.QuicClient.connect(a.endpoint, key=key, pinned_cert=pem)


def _key(a: Agent, role: str) -> identity.Ed25519PrivateKey:
    key = identity.new_client_key()
    assert a.admin("authorize", identity.public_line(key), "--role", role).returncode == 0
    return key


def test_an_idle_tunnel_is_closed_and_audited(limited: tuple[Agent, int]) -> None:
    a, port = limited

    async def run() -> str:
        async with await _connect(a, _key(a, "operator")) as client:
            stream = await client.open_tunnel(f"bolt://echo:{port}")
            stream.write(b"ping")
            assert await stream.read() == b"ping"
            with pytest.raises(streams.StreamAborted) as err:
                async with asyncio.timeout(10):
                    await stream.read()  # nothing more: the agent gives up after 1 s
            return str(err.value)

    assert "reset" in asyncio.run(run())
    closed = [e for e in a.audit() if e["action"] == "tunnel_closed"]
    assert len(closed) == 1 and closed[0]["message"].endswith("ended: idle")


def test_one_connection_holds_at_most_max_tunnels(limited: tuple[Agent, int]) -> None:
    a, port = limited

    async def run() -> tuple[str, bytes]:
        async with await _connect(a, _key(a, "operator")) as client:
            first = await client.open_tunnel(f"bolt://echo:{port}")
            with pytest.raises(quic.RemoteError) as err:
                await client.open_tunnel(f"bolt://echo:{port}")
            first.write(b"still here")
            return str(err.value), await first.read()  # the first one is unharmed

    message, echoed = asyncio.run(run())
    assert "already has 1 tunnels open (the agent allows 1)" in message
    assert echoed == b"still here"


def test_a_revoked_key_opens_no_more_tunnels_on_its_open_connection(
    limited: tuple[Agent, int],
) -> None:
    a, port = limited
    key = _key(a, "operator")

    async def run() -> dict[str, object]:
        async with await _connect(a, key) as client:
            stream = await client.open_tunnel(f"bolt://echo:{port}")
            stream.close()
            assert a.admin("revoke", identity.public_line(key)).returncode == 0
            with pytest.raises(quic.RemoteError) as err:
                await client.open_tunnel(f"bolt://echo:{port}")
            return err.value.error

    error = asyncio.run(run())
    assert error["code"] == 4 and "no longer authorized (the key was revoked)" in str(
        error["message"]
    )
    denied = [e for e in a.audit() if e["action"] == "tunnel" and e["result"] == "denied"]
    assert len(denied) == 1 and "revoked" in denied[0]["message"]
