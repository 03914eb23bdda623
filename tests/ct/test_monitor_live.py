"""``nvctl ct monitor`` fed by a real agent on nvsim (``nvctl agent serve`` is the program
gpu-monitor runs): the Textual view driven headless with its Pilot, the plain-text and
JSON-lines fallbacks, and the agent's ``/api/stream``."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from nvcontrol.ct.monitor_feed import Source, events, pinned
from tests.conftest import NvsimInstance, tool
from tests.remote.agent_fixture import Agent, make_agent


@dataclass
class Live:
    agent: Agent
    token: str
    cert: str

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.agent.http_port}"

    def source(self, **kw: Any) -> Source:
        return Source(self.url, self.token, pinned(self.cert), **kw)

    def monitor(self, *args: str, token: str | None = None) -> Any:
        env = dict(self.agent.env)
        env["NVCTL_TOKEN"] = self.token if token is None else token
        env["NVCTL_STATE_DIR"] = str(self.agent.tmp / "viewer-state")
        import subprocess

        return subprocess.run(
            [tool("nvctl"), "ct", "monitor", "--url", self.url, "--cert", self.cert, *args],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip


def _token(agent: Agent, name: str) -> str:
    done = agent.admin("token", "create", name, "--role", "viewer")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture
def live(nvsim_gpus: NvsimInstance, tmp_path: Path) -> Iterator[Live]:
    a = make_agent(nvsim_gpus, tmp_path / "agent")
    a.start()
    try:
        cert = Path(a.env["NVCTL_STATE_DIR"]) / "agent" / "cert.pem"
        assert cert.exists()
        yield Live(a, _token(a, "viewer"), str(cert))
    finally:
        log = a.stop()
        assert "Traceback" not in log, log


async def _until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def _row(app: Any, gpu: int, key: str) -> Any:
    from nvcontrol.ct.monitor_app import GpuPanel

    return app.query_one(f"#gpu-{gpu}", GpuPanel).rows[key]


def _spark(app: Any, gpu: int, key: str) -> list[float]:
    return list(_row(app, gpu, key).points)


def _text(app: Any, selector: str) -> str:
    from textual.widgets import Static

    return str(app.query_one(selector, Static).render())


def test_full_screen_graphs_follow_the_load_nvsim_puts_on_a_gpu(live: Live) -> None:
    from nvcontrol.ct.monitor_app import GpuPanel, MonitorApp

    nv = live.agent.gpus
    uuids = [g["uuid"] for g in nv.status()["gpus"]]

    async def scenario() -> None:
        app = MonitorApp(lambda: events(live.source()), live.url, {uuids[1]: ["gpu-manager"]})
        async with app.run_test(size=(120, 40)) as pilot:
            await _until(lambda: len(app.query(GpuPanel)) == 2, "two GPU panels")
            assert [p.uuid for p in app.query(GpuPanel)] == uuids
            assert "gpu-manager" in str(app.query_one("#gpu-1", GpuPanel).border_subtitle)
            await _until(lambda: "2 GPU(s)" in _text(app, "#status"), "the status line")
            await asyncio.to_thread(nv.run, "load", "1", "80")
            await _until(lambda: _spark(app, 1, "utilization_pct")[-1:] == [80.0], "80 % on GPU 1")
            assert _row(app, 1, "utilization_pct").now == "80 %"
            assert _row(app, 1, "utilization_pct").span == "0..80"
            drawn = app.query_one("#gpu-1", GpuPanel).line_text(3)  # temp, power, SM, util
            assert drawn.startswith("util") and "80 %" in drawn and drawn.rstrip().endswith("0..80")
            assert "█" in drawn and "▁" in drawn  # the graph rose from 0 to 80
            assert _spark(app, 0, "utilization_pct")[-1] == 0.0
            # the load heats GPU 1 and draws power: its graphs climb, GPU 0's stay flat
            await _until(lambda: _spark(app, 1, "temperature_c")[-1] > _spark(app, 0, "temperature_c")[-1] + 3, "GPU 1 warming")  # fmt: skip
            assert _spark(app, 1, "power_w")[-1] > _spark(app, 0, "power_w")[-1]
            sm = nv.status()["gpus"][1]["clocks_mhz"]["sm"]
            await _until(lambda: _spark(app, 1, "sm_clock_mhz")[-1] == sm, f"SM at {sm} MHz")
            assert _spark(app, 1, "sm_clock_mhz")[-1] > _spark(app, 0, "sm_clock_mhz")[-1]
            assert _spark(app, 0, "fan_pct"), "an RTX 4090 has fans: their graph is drawn"

            await pilot.press("p")
            frozen = len(_spark(app, 1, "utilization_pct"))
            recorded = app.samples
            await _until(lambda: app.samples >= recorded + 2, "samples while paused")
            assert len(_spark(app, 1, "utilization_pct")) == frozen
            assert "paused" in _text(app, "#status")
            await pilot.press("p")
            await _until(lambda: len(_spark(app, 1, "utilization_pct")) > frozen, "resumed")
            await pilot.press("q")
        assert app.return_code == 0

    asyncio.run(scenario())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_gpu_monitor_shows_the_message_then_reconnects(live: Live) -> None:
    from nvcontrol.ct.monitor_app import GpuPanel, MonitorApp

    port = _free_port()
    live.agent.stop()
    source = Source(f"https://127.0.0.1:{port}", live.token, pinned(live.cert))

    async def scenario() -> None:
        app = MonitorApp(lambda: events(source, retry_s=0.3), source.url)
        async with app.run_test(size=(120, 40)):
            await _until(lambda: "unreachable" in _text(app, "#status"), "the message")
            status = _text(app, "#status")
            assert source.url in status and "retrying" in status
            assert not app.query(GpuPanel)
            again = make_agent(live.agent.gpus, live.agent.tmp)  # same state: same token
            await asyncio.to_thread(again.start, "--http", f"127.0.0.1:{port}")
            try:
                await _until(lambda: len(app.query(GpuPanel)) == 2, "panels after reconnect")
                assert "unreachable" not in _text(app, "#status")
            finally:
                await asyncio.to_thread(again.stop)
            await _until(lambda: "unreachable" in _text(app, "#status"), "the message again")
            assert len(app.query(GpuPanel)) == 2, "the last readings stay on screen"

    asyncio.run(scenario())


def test_text_fallback_prints_a_line_per_gpu_when_stdout_is_not_a_terminal(live: Live) -> None:
    done = live.monitor("--count", "2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 6  # a time line and two GPU lines, twice
    assert [line.split()[:2] for line in lines[1:3]] == [["GPU", "0"], ["GPU", "1"]]
    assert "°C" in lines[1] and " W" in lines[1] and "MHz" in lines[1]


def test_json_lines_carry_every_gpu_as_nvsim_reports_it(live: Live) -> None:
    nv = live.agent.gpus
    nv.run("load", "0", "55")
    # utilization is an averaged sensor: it reaches the load over a few tenths of a second
    deadline = time.monotonic() + 10
    while nv.status()["gpus"][0]["utilization"]["gpu_pct"] != 55:
        assert time.monotonic() < deadline, nv.status()["gpus"][0]["utilization"]
        time.sleep(0.1)
    time.sleep(1.1)  # the agent samples once a second: its next sample is after that
    done = live.monitor("--count", "3", "--json")
    assert done.returncode == 0, done.stderr
    docs = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(docs) == 3
    uuids = [g["uuid"] for g in nv.status()["gpus"]]
    times = [d["time"] for d in docs]
    assert times == sorted(times) and len(set(times)) == 3
    for d in docs:
        assert [g["uuid"] for g in d["gpus"]] == uuids
        assert [g["utilization_pct"] for g in d["gpus"]] == [55, 0]
        assert all(g["model"] == "NVIDIA GeForce RTX 4090" for g in d["gpus"])


def test_unreachable_or_refused_gpu_monitor_is_a_clear_error(live: Live) -> None:
    refused = live.monitor("--count", "1", token="")
    assert refused.returncode == 4, refused.stderr
    assert "refused the login" in refused.stderr and "Traceback" not in refused.stderr
    port = _free_port()
    env = dict(live.agent.env, NVCTL_TOKEN=live.token)
    import subprocess

    gone = subprocess.run(
        [tool("nvctl"), "ct", "monitor", "--url", f"https://127.0.0.1:{port}", "--count", "1"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert gone.returncode == 1
    assert "unreachable" in gone.stderr and "Traceback" not in gone.stderr
    bad = live.monitor("--url", "http://127.0.0.1:1")
    assert bad.returncode == 2 and "https://HOST:PORT" in bad.stderr


def test_stream_needs_a_viewer_login_and_ends_when_the_token_is_revoked(live: Live) -> None:
    with httpx.Client(verify=pinned(live.cert), timeout=10) as client:
        assert client.get(f"{live.url}/api/stream").status_code == 401
        auth = {"Authorization": f"Bearer {live.token}"}
        assert client.get(f"{live.url}/api/stream?history=x", headers=auth).status_code == 400
        began = time.monotonic()
        seen: list[dict[str, Any]] = []
        with client.stream("GET", f"{live.url}/api/stream?history=2", headers=auth) as resp:
            assert resp.headers["content-type"].startswith("application/x-ndjson")
            for text in resp.iter_lines():
                seen.append(json.loads(text))
                if len(seen) == 2:
                    assert live.agent.admin("token", "revoke", "viewer").returncode == 0
        assert seen[0]["t"] == "hello" and seen[0]["role"] == "viewer"
        assert 1 <= len(seen[0]["history"]) <= 2
        assert all(len(s["gpus"]) == 2 for s in seen[0]["history"])
        assert all(e["t"] == "sample" for e in seen[1:-1])
        assert seen[-1] == {"t": "error", "message": "the token was revoked"}
        assert time.monotonic() - began < 15


def test_a_viewer_that_does_not_read_skips_samples_instead_of_piling_them_up() -> None:
    from nvcontrol.agent.stream import QUEUE, SampleStream, Viewer

    hub = SampleStream()
    slow = Viewer(asyncio.Queue(maxsize=QUEUE))
    hub.viewers.add(slow)
    for n in range(QUEUE * 5):
        hub.publish({"time": float(n), "gpus": []})
    assert slow.queue.qsize() == QUEUE
    assert slow.skipped == QUEUE * 4
    assert slow.queue.get_nowait()["time"] == float(QUEUE * 4)  # the newest ones are kept


def test_a_lost_gpu_monitor_is_looked_up_again_and_its_old_address_never_retried(
    live: Live,
) -> None:
    from basis.errors import NotFound

    dead = f"https://127.0.0.1:{_free_port()}"
    lookups: list[str] = []

    async def relocate(source: Source) -> None:
        lookups.append(source.url)
        if len(lookups) < 3:
            raise NotFound("gpu-monitor is not running")
        source.url = live.url  # the service is back, at another address

    async def scenario() -> list[dict[str, Any]]:
        source = Source(dead, live.token, pinned(live.cert), relocate=relocate)
        seen: list[dict[str, Any]] = []
        async for event in events(source, retry_s=0.1):
            seen.append(event)
            if event["t"] == "hello":
                return seen
        raise AssertionError("the stream ended")

    seen = asyncio.run(scenario())
    assert [e["t"] for e in seen] == ["down", "down", "down", "hello"]
    assert "unreachable" in seen[0]["message"] and dead in seen[0]["message"]
    assert (
        seen[1]["message"]
        == seen[2]["message"]
        == ("gpu-monitor is not reachable: gpu-monitor is not running")
    )
    assert seen[3]["url"] == live.url and len(seen[3]["names"]) == 2
    assert lookups == [dead, dead, dead]  # looked up before each retry, never dialled meanwhile
