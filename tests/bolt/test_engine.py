"""``bolt.engine.Engine``, the library surface Surge and the CLI share: stored intent and
spec hash, label queries, events, compare-and-set starts, one-shot runs, migrations."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from bolt.engine import Conflict, ContainerIntent, Engine
from bolt.errors import BoltError
from bolt.runtime import linux
from bolt.state.db import SCHEMA_VERSION, StateDB
from tests.bolt.conftest import Bolt, leftover_resources
from tests.conftest import tool

pytestmark = [pytest.mark.root, pytest.mark.runtime]


def test_create_start_wait_through_the_engine_keeps_intent_and_hash(bolt: Bolt) -> None:
    intent = ContainerIntent(
        image="busybox", command=["sh", "-c", "echo hi; exit 4"], labels={"app": "t1"}
    )
    with Engine(bolt.root) as eng:
        created = eng.create(intent, name="eng-job")
        assert created.status == "created"
        assert created.intent == intent and created.spec_hash == intent.spec_hash()
        assert eng.start("eng-job").status in ("running", "exited")
        assert eng.wait("eng-job") == 4
        assert [line.text for line in eng.logs("eng-job")] == ["hi\n"]
        assert [c.name for c in eng.list(labels={"app": "t1"})] == ["eng-job"]
        assert eng.list(labels={"app": "other"}) == []
        eng.remove("eng-job")
        assert eng.list(labels={"app": "t1"}) == []


def test_events_follow_the_lifecycle(bolt: Bolt) -> None:
    with Engine(bolt.root) as eng:
        since = time.time()
        eng.run(ContainerIntent(image="busybox", command=["sh", "-c", "exit 7"]), name="ev")
        assert eng.wait("ev") == 7
        eng.remove("ev")
        kinds = []
        for ev in eng.events(since=since, follow=False):
            if ev.name == "ev":
                kinds.append((ev.type, ev.attributes.get("exit_code")))
    assert kinds == [("created", None), ("started", None), ("exited", 7), ("removed", None)]


def test_async_helpers_wait_without_a_thread_per_container(bolt: Bolt) -> None:
    async def scenario() -> tuple[int | None, list[str]]:
        with Engine(bolt.root) as eng:
            await asyncio.to_thread(
                eng.run, ContainerIntent(image="busybox", command=["sleep", "0.3"]), "aw"
            )
            seen: list[str] = []

            async def watch() -> None:
                async for ev in eng.aevents():
                    if ev.name == "aw":
                        seen.append(ev.type)
                        if ev.type == "exited":
                            return

            code, _ = await asyncio.gather(eng.await_exit("aw", timeout=10), watch())
            await asyncio.to_thread(eng.remove, "aw")
            return code, seen

    code, seen = asyncio.run(scenario())
    assert code == 0 and seen == ["exited"]


def test_run_oneshot_streams_output_and_returns_the_code(bolt: Bolt) -> None:
    got: list[tuple[str, str]] = []
    with Engine(bolt.root) as eng:
        code = eng.run_oneshot(
            ContainerIntent(
                image="busybox", command=["sh", "-c", "echo a; echo b >&2; exit 3"],
                auto_remove=True,
            ),
            stream=lambda stream, text: got.append((stream, text)),
        )  # fmt: skip
        assert eng.list() == []
    assert code == 3
    assert sorted(got) == [("stderr", "b\n"), ("stdout", "a\n")]


def _children(pid: int) -> list[int]:
    """Live children (an exited monitor stays a zombie until the server's next reap)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split() if linux.proc_state(int(p)) not in (None, "Z", "X")]


def _warm_monitor(server: int) -> int:
    """The server's only child once the last job's monitor has gone: the warm monitor
    (no job yet, so no selector: a monitor with a job always waits in epoll)."""
    deadline = time.monotonic() + 10
    while True:
        kids = _children(server)
        with contextlib.suppress(OSError):
            fds = os.listdir(f"/proc/{kids[0]}/fd") if len(kids) == 1 else []
            links = [os.readlink(f"/proc/{kids[0]}/fd/{fd}") for fd in fds]
            if links and "anon_inode:[eventpoll]" not in links:
                return kids[0]
        assert time.monotonic() < deadline, f"{server} has children {kids}, none warm alone"
        time.sleep(0.02)


def test_the_warm_monitor_waits_detached_is_replaced_if_killed_and_ends_with_the_engine(
    bolt: Bolt,
) -> None:
    true = ContainerIntent(image="busybox", command=["true"], auto_remove=True)
    got: list[str] = []
    with Engine(bolt.root) as eng:
        assert eng.run_oneshot(true) == 0
        server = eng._monitor_server().pid
        warm = _warm_monitor(server)  # forked ahead, waiting for a job
        assert os.getsid(warm) == warm  # it has left the caller's session already
        targets = sorted(
            os.readlink(f"/proc/{warm}/fd/{fd}") for fd in os.listdir(f"/proc/{warm}/fd")
        )
        others = [t for t in targets if t != "/dev/null" and not t.startswith("socket:")]
        assert (
            targets.count("/dev/null") == 3 and sum(t.startswith("socket:") for t in targets) == 1
        )
        assert sorted(Path(t).name for t in others) == ["state.db", "state.db-shm", "state.db-wal"]
        os.kill(warm, signal.SIGKILL)  # dies while it waits: the next job needs another
        code = eng.run_oneshot(
            ContainerIntent(image="busybox", command=["echo", "ran"], auto_remove=True),
            stream=lambda stream, text: got.append(text),
        )
        assert code == 0 and got == ["ran\n"]
        next_warm = _warm_monitor(server)
        assert next_warm != warm
    deadline = time.monotonic() + 10  # closing the engine ends the server and its warm monitor
    while any(Path(f"/proc/{p}").exists() for p in (server, next_warm)):
        assert time.monotonic() < deadline, (
            "the monitor server or its warm monitor outlived the engine"
        )
        time.sleep(0.02)


@pytest.mark.parametrize("remove", [False, True], ids=["kept", "rm"])
def test_a_monitor_lost_before_the_start_leaves_it_failed_or_removed_not_creating(
    bolt: Bolt, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, remove: bool
) -> None:
    fake = tmp_path / "bin"  # a runtime whose "run" never creates the container
    fake.mkdir()
    real = shutil.which("crun")
    (fake / "crun").write_text(
        f'#!/bin/sh\ncase " $* " in *" run "*) exec sleep 30;; esac\nexec {real} "$@"\n'
    )
    (fake / "crun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    intent = ContainerIntent(image="busybox", command=["true"], runtime="crun", auto_remove=remove)
    with Engine(bolt.root) as eng:
        failures: list[BaseException] = []

        def start() -> None:
            try:
                eng.run(intent, name="lost-monitor")
            except BoltError as exc:
                failures.append(exc)

        starter = threading.Thread(target=start)
        starter.start()
        server = 0
        deadline = time.monotonic() + 10
        monitor = None
        while monitor is None:  # the monitor that has the job: its child is the fake runtime
            assert time.monotonic() < deadline, "no monitor ran the fake runtime"
            server = server or eng._monitor_server().pid
            for pid in _children(server) if server else []:
                if _children(pid):
                    monitor = pid
            time.sleep(0.02)
        runtime = _children(monitor)
        assert linux.is_monitor(monitor)
        os.kill(monitor, signal.SIGKILL)
        starter.join(10)
        for pid in runtime:
            os.kill(pid, signal.SIGKILL)
        assert [type(e).__name__ for e in failures] == ["MonitorLost"]
        if remove:  # --rm: nothing is left to inspect or remove
            assert eng.list() == [] and leftover_resources(bolt.root) == []
            return
        info = eng.inspect("lost-monitor")
        assert info.status == "failed"
        began = time.monotonic()
        eng.remove("lost-monitor", force=True)  # nothing to wait for, nobody to kill
        assert time.monotonic() - began < 5
        assert eng.list() == []


def test_rm_f_waits_for_a_creator_that_is_not_a_monitor_and_never_kills_it(bolt: Bolt) -> None:
    from bolt.engine import containers

    creator = subprocess.Popen(["sleep", "1.5"])  # stands in for a program still preparing it
    db = StateDB(bolt.root)
    try:
        row = containers.prepare(
            bolt.root, ContainerIntent(image="busybox", command=["true"]), db, name="half-made"
        ).row
        db.update(row.id, monitor_pid=creator.pid, monitor_start=linux.proc_start_time(creator.pid))
    finally:
        db.close()
    began = time.monotonic()
    bolt.ok("rm", "-f", "half-made")
    assert time.monotonic() - began > 0.5  # it waited for the creator to end on its own
    assert creator.wait(5) == 0  # not killed
    assert [c["name"] for c in bolt.ps()] == []


def test_two_threads_starting_one_container_one_wins(bolt: Bolt) -> None:
    with Engine(bolt.root) as eng:
        eng.create(ContainerIntent(image="busybox", command=["sleep", "30"]), name="cas-t")
    results: list[str] = []
    barrier = threading.Barrier(2)

    def starter() -> None:
        with Engine(bolt.root) as eng:
            barrier.wait()
            try:
                eng.start("cas-t")
                results.append("won")
            except Conflict:
                results.append("conflict")

    threads = [threading.Thread(target=starter) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict", "won"]
    assert bolt.inspect("cas-t")["status"] == "running"


def test_two_processes_starting_one_stopped_container_one_wins(bolt: Bolt) -> None:
    since = time.time()
    bolt.ok("run", "-d", "--name", "cas-p", "busybox", "sleep", "30")
    bolt.ok("stop", "-t", "0", "cas-p")
    procs = [
        subprocess.Popen(
            [tool("bolt"), "start", "cas-p"],
            env=bolt.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(4)
    ]  # fmt: skip
    outcomes = [(p.wait(timeout=60), p.stderr.read() if p.stderr else "") for p in procs]
    codes = sorted(code for code, _ in outcomes)
    assert codes.count(0) == 1, outcomes
    assert all(code == 2 for code in codes if code), outcomes
    with Engine(bolt.root) as eng:
        assert eng.inspect("cas-p").status == "running"
        starts = [e for e in eng.events(since, follow=False) if e.name == "cas-p"]
    assert [e.type for e in starts].count("started") == 2  # the first run and the winner


def test_an_old_database_is_migrated_in_place(tmp_path: Path) -> None:
    from bolt.state.db import MIGRATIONS

    with sqlite3.connect(tmp_path / "state.db") as conn:
        conn.executescript(MIGRATIONS[0])
        conn.execute(
            "INSERT INTO containers (id, name, image, runtime, status, created)"
            " VALUES ('ab' || hex(randomblob(31)), 'old', 'busybox', 'runc', 'exited', 1.0)"
        )
    db = StateDB(tmp_path)
    try:
        assert db.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        (row,) = db.all()
        assert (row.name, row.restart_count, row.spec_hash) == ("old", 0, "")
        assert db.transition(row.id, ("running",), status="removing") is False
        assert db.transition(row.id, ("exited",), status="removing") is True
    finally:
        db.close()
