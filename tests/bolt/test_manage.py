"""``bolt pause|unpause|stats|top|events|port|rename|cp``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bolt.engine import Engine
from bolt.engine import stats as usage
from tests.bolt.conftest import Bolt
from tests.nvsim.helpers import wait_for

pytestmark = [pytest.mark.root, pytest.mark.runtime]

SPIN = "while true; do :; done"


def _cpu(bolt: Bolt, name: str) -> float:
    with Engine(bolt.root) as eng:
        return usage.sample(eng.db.get(name)).cpu_seconds


def test_pause_freezes_the_processes_and_unpause_resumes_them(bolt: Bolt) -> None:
    since = time.time()
    bolt.ok("run", "-d", "--name", "spinner", "busybox", "sh", "-c", SPIN)
    assert wait_for(lambda: _cpu(bolt, "spinner") > 0.05)
    assert bolt.ok("pause", "spinner").strip() == "spinner"
    assert bolt.inspect("spinner")["status"] == "paused" and "(Paused)" in bolt.ok("ps")
    frozen = _cpu(bolt, "spinner")
    time.sleep(0.5)  # the interval over which the CPU time must not move
    assert _cpu(bolt, "spinner") == frozen
    assert bolt("pause", "spinner").returncode == 2  # already paused
    bolt.ok("unpause", "spinner")
    assert wait_for(lambda: _cpu(bolt, "spinner") > frozen + 0.05)
    assert bolt.inspect("spinner")["status"] == "running"
    with Engine(bolt.root) as eng:
        kinds = [e.type for e in eng.events(since, follow=False) if e.name == "spinner"]
    assert kinds == ["created", "started", "paused", "unpaused"]
    bolt.ok("pause", "spinner")
    bolt.ok("stop", "-t", "1", "spinner")  # a paused container can still be stopped
    assert bolt.inspect("spinner")["status"] == "exited"


def test_stats_and_top_show_the_container(bolt: Bolt) -> None:
    bolt.ok("run", "-d", "--name", "watched", "--memory", "64m", "busybox",
            "sh", "-c", "sleep 300 & " + SPIN)  # fmt: skip
    (line,) = bolt.ok("stats", "--no-stream", "--json", "watched").splitlines()
    s = json.loads(line)
    assert s["name"] == "watched" and s["pids"] == 2 and s["memory"] > 0
    assert s["memory_limit"] == 64 << 20 and s["cpu_percent"] > 0
    table = bolt.ok("stats", "--no-stream")
    assert "watched" in table and "CPU %" in table
    procs = json.loads(bolt.ok("top", "--json", "watched"))
    assert sorted(p["command"] for p in procs) == sorted(["sh -c sleep 300 & " + SPIN, "sleep 300"])
    assert "sleep 300" in bolt.ok("top", "watched")


def test_port_lists_published_ports(bolt: Bolt) -> None:
    bolt.ok("network", "create", "portnet")
    try:
        bolt.ok("run", "-d", "--name", "ported", "--network", "portnet",
                "-p", "127.0.0.1::80", "-p", "5353:53/udp", "busybox", "sleep", "30")  # fmt: skip
        lines = bolt.ok("port", "ported").splitlines()
        assert lines[1] == "53/udp -> 0.0.0.0:5353"
        assert lines[0].startswith("80/tcp -> 127.0.0.1:")
        assert bolt.ok("port", "ported", "53/udp") == "0.0.0.0:5353\n"
        assert bolt("port", "ported", "81").returncode == 2
    finally:
        bolt("rm", "-f", "ported")
        bolt.ok("network", "rm", "portnet")


def test_rename(bolt: Bolt) -> None:
    bolt.ok("run", "-d", "--name", "before", "busybox", "sleep", "30")
    bolt.ok("run", "-d", "--name", "taken", "busybox", "sleep", "30")
    bolt.ok("rename", "before", "after")
    assert bolt.inspect("after")["status"] == "running"
    assert bolt("inspect", "before").returncode == 2
    refused = bolt("rename", "after", "taken")
    assert refused.returncode == 2 and "already in use" in refused.stderr
    assert bolt("rename", "after", "bad name!").returncode == 2


def test_cp_both_directions(bolt: Bolt, tmp_path: Path) -> None:
    bolt.ok("run", "-d", "--name", "box", "busybox", "sleep", "30")
    (tmp_path / "in.txt").write_text("to the container\n")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f").write_text("deep\n")
    bolt.ok("cp", str(tmp_path / "in.txt"), "box:/tmp/")
    bolt.ok("cp", str(tree), "box:/srv")
    assert bolt.ok("exec", "box", "cat", "/tmp/in.txt", "/srv/sub/f") == "to the container\ndeep\n"
    bolt.ok("cp", "box:/etc/passwd", str(tmp_path / "passwd"))
    assert (tmp_path / "passwd").read_text().startswith("root:x:0:0")
    out = tmp_path / "out"
    out.mkdir()
    bolt.ok("cp", "box:/srv", str(out))
    assert (out / "srv" / "sub" / "f").read_text() == "deep\n"
    assert bolt("cp", "box:/no/such", str(out)).returncode == 2
    bolt.ok("stop", "-t", "0", "box")
    refused = bolt("cp", "box:/etc/passwd", str(out))
    assert refused.returncode == 2 and "not running" in refused.stderr


def test_events_json_between_since_and_until(bolt: Bolt) -> None:
    since = time.time()
    assert bolt("run", "--name", "evt", "busybox", "sh", "-c", "exit 5").returncode == 5
    until = time.time()
    lines = bolt.ok("events", "--json", "--since", str(since), "--until", str(until)).splitlines()
    mine = [json.loads(x) for x in lines if json.loads(x)["name"] == "evt"]
    assert [(e["type"], e["attributes"].get("exit_code")) for e in mine] == [
        ("created", None), ("started", None), ("exited", 5),
    ]  # fmt: skip
    assert bolt("events", "--since", "yesterday-ish", "--until", "now").returncode == 2
