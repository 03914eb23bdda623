"""The agent's reading cache: readings are shared for a short age, never across a change
made through the agent, and a change made on the host shows once the age has passed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nvcontrol.agent.readcache import ReadCache
from tests.conftest import NvsimInstance
from tests.remote.agent_fixture import Agent, make_agent


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Loader:
    """An NVML read stand-in: counts its calls, returns a new object each time."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        return {"reading": self.calls}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_reading_is_shared_while_younger_than_the_max_age() -> None:
    clock, load = Clock(), Loader()
    cache = ReadCache(0.25, clock)

    async def go() -> list[Any]:
        a = await cache.read("gpu_info", {"selector": None}, load)
        clock.now += 0.2
        b = await cache.read("gpu_info", {"selector": None}, load)
        clock.now += 0.1  # 0.3 s after the first read started
        c = await cache.read("gpu_info", {"selector": None}, load)
        return [a, b, c]

    a, b, c = run(go())
    assert a is b and a == {"reading": 1}
    assert c == {"reading": 2} and load.calls == 2


def test_a_change_through_the_agent_is_never_hidden_by_the_cache() -> None:
    clock, load = Clock(), Loader()
    cache = ReadCache(10.0, clock)

    async def go() -> list[Any]:
        first = await cache.read("power_status", {"selector": None}, load)
        cache.begin_change()
        during = await cache.read("power_status", {"selector": None}, load)
        again = await cache.read("power_status", {"selector": None}, load)
        cache.end_change()
        after = await cache.read("power_status", {"selector": None}, load)
        kept = await cache.read("power_status", {"selector": None}, load)
        return [first, during, again, after, kept]

    first, during, again, after, kept = run(go())
    assert [first["reading"], during["reading"], again["reading"]] == [1, 2, 3]
    assert after == {"reading": 4} and kept is after


def test_a_reading_that_started_before_a_change_is_not_kept() -> None:
    load = Loader()
    cache = ReadCache(10.0, Clock())

    async def go() -> tuple[Any, Any]:
        load.gate = asyncio.Event()
        early = asyncio.ensure_future(cache.read("gpu_info", {}, load))
        await asyncio.sleep(0)
        cache.begin_change()
        cache.end_change()
        load.gate.set()
        old = await early
        load.gate = None
        return old, await cache.read("gpu_info", {}, load)

    old, new = run(go())
    assert old == {"reading": 1} and new == {"reading": 2}


def test_callers_that_miss_together_share_one_read() -> None:
    load = Loader()
    cache = ReadCache(1.0, Clock())

    async def go() -> list[Any]:
        load.gate = asyncio.Event()
        reads = [
            asyncio.ensure_future(cache.read("gpu_list", {"selector": "0"}, load))
            for _ in range(50)
        ]
        await asyncio.sleep(0)
        load.gate.set()
        return await asyncio.gather(*reads)

    values = run(go())
    assert load.calls == 1 and all(v is values[0] for v in values)


def test_arguments_methods_and_age_zero_are_kept_apart() -> None:
    load = Loader()
    cache = ReadCache(1.0, Clock())
    off = ReadCache(0.0, Clock())

    async def go() -> None:
        await cache.read("gpu_info", {"selector": "0"}, load)
        await cache.read("gpu_info", {"selector": "1"}, load)
        await cache.read("snapshot_list", {}, load)  # not a GPU reading: never cached
        await cache.read("snapshot_list", {}, load)
        await cache.read("sample", {}, load)  # `gpu watch` wants each sample fresh
        await cache.read("sample", {}, load)
        await off.read("gpu_info", {"selector": "0"}, load)
        await off.read("gpu_info", {"selector": "0"}, load)

    run(go())
    assert load.calls == 8


# ----------------------------------------------------------------------------- a real agent


@pytest.fixture
def slow_cache_agent(nvsim_gpus: NvsimInstance, tmp_path: Path) -> Iterator[Agent]:
    """An agent whose readings would stay 10 s old if a change did not clear them."""
    a = make_agent(nvsim_gpus, tmp_path / "remote")
    a.start("--read-cache-ms", "10000")
    try:
        yield a
    finally:
        assert "Traceback" not in a.stop()


def _limits(done: Any) -> list[float]:
    assert done.returncode == 0, done.stderr
    return [g["limit_w"] for g in json.loads(done.stdout)["gpus"]]


@pytest.mark.nvsim
def test_a_remote_read_right_after_a_remote_change_shows_it(slow_cache_agent: Agent) -> None:
    agent = slow_cache_agent
    c = agent.client("operator")
    before = _limits(agent.remote(c, "power", "status", "--json"))
    assert 300 not in before
    done = agent.remote(c, "power", "limit", "--watts", "300", "--window", "0")
    assert done.returncode == 0, done.stderr
    assert _limits(agent.remote(c, "power", "status", "--json")) == [300, 300]
    info = json.loads(agent.remote(c, "gpu", "info", "--json").stdout)
    assert [g["power"]["limit_w"] for g in info["gpus"]] == [300, 300]


@pytest.mark.nvsim
def test_a_change_made_on_the_host_shows_once_the_age_has_passed(
    nvsim_gpus: NvsimInstance, tmp_path: Path
) -> None:
    agent = make_agent(nvsim_gpus, tmp_path / "remote")
    agent.start("--read-cache-ms", "300")
    try:
        c = agent.client("viewer")
        assert 310 not in _limits(agent.remote(c, "power", "status", "--json"))
        local = agent.gpus.nvctl("power", "limit", "-i", "0", "--watts", "310", "--window", "0")
        assert local.returncode == 0, local.stderr
        time.sleep(0.35)
        assert _limits(agent.remote(c, "power", "status", "--json"))[0] == 310
    finally:
        assert "Traceback" not in agent.stop()
