"""The monitor outlives the CLI; kill -9 of either leaves state that tells the truth and
that ``bolt rm -f`` removes completely (no mounts, cgroups or processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.bolt.conftest import (
    Bolt,
    container_ids_on_disk,
    leftover_resources,
    processes_in_container_cgroup,
    processes_with_arg,
    unique_seconds,
)
from tests.conftest import tool
from tests.nvsim.helpers import wait_for

pytestmark = [pytest.mark.root, pytest.mark.runtime]


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _stat(pid: int) -> list[str]:
    """state, ppid, ... (the fields after the command name)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


@pytest.mark.parametrize("runtime", ["crun", "runc"])
def test_detached_container_outlives_its_cli_and_leaves_no_zombies(
    bolt: Bolt, runtime: str
) -> None:
    bolt.ok(
        "run", "-d", "--runtime", runtime, "--name", "orphans", "busybox",
        "sh", "-c", "sleep 0.2 & sleep 0.2 & sleep 30",
    )  # fmt: skip
    info = bolt.inspect("orphans")
    # the two short sleeps have ended (sh exec'd `sleep 30`, which never reaps them)
    assert wait_for(lambda: [_stat(c)[0] for c in _children(info["pid"])] == ["Z", "Z"])
    assert info["status"] == "running" and info["supervised"]
    # The monitor's one child is the runtime's foreground run, whose one child is the
    # container's init; neither is a zombie.
    (runtime_pid,) = _children(info["monitor_pid"])
    assert Path(f"/proc/{runtime_pid}/comm").read_text().strip() == runtime
    assert int(_stat(info["pid"])[1]) == runtime_pid
    assert [_stat(runtime_pid)[0], _stat(info["pid"])[0]] == ["S", "S"]


def _kill_bolt_run_after(bolt: Bolt, delay: float, *args: str) -> list[dict]:
    """``kill -9`` of ``bolt run -d ARGS`` after ``delay`` seconds; the containers once a
    monitor that was already forked has finished starting."""
    cli = subprocess.Popen(
        [tool("bolt"), "run", "-d", *args],
        env=bolt.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(delay)
    cli.send_signal(signal.SIGKILL)
    cli.wait()
    assert wait_for(lambda: all(e["status"] != "creating" for e in bolt.ps()))
    return bolt.ps()


@pytest.mark.parametrize("delay", [0.0, 0.03, 0.08, 0.15, 0.4])
def test_kill_9_of_bolt_run_d_leaves_truthful_state(bolt: Bolt, delay: float) -> None:
    marker = unique_seconds(300 + int(delay * 100))
    listed = _kill_bolt_run_after(bolt, delay, "--name", "victim", "busybox", "sleep", marker)
    running_now = processes_with_arg(f"sleep {marker}")
    if listed:
        (entry,) = listed
        assert entry["name"] == "victim"
        # "running" exactly when the container's process really runs.
        assert (entry["status"] == "running") == bool(running_now), (entry, running_now)
        cid = entry["id"]
    else:
        assert running_now == [] and container_ids_on_disk(bolt.root) == []
        cid = None
    bolt.ok("rm", "-f", "victim") if listed else None
    assert bolt.ps() == []
    assert processes_with_arg(f"sleep {marker}") == []
    assert leftover_resources(bolt.root) == []
    if cid:
        assert leftover_resources(bolt.root, cid) == []
        assert processes_in_container_cgroup(cid) == []


@pytest.mark.parametrize("delay", [0.05, 0.1, 0.14, 0.2, 0.4])
def test_kill_9_of_bolt_run_rm_leaves_a_running_container_or_nothing(
    bolt: Bolt, delay: float
) -> None:
    marker = unique_seconds(320 + int(delay * 100))
    listed = _kill_bolt_run_after(
        bolt, delay, "--rm", "--name", "victim-rm", "busybox", "sleep", marker
    )
    assert [e["status"] for e in listed] in ([], ["running"]), listed  # never a failed --rm
    if listed:
        assert processes_with_arg(f"sleep {marker}") != []
        bolt.ok("rm", "-f", "victim-rm")
    assert processes_with_arg(f"sleep {marker}") == []
    assert leftover_resources(bolt.root) == [] and container_ids_on_disk(bolt.root) == []


@pytest.mark.parametrize("remove", [False, True], ids=["kept", "rm"])
def test_a_creator_that_died_while_creating_leaves_failed_or_nothing(
    bolt: Bolt, remove: bool
) -> None:
    """A process recorded and laid out a container, then died before any monitor."""
    script = (
        "import os, sys; from pathlib import Path; from bolt.engine import ContainerIntent, "
        "containers; from bolt.state.db import StateDB; "
        "containers.prepare(Path(sys.argv[1]), ContainerIntent(image='busybox', "
        "auto_remove=sys.argv[2] == '1'), StateDB(Path(sys.argv[1])), 'orphaned'); os._exit(0)"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(bolt.root), "1" if remove else "0"], check=True
    )
    if remove:
        assert bolt.ps() == []
        assert leftover_resources(bolt.root) == [] and container_ids_on_disk(bolt.root) == []
    else:
        (entry,) = bolt.ps()
        assert entry["status"] == "failed"
        bolt.ok("rm", "orphaned")
        assert leftover_resources(bolt.root) == []


def test_kill_9_of_the_monitor_is_reported_and_rm_f_cleans_up(bolt: Bolt) -> None:
    marker = unique_seconds(301)
    cid = bolt.ok("run", "-d", "--name", "lost", "busybox", "sleep", marker).strip()
    info = bolt.inspect("lost")
    os.kill(info["monitor_pid"], signal.SIGKILL)
    assert wait_for(lambda: bolt.ps()[0]["supervised"] is False)
    (entry,) = bolt.ps()
    assert entry["status"] == "running" and entry["supervised"] is False
    assert "monitor lost" in bolt.ok("ps")
    assert processes_with_arg(f"sleep {marker}") != []  # still truly running
    bolt.ok("rm", "-f", "lost")
    assert processes_with_arg(f"sleep {marker}") == []
    assert processes_in_container_cgroup(cid) == []
    assert leftover_resources(bolt.root) == leftover_resources(bolt.root, cid) == []


def test_container_exit_after_its_monitor_died_is_noticed(bolt: Bolt) -> None:
    bolt.ok("run", "-d", "--name", "short", "busybox", "sleep", "3")
    os.kill(bolt.inspect("short")["monitor_pid"], signal.SIGKILL)
    assert wait_for(lambda: bolt.ps()[0]["status"] == "exited", timeout=20)
    (entry,) = bolt.ps()
    assert entry["status"] == "exited" and entry["exit_code"] is None  # nobody saw the code
    assert "Exited (?)" in bolt.ok("ps", "-a")
    assert leftover_resources(bolt.root, entry["id"]) == [f"container dir {entry['id']}"]


def test_a_rm_container_that_ends_after_its_monitor_died_is_still_removed(bolt: Bolt) -> None:
    cid = bolt.ok("run", "-d", "--rm", "--name", "short-rm", "busybox", "sleep", "2").strip()
    os.kill(bolt.inspect("short-rm")["monitor_pid"], signal.SIGKILL)
    assert bolt.ps()[0]["status"] == "running"  # the container outlives its monitor
    assert wait_for(lambda: bolt.ps() == [], timeout=20)  # the next look removes it
    assert bolt("inspect", "short-rm").returncode == 2
    assert leftover_resources(bolt.root) == leftover_resources(bolt.root, cid) == []
    assert processes_in_container_cgroup(cid) == []
