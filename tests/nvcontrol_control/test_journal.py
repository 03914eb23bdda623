"""The journal: durable records, owner liveness (pid reuse included), claiming orphans."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nvcontrol.control import journal as jmod
from nvcontrol.control.journal import COMMITTED, OPEN, Journal


def dead_process() -> tuple[int, int]:
    """A pid that existed and exited (reaped), with the start time it had."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    start = jmod.process_start(child.pid)
    assert start is not None
    child.kill()
    child.wait()
    return child.pid, start


def test_a_live_owner_is_never_claimed_and_a_dead_one_is(tmp_path: Path) -> None:
    j = Journal(tmp_path / "journal.db")
    mine = j.begin("power limit", "mine", ["GPU-a"], {"gpus": {}})
    pid, start = dead_process()
    orphan = j.begin("fan set", "orphan", ["GPU-b"], {"gpus": {}})
    j.db.execute(
        "UPDATE transactions SET owner_pid=?, owner_start=? WHERE id=?", (pid, start, orphan)
    )
    claimed = j.claim_orphans()
    assert [t.id for t in claimed] == [orphan]
    rec = j.get(mine)
    assert rec is not None and rec.state == OPEN and rec.owner_alive


def test_a_reused_pid_does_not_keep_a_transaction_alive(tmp_path: Path) -> None:
    j = Journal(tmp_path / "journal.db")
    tx = j.begin("clocks lock", "reused", ["GPU-a"], {"gpus": {}})
    _pid, start = jmod.me()
    # Same pid, different start time: another process that got the old pid.
    j.db.execute("UPDATE transactions SET owner_start=? WHERE id=?", (start - 1, tx))
    assert [t.id for t in j.claim_orphans()] == [tx]


def test_a_second_transaction_on_a_busy_gpu_is_refused(tmp_path: Path) -> None:
    j = Journal(tmp_path / "journal.db")
    first = j.begin("overclock apply", "first", ["GPU-a", "GPU-b"], {"gpus": {}})
    with pytest.raises(LookupError) as info:
        j.begin("power limit", "second", ["GPU-b"], {"gpus": {}})
    assert info.value.args[0].id == first
    j.finish(first, COMMITTED)
    assert j.begin("power limit", "second", ["GPU-b"], {"gpus": {}}) > first


def test_confirmation_from_another_connection_is_seen(tmp_path: Path) -> None:
    owner = Journal(tmp_path / "journal.db")
    tx = owner.begin("overclock apply", "x", ["GPU-a"], {"gpus": {}})
    other = Journal(tmp_path / "journal.db")
    other.confirm(tx)
    assert owner.is_confirmed(tx)


def test_locked_clock_records_from_an_earlier_boot_are_void(tmp_path: Path, monkeypatch) -> None:
    j = Journal(tmp_path / "journal.db")
    j.record_lock("GPU-a", "graphics", (1000, 2000))
    assert j.locked_clocks("GPU-a") == {"graphics": (1000, 2000)}
    monkeypatch.setattr(jmod, "boot_id", lambda: "another-boot")
    assert j.locked_clocks("GPU-a") == {}


def test_dead_fan_controllers_are_claimed_once(tmp_path: Path) -> None:
    j = Journal(tmp_path / "journal.db")
    live = j.register_fan_controller(["GPU-a"])
    dead = j.register_fan_controller(["GPU-b"])
    pid, start = dead_process()
    j.db.execute("UPDATE fan_controllers SET pid=?, pid_start=? WHERE id=?", (pid, start, dead))
    claimed = j.claim_dead_fan_controllers()
    assert [(c["id"], c["gpus"]) for c in claimed] == [(dead, ["GPU-b"])]
    assert j.claim_dead_fan_controllers() == []  # now owned by this (live) process
    j.remove_fan_controller(dead)
    assert [c["id"] for c in j.fan_controllers()] == [live]
