"""Detached containers: ps, logs -f, exec, stop, kill, wait, inspect, rm, prune."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.bolt.conftest import (
    Bolt,
    container_ids_on_disk,
    leftover_resources,
    processes_with_arg,
    unique_seconds,
)
from tests.conftest import tool
from tests.nvsim.helpers import wait_for

pytestmark = [pytest.mark.root, pytest.mark.runtime]

TICKER = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"


def test_detached_container_is_listed_logged_and_stopped(bolt: Bolt) -> None:
    cid = bolt.ok("run", "-d", "--name", "ticker", "busybox", "sh", "-c", TICKER).strip()
    assert len(cid) == 64
    (entry,) = bolt.ps()
    assert (entry["id"], entry["name"], entry["status"], entry["supervised"]) == (
        cid,
        "ticker",
        "running",
        True,
    )
    assert bolt.ok("ps", "-q").split() == [cid[:12]]
    assert wait_for(lambda: bolt.ok("logs", "ticker").count("tick") >= 2)
    assert bolt.ok("logs", "--tail", "2", "ticker").count("tick") == 2
    assert bolt.ok("stop", "-t", "1", "ticker").strip() == "ticker"
    stopped = bolt.inspect("ticker")
    assert stopped["status"] == "exited" and stopped["exit_code"] == 137  # sh ignores TERM as pid 1
    assert bolt.ok("ps").count("\n") == 1  # only the header: -a is needed to see it
    assert bolt.ok("wait", "ticker").strip() == "137"


def test_stop_uses_the_signal_and_records_a_clean_exit(bolt: Bolt) -> None:
    bolt.ok(
        "run",
        "-d",
        "--name",
        "trapper",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 0' TERM; echo ready; while true; do sleep 0.1; done",
    )
    assert wait_for(lambda: bolt.ok("logs", "trapper") == "ready\n")
    start = time.monotonic()
    bolt.ok("stop", "-t", "10", "trapper")
    assert time.monotonic() - start < 5
    assert bolt.inspect("trapper")["exit_code"] == 0


def test_exec_passes_exit_code_env_and_workdir(bolt: Bolt) -> None:
    bolt.ok("run", "-d", "--name", "host1", "busybox", "sleep", "60")
    proc = bolt("exec", "-e", "X=42", "-w", "/tmp", "host1", "sh", "-c", "echo $X $(pwd); exit 5")
    assert (proc.returncode, proc.stdout) == (5, "42 /tmp\n")
    assert bolt.ok("exec", "-i", "host1", "cat", input="piped\n") == "piped\n"
    assert bolt.ok("exec", "-u", "nobody", "host1", "id", "-u") == "65534\n"
    assert bolt("exec", "nobody", "true").returncode == 2


def test_kill_sends_the_signal_and_wait_returns_the_code(bolt: Bolt) -> None:
    bolt.ok(
        "run",
        "-d",
        "--name",
        "k1",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 3' USR1; echo ready; while true; do sleep 0.1; done",
    )
    assert wait_for(lambda: bolt.ok("logs", "k1") == "ready\n")
    bolt.ok("kill", "-s", "USR1", "k1")
    assert bolt.ok("wait", "k1").strip() == "3"
    assert json.loads(bolt.ok("wait", "--json", "k1"))["exit_code"] == 3
    assert bolt("kill", "k1").returncode == 2  # not running any more


def test_logs_follow_streams_until_the_container_exits(bolt: Bolt) -> None:
    bolt.ok(
        "run",
        "-d",
        "--name",
        "f1",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo line $i; sleep 0.2; done",
    )
    out = bolt.ok("logs", "-f", "f1", timeout=20)
    assert out == "line 1\nline 2\nline 3\n"


def test_signals_to_bolt_run_are_forwarded(bolt: Bolt) -> None:
    proc = subprocess.Popen(
        [tool("bolt"), "run", "--rm", "busybox", "sh", "-c", "trap 'echo got-term; exit 9' TERM; echo ready; "
         "while true; do sleep 0.1; done"],
        env=bolt.env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    proc.terminate()
    assert proc.wait(timeout=10) == 9
    assert proc.stdout.read() == "got-term\n"


def test_rm_refuses_a_running_container_without_force(bolt: Bolt) -> None:
    marker = unique_seconds(61)
    cid = bolt.ok("run", "-d", "--name", "busy", "busybox", "sleep", marker).strip()
    refused = bolt("rm", "busy")
    assert refused.returncode == 2 and "rm -f" in refused.stderr
    bolt.ok("rm", "-f", "busy")
    assert bolt.ps() == []
    assert leftover_resources(bolt.root, cid) == []
    assert processes_with_arg(marker) == []


def test_inspect_shows_config_and_labels(bolt: Bolt) -> None:
    bolt.ok("run", "--name", "i1", "-l", "org.bolt.config-hash=abc", "busybox", "true")
    info = bolt.inspect("i1")
    assert info["labels"] == {"org.bolt.config-hash": "abc"}
    assert info["config"]["annotations"]["org.bolt.config-hash"] == "abc"
    assert info["config"]["process"]["args"] == ["true"]
    assert info["status"] == "exited" and info["exit_code"] == 0


def test_system_prune_removes_stopped_containers_only(bolt: Bolt) -> None:
    bolt.ok("run", "--name", "done1", "busybox", "true")
    bolt.ok("run", "-d", "--name", "alive", "busybox", "sleep", "60")
    out = bolt.ok("system", "prune", "-f")
    assert "done1" in out
    assert [c["name"] for c in bolt.ps()] == ["alive"]


def test_ps_json_is_one_document(bolt: Bolt) -> None:
    bolt.ok("run", "--name", "j1", "busybox", "true")
    doc = json.loads(bolt.ok("ps", "-a", "--json"))
    assert [d["name"] for d in doc] == ["j1"]


def test_system_prune_removes_stale_mounts_of_unknown_containers(bolt: Bolt) -> None:
    import sqlite3

    cid = bolt.ok("run", "-d", "--name", "ghost", "busybox", "sleep", "62.5").strip()
    bolt.ok("stop", "-t", "0", "ghost")
    rootfs = bolt.root / "containers" / cid / "bundle" / "rootfs"
    subprocess.run(["mount", "-t", "tmpfs", "stale", str(rootfs)], check=True)
    with sqlite3.connect(bolt.root / "state.db") as conn:  # as if the row was lost
        conn.execute("DELETE FROM containers WHERE id=?", (cid,))
    assert leftover_resources(bolt.root, cid) != []
    bolt.ok("system", "prune", "-f")
    assert leftover_resources(bolt.root, cid) == []


def test_start_runs_an_exited_container_again(bolt: Bolt) -> None:
    script = "echo run >> /runs; echo run $(wc -l < /runs); exit $(wc -l < /runs)"
    assert bolt("run", "--name", "again", "busybox", "sh", "-c", script).returncode == 1
    attached = bolt("start", "-a", "again")
    assert (attached.returncode, attached.stdout) == (2, "run 2\n")
    assert bolt.ok("start", "again").strip() == "again"
    assert bolt.ok("wait", "again").strip() == "3"
    assert bolt.ok("logs", "again") == "run 1\nrun 2\nrun 3\n"
    bolt.ok("run", "-d", "--name", "busy2", "busybox", "sleep", "60")
    refused = bolt("start", "busy2")
    assert refused.returncode == 2 and "already running" in refused.stderr


def test_run_rm_leaves_no_files_and_prune_sweeps_what_a_killed_monitor_left(bolt: Bolt) -> None:
    from bolt.runtime.layout import removed_dir

    assert bolt.ok("run", "--rm", "busybox", "sh", "-c", "echo hi > /f; echo done") == "done\n"
    assert container_ids_on_disk(bolt.root) == []
    removed = removed_dir(bolt.root)
    assert wait_for(lambda: not removed.exists() or list(removed.iterdir()) == [], timeout=10)
    assert str(removed) not in Path("/proc/self/mountinfo").read_text()  # unmounted, then deleted
    left = removed / ("0" * 64) / "upper" / "etc"  # as a monitor killed mid-deletion leaves it
    left.mkdir(parents=True)
    (left / "hosts").write_text("x\n")
    # One killed before its sweep: the root file system is still mounted in the moved dir.
    mounted = removed / ("1" * 64) / "bundle" / "rootfs"
    mounted.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "bolt-test", str(mounted)], check=True)
    try:
        bolt.ok("system", "prune", "-f")
        assert str(mounted) not in Path("/proc/self/mountinfo").read_text()
        assert not removed.exists()
    finally:
        subprocess.run(["umount", "-l", str(mounted)], capture_output=True)
