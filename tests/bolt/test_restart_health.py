"""Restart policies and health checks, run by the per-container monitor: counted runs,
capped back-off, stop is not a failure, a killed monitor repaired by the next command,
health status and its events."""

from __future__ import annotations

import os
import signal
import time

import pytest

from bolt.engine import Engine
from tests.bolt.conftest import Bolt, processes_with_arg
from tests.nvsim.helpers import wait_for

pytestmark = [pytest.mark.root, pytest.mark.runtime]


def _events(bolt: Bolt, name: str, since: float) -> list[tuple[str, dict]]:
    with Engine(bolt.root) as eng:
        return [(e.type, e.attributes) for e in eng.events(since, follow=False) if e.name == name]


def test_on_failure_3_runs_a_failing_container_exactly_4_times(bolt: Bolt) -> None:
    since = time.time()
    bolt.ok("run", "-d", "--name", "flaky", "--restart", "on-failure:3",
            "busybox", "sh", "-c", "echo run; exit 3")  # fmt: skip
    assert bolt.ok("wait", "flaky", timeout=60).strip() == "3"
    info = bolt.inspect("flaky")
    assert (info["status"], info["exit_code"], info["restart_count"]) == ("exited", 3, 3)
    assert bolt.ok("logs", "flaky") == "run\n" * 4
    kinds = [k for k, _ in _events(bolt, "flaky", since)]
    assert kinds.count("started") == 4 and kinds.count("restarted") == 3
    assert "restarts=3" in bolt.ok("ps", "-a")


def test_stop_is_not_a_failure_for_restart_always(bolt: Bolt) -> None:
    bolt.ok("run", "-d", "--name", "steady", "--restart", "always", "busybox", "sleep", "30")
    bolt.ok("stop", "-t", "0", "steady")
    assert bolt.inspect("steady")["status"] == "exited"
    assert not wait_for(lambda: bolt.inspect("steady")["status"] != "exited", timeout=1.0)
    assert bolt.inspect("steady")["restart_count"] == 0


def test_restart_always_survives_kill_9_of_its_monitor(bolt: Bolt) -> None:
    bolt.ok("run", "-d", "--name", "phoenix", "--restart", "always", "busybox", "sleep", "303.5")
    before = bolt.inspect("phoenix")
    os.kill(before["monitor_pid"], signal.SIGKILL)
    (entry,) = bolt.ps()  # the next command repairs it
    assert entry["status"] == "running" and entry["restart_count"] == 1
    after = bolt.inspect("phoenix")
    assert after["supervised"] and after["monitor_pid"] != before["monitor_pid"]
    assert after["pid"] != before["pid"]
    assert wait_for(lambda: len(processes_with_arg("sleep 303.5")) == 1)
    bolt.ok("stop", "-t", "0", "phoenix")  # and its new monitor still obeys a stop
    assert bolt.inspect("phoenix")["status"] == "exited"


def test_a_failing_health_check_turns_unhealthy_within_interval_times_retries(bolt: Bolt) -> None:
    since = time.time()
    bolt.ok("run", "-d", "--name", "sick", "--health-cmd", "test -e /tmp/ok",
            "--health-interval", "0.3s", "--health-retries", "2", "busybox", "sleep", "30")  # fmt: skip
    started = time.monotonic()
    assert wait_for(lambda: bolt.inspect("sick")["health"] == "unhealthy", timeout=10)
    # interval x retries = 0.6 s, plus the runtime's exec time on a loaded host
    assert time.monotonic() - started < 0.6 + 5
    bolt.ok("exec", "sick", "touch", "/tmp/ok")
    assert wait_for(lambda: bolt.inspect("sick")["health"] == "healthy", timeout=10)
    assert "(healthy)" in bolt.ok("ps")
    health = [a["health"] for k, a in _events(bolt, "sick", since) if k == "health"]
    assert health == ["unhealthy", "healthy"]


def test_no_healthcheck_and_a_passing_check(bolt: Bolt) -> None:
    bolt.ok("run", "-d", "--name", "fine", "--health-cmd", "true", "--health-interval", "0.2s",
            "busybox", "sleep", "30")  # fmt: skip
    assert wait_for(lambda: bolt.inspect("fine")["health"] == "healthy", timeout=10)
    bolt.ok("run", "-d", "--name", "plain", "--no-healthcheck", "busybox", "sleep", "30")
    assert bolt.inspect("plain")["health"] is None
