"""200 concurrent clients reading for 10 s on loopback: no errors, bounded agent memory."""

from __future__ import annotations

import asyncio
import time

import pytest

from bolt.network import identity, quic
from tests.conftest import NvsimInstance
from tests.remote.agent_fixture import Agent, make_agent

pytestmark = [pytest.mark.nvsim, pytest.mark.slow]

CLIENTS = 200
SECONDS = 10.0


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def agent(nvsim_gpus: NvsimInstance, tmp_path: object) -> object:
    a = make_agent(nvsim_gpus, tmp_path / "remote")  # type: ignore[operator]
    a.start("--idle-timeout", "15")
    try:
        yield a
    finally:
        log = a.stop()
        assert "Traceback" not in log, log


def test_200_clients_for_10_s_without_errors_and_bounded_memory(agent: Agent) -> None:
    assert agent.proc is not None
    c = agent.client("viewer")
    key = identity.load_client_key(c.config / "client_key.pem")
    cert = (agent.tmp / "agent-state" / "agent" / "cert.pem").read_text()
    rss_before = _rss_kib(agent.proc.pid)

    async def connect(gate: asyncio.Semaphore, errors: list[str]) -> quic.QuicClient | None:
        async with gate:  # handshakes are CPU work on 2 cores: ramp up, then read together
            try:
                return await quic.QuicClient.connect(
                    agent.endpoint, key=key, pinned_cert=cert, timeout_s=60
                )
            except Exception as exc:
                errors.append(f"connect: {exc!r}")
                return None

    async def one(
        client: quic.QuicClient, results: list[int], errors: list[str], stop_at: float
    ) -> None:
        n = 0
        try:
            while time.monotonic() < stop_at:
                doc = await client.send_command("power_status", {"selector": None})
                assert len(doc) == 2
                n += 1
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            results.append(n)
            await client.close()

    async def main() -> tuple[list[int], list[str], float]:
        results: list[int] = []
        errors: list[str] = []
        gate = asyncio.Semaphore(8)
        clients = await asyncio.gather(*(connect(gate, errors) for _ in range(CLIENTS)))
        start = time.monotonic()
        stop_at = start + SECONDS
        await asyncio.gather(*(one(cl, results, errors, stop_at) for cl in clients if cl))
        return results, errors, time.monotonic() - start

    results, errors, took = asyncio.run(main())
    time.sleep(2)  # closed connections drain
    rss_after = _rss_kib(agent.proc.pid)
    total = sum(results)
    print(
        f"\n{CLIENTS} clients, {took:.1f} s: {total} calls ({total / took:.0f}/s), "
        f"agent RSS {rss_before / 1024:.1f} MiB before, {rss_after / 1024:.1f} MiB after"
    )
    assert errors == []
    assert len(results) == CLIENTS and min(results) >= 1
    assert rss_after - rss_before < 96 * 1024, (rss_before, rss_after)
    # and the agent still answers
    done = agent.remote(c, "gpu", "list", "--json")
    assert done.returncode == 0, done.stderr
