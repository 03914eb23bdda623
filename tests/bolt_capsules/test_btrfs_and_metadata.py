"""Capsule snapshots on btrfs (a loop-mounted file system: upper dirs are subvolumes, kept as
read-only subvolume snapshots), and damaged snapshot metadata read back."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bolt.conftest import Bolt, make_busybox_rootfs, require_root
from tests.bolt_capsules.conftest import Capsules
from tests.conftest import tool

pytestmark = [pytest.mark.root, pytest.mark.runtime]


@pytest.fixture
def btrfs_capsules(tmp_path: Path) -> Iterator[Capsules]:
    """A Bolt state root on a fresh btrfs file system in a loop device."""
    require_root()
    image = tmp_path / "btrfs.img"
    with open(image, "wb") as f:
        f.truncate(256 * 1024 * 1024)
    subprocess.run(["mkfs.btrfs", "-q", str(image)], check=True, capture_output=True)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], check=True)
    root = mnt / "root"
    try:
        from bolt.images.store import ImageStore

        rootfs = make_busybox_rootfs(tmp_path / "busybox-rootfs")
        ImageStore(root).import_path(rootfs, "busybox:latest", config={"Cmd": ["/bin/sh"]})
        env = dict(os.environ)
        env["BOLT_ROOT"] = str(root)
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
        yield Capsules(Bolt(root=root, env=env), None, env)
        names = subprocess.run(
            [tool("bolt"), "ps", "-a", "-q"], env=env, capture_output=True, text=True
        ).stdout.split()
        if names:
            subprocess.run([tool("bolt"), "rm", "-f", *names], env=env, check=True)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)  # also frees the loop device


def _subvolumes(mnt: Path) -> list[str]:
    out = subprocess.run(
        ["btrfs", "subvolume", "list", "-o", str(mnt)], capture_output=True, text=True, check=True
    ).stdout
    return [line.split(" path ")[-1] for line in out.splitlines()]


def test_on_btrfs_upper_dirs_are_kept_as_subvolume_snapshots(btrfs_capsules: Capsules) -> None:
    c = btrfs_capsules
    from bolt.runtime import btrfs

    assert btrfs.is_btrfs(c.bolt.root)
    c.run_container("cap-btrfs")
    cid = c.bolt.inspect("cap-btrfs")["id"]
    fs = c.bolt.root / "containers" / cid / "fs"
    assert btrfs.is_subvolume(fs) and (fs / "upper").is_dir()
    c.write("cap-btrfs", "/data/state", "one")
    c.ok("snapshot", "create", "b1", "--container", "cap-btrfs", "--provider", "containers")
    doc = json.loads(
        sqlite3.connect(c.bolt.root / "snapshots.db")
        .execute("SELECT documents FROM snapshots WHERE name='b1'")
        .fetchone()[0]
    )
    entry = doc["containers"]["containers"][0]
    assert entry["kind"] == "btrfs"
    kept = next((c.bolt.root / "snapshots").glob("b1-*")) / entry["path"]
    assert btrfs.is_subvolume(kept)
    assert (
        subprocess.run(
            ["btrfs", "property", "get", str(kept), "ro"], capture_output=True, text=True
        ).stdout.strip()
        == "ro=true"
    )

    c.write("cap-btrfs", "/data/state", "two")
    c.ok("snapshot", "restore", "b1")
    assert c.read("cap-btrfs", "/data/state") == "one\n"
    assert btrfs.is_subvolume(fs)  # the restored one is a (writable) subvolume again
    c.write("cap-btrfs", "/data/state", "three")  # and the container writes to it

    c.ok("snapshot", "delete", "b1")
    assert not kept.exists()
    c.ok("rm", "-f", "cap-btrfs")
    assert _subvolumes(c.bolt.root.parent) == []  # nothing left behind


def test_damaged_snapshot_metadata_gives_a_clear_error_and_changes_nothing(
    capsules_no_gpu: Capsules,
) -> None:
    c = capsules_no_gpu
    c.run_container("cap-bad")
    c.write("cap-bad", "/data/state", "one")
    c.ok("snapshot", "create", "bad1", "--container", "cap-bad")
    c.ok("snapshot", "create", "bad2", "--container", "cap-bad")
    c.write("cap-bad", "/data/state", "two")
    db = sqlite3.connect(c.bolt.root / "snapshots.db")
    with db:
        row = db.execute("SELECT documents FROM snapshots WHERE name='bad1'").fetchone()[0]
        doc = json.loads(row)
        del doc["containers"]["containers"][0]["name"]
        db.execute("UPDATE snapshots SET documents=? WHERE name='bad1'", (json.dumps(doc),))
        db.execute("UPDATE snapshots SET documents='{not json' WHERE name='bad2'")

    done = c("snapshot", "restore", "bad1")
    assert done.returncode == 1
    assert "containers.containers[0].name is missing" in done.stderr
    assert "Traceback" not in done.stderr
    done = c("snapshot", "restore", "bad2")
    assert done.returncode == 1
    assert "snapshot 'bad2'.documents is not valid JSON" in done.stderr
    assert c.read("cap-bad", "/data/state") == "two\n"  # nothing changed

    listed = {s["name"]: s for s in json.loads(c.ok("snapshot", "list", "--json"))}
    assert "not valid JSON" in listed["bad2"]["damaged"]
    assert "damaged" not in listed["bad1"]  # its record parses; the provider rejects it
    c.ok("snapshot", "delete", "bad1", "bad2")  # damaged ones can still be deleted
    assert json.loads(c.ok("snapshot", "list", "--json")) == []


def test_kill_during_a_capture_leaves_nothing_paused_once_the_next_command_ran(
    capsules_no_gpu: Capsules,
) -> None:
    """A capture killed while the containers are frozen: the next command resumes them and
    removes the half-made snapshot."""
    import signal
    import time

    c = capsules_no_gpu
    c.run_container("cap-freeze")
    # Enough data that the capture keeps the container paused for a while.
    c.ok(
        "exec",
        "cap-freeze",
        "sh",
        "-c",
        "mkdir /data; i=0; while [ $i -lt 64 ]; do head -c 262144 /dev/urandom > /data/f$i; "
        "i=$((i+1)); done",
    )
    cid = c.bolt.inspect("cap-freeze")["id"]
    proc = c.popen("snapshot", "create", "half", "--container", "cap-freeze")
    db = sqlite3.connect(c.bolt.root / "state.db")
    deadline = time.monotonic() + 60
    while db.execute("SELECT status FROM containers WHERE id=?", (cid,)).fetchone()[0] != "paused":
        assert proc.poll() is None, f"the capture ended before it was killed: {proc.communicate()}"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert c.bolt.inspect("cap-freeze")["status"] == "paused"  # what the kill left

    repaired = c("snapshot", "list", "--json")
    assert repaired.returncode == 0, repaired.stderr
    assert "whose creation was interrupted" in repaired.stderr
    assert json.loads(repaired.stdout) == []
    assert c.bolt.inspect("cap-freeze")["status"] == "running"
    assert list((c.bolt.root / "snapshots").glob("half-*")) == []
    c.write("cap-freeze", "/data/after", "ok")  # it runs again
