"""Capsule snapshots end to end, as root, on real containers (crun/runc, overlayfs) and nvsim:
a restore brings back both a container's files and the GPU settings, all or nothing, and a
``kill -9`` in the middle of one is repaired by the next command."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.bolt_capsules.conftest import Capsules

pytestmark = [pytest.mark.root, pytest.mark.runtime, pytest.mark.nvsim]


def _wait_for(path: Path, proc: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"the restore ended early: {proc.communicate()}"  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


def _setup(c: Capsules, name: str) -> tuple[str, dict[str, float]]:
    """A running container with a file, a GPU power limit, and a snapshot of both."""
    c.run_container(name)
    c.write(name, "/data/state", "one")
    c.nvctl("power", "limit", "-i", "0", "--watts", "400", "--no-confirm", "--window", "0.2")
    before = c.power_limits()
    c.ok("snapshot", "create", f"{name}-snap", "--container", name)
    # Change both: a file inside the running container, and the GPU's power limit.
    c.write(name, "/data/state", "two")
    c.write(name, "/data/extra", "new")
    c.nvctl("power", "limit", "-i", "0", "--watts", "300", "--no-confirm", "--window", "0.2")
    assert c.power_limits() != before
    return f"{name}-snap", before


def test_restore_brings_back_container_files_and_gpu_settings(capsules: Capsules) -> None:
    snap, before = _setup(capsules, "cap-e2e")
    shown = json.loads(capsules.ok("snapshot", "list", "--json"))
    assert [s["name"] for s in shown] == [snap]
    assert shown[0]["providers"] == ["containers", "nvcontrol.gpu-config"]
    assert shown[0]["containers"] == ["cap-e2e"]

    report = json.loads(capsules.ok("snapshot", "restore", snap, "--json"))
    assert report["result"] == "restored"
    assert capsules.read("cap-e2e", "/data/state") == "one\n"
    assert capsules.read("cap-e2e", "/data/extra").startswith("<exit")  # made after: gone
    assert capsules.power_limits() == before
    assert capsules.bolt.inspect("cap-e2e")["status"] == "running"  # running again
    cdir = capsules.bolt.root / "containers" / capsules.bolt.inspect("cap-e2e")["id"]
    assert not (cdir / "upper.previous").exists() and not (cdir / "upper.restore").exists()


def test_library_api_as_in_the_seed(capsules: Capsules, nvsim_in_process: object) -> None:
    """``await Snapshot.create(name)`` then ``await snap.restore()``, in this process."""
    import asyncio

    from bolt.capsules.snapshots import Snapshot

    capsules.run_container("cap-lib")
    capsules.write("cap-lib", "/data/state", "one")
    saved = dict(os.environ)
    os.environ.update(capsules.env)
    try:

        async def scenario() -> None:
            snap = await Snapshot.create("pre-overclock", containers=["cap-lib"])
            assert "nvcontrol.gpu-config" in snap.providers
            capsules.write("cap-lib", "/data/state", "two")
            capsules.nvctl(
                "power", "limit", "-i", "1", "--watts", "310", "--no-confirm", "--window", "0.2"
            )
            await snap.restore()

        before = capsules.power_limits()
        asyncio.run(scenario())
        assert capsules.power_limits() == before
        assert capsules.read("cap-lib", "/data/state") == "one\n"
        assert [s.name for s in Snapshot.list()] == ["pre-overclock"]
        Snapshot.delete("pre-overclock")
        assert Snapshot.list() == []
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_kill_after_the_commit_decision_is_rolled_forward_by_the_next_command(
    capsules: Capsules, blocker: Path
) -> None:
    snap, before = _setup(capsules, "cap-fwd")
    (blocker / "block-commit").touch()
    proc = capsules.popen("snapshot", "restore", snap)
    _wait_for(blocker / "in-commit", proc)  # containers and GPU are committed, the last not
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (blocker / "block-commit").unlink()

    repaired = capsules("snapshot", "list")
    assert repaired.returncode == 0, repaired.stderr
    assert "rolled forward" in repaired.stderr
    assert capsules.read("cap-fwd", "/data/state") == "one\n"
    assert capsules.power_limits() == before
    calls = (blocker / "calls").read_text().split()
    assert calls == ["prepare", "commit", "commit", "finish"]
    # Nothing is left to repair: the next command says nothing.
    assert capsules("snapshot", "list").stderr == ""


def test_kill_before_the_commit_decision_is_rolled_back_by_the_next_command(
    capsules: Capsules, blocker: Path
) -> None:
    snap, _ = _setup(capsules, "cap-back")
    changed = capsules.power_limits()
    (blocker / "block-prepare").touch()
    proc = capsules.popen("snapshot", "restore", snap)
    _wait_for(blocker / "in-prepare", proc)  # containers and GPU prepared: nothing changed
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (blocker / "block-prepare").unlink()

    repaired = capsules("snapshot", "list")
    assert repaired.returncode == 0, repaired.stderr
    assert "rolled back" in repaired.stderr
    assert capsules.read("cap-back", "/data/state") == "two\n"  # as before the restore
    assert capsules.power_limits() == changed
    cid = capsules.bolt.inspect("cap-back")["id"]
    assert not (capsules.bolt.root / "containers" / cid / "upper.restore").exists()
    assert (blocker / "calls").read_text().split() == ["prepare", "abort", "finish"]
    # The snapshot itself is intact: restoring it now works.
    capsules.ok("snapshot", "restore", snap)
    assert capsules.read("cap-back", "/data/state") == "one\n"


def test_a_provider_that_fails_its_commit_rolls_the_whole_restore_back(
    capsules: Capsules, blocker: Path
) -> None:
    snap, _ = _setup(capsules, "cap-fail")
    changed = capsules.power_limits()
    capsules.env["CAPSULE_BLOCKER_FAIL"] = "1"
    done = capsules("snapshot", "restore", snap)
    assert done.returncode == 5, done.stderr
    assert "rolled back" in done.stderr
    assert capsules.read("cap-fail", "/data/state") == "two\n"
    assert capsules.power_limits() == changed
    assert capsules.bolt.inspect("cap-fail")["status"] == "running"


def test_a_rollback_that_cannot_finish_is_retried_by_the_next_command(
    capsules: Capsules, blocker: Path
) -> None:
    snap, _ = _setup(capsules, "cap-retry")
    changed = capsules.power_limits()
    capsules.env["CAPSULE_BLOCKER_FAIL"] = "1"
    capsules.env["CAPSULE_BLOCKER_FAIL_ABORT"] = "1"
    done = capsules("snapshot", "restore", snap)
    assert done.returncode == 1, done.stderr
    assert "could not be rolled back fully" in done.stderr
    assert "test-blocker: could not roll back" in done.stderr
    # The others were rolled back all the same.
    assert capsules.read("cap-retry", "/data/state") == "two\n"
    assert capsules.power_limits() == changed

    del capsules.env["CAPSULE_BLOCKER_FAIL_ABORT"]
    repaired = capsules("snapshot", "list")
    assert repaired.returncode == 0, repaired.stderr
    assert "rolled back the interrupted restore" in repaired.stderr
    calls = (blocker / "calls").read_text().split()
    assert calls[-2:] == ["abort-committed", "finish"]  # the undo ran again, and succeeded
    assert capsules("snapshot", "list").stderr == ""  # nothing left to repair
    assert capsules.read("cap-retry", "/data/state") == "two\n"
    assert capsules.power_limits() == changed
