"""Bundles on tmpfs: a container removed on exit keeps its run's files (config, /etc
files, pid, the root file system's mount point) in the run directory, and nothing of it
is left there or on disk after its exit; other containers keep their bundle on disk."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from bolt.engine import ContainerIntent, Engine
from bolt.runtime import linux
from bolt.runtime.cgroups import kill_cgroups
from bolt.runtime.layout import RUN_BASE, run_dir
from bolt.state.db import StateDB
from tests.bolt.conftest import Bolt, container_ids_on_disk, leftover_resources
from tests.nvsim.helpers import wait_for

pytestmark = [pytest.mark.root, pytest.mark.runtime]


def test_a_removed_on_exit_container_runs_from_a_bundle_on_tmpfs(bolt: Bolt) -> None:
    cid = bolt.ok("run", "-d", "--rm", "--name", "tmpfs-bundle", "busybox", "sleep", "30")
    cid = cid.strip()
    disk = bolt.root / "containers" / cid
    bundle = run_dir(bolt.root) / cid / "bundle"
    assert (disk / "bundle").is_symlink() and (disk / "bundle").resolve() == bundle
    assert linux.fs_magic(str(RUN_BASE)) == linux.TMPFS_MAGIC
    names = {p.name for p in bundle.iterdir()}
    assert {"config.json", "rootfs", "hostname", "hosts", "resolv.conf", "pid"} <= names
    assert linux.is_mountpoint(str(bundle / "rootfs"))
    assert {p.name for p in disk.iterdir()} >= {"upper", "work", "log.jsonl"}
    hostname = bolt.ok("exec", "tmpfs-bundle", "cat", "/etc/hostname")
    assert hostname == (bundle / "hostname").read_text()
    assert bolt.ok("exec", "tmpfs-bundle", "sh", "-c", "echo written > /kept; cat /kept")
    assert (disk / "upper" / "kept").read_text() == "written\n"  # writes go to the disk
    bolt.ok("stop", "-t", "0", "tmpfs-bundle")
    assert wait_for(lambda: not bundle.parent.exists() and not disk.exists())
    assert leftover_resources(bolt.root, cid) == []


def test_a_kept_container_keeps_its_bundle_on_disk(bolt: Bolt) -> None:
    assert bolt("run", "--name", "disk-bundle", "busybox", "true").returncode == 0
    cid = bolt.inspect("disk-bundle")["id"]
    bundle = bolt.root / "containers" / cid / "bundle"
    assert bundle.is_dir() and not bundle.is_symlink()
    assert (bundle / "config.json").is_file() and (bundle / "hosts").is_file()
    assert not (run_dir(bolt.root) / cid).exists()
    assert bolt("start", "-a", "disk-bundle").returncode == 0  # the same bundle, again


def test_prune_removes_run_directories_nobody_owns(bolt: Bolt) -> None:
    stray = run_dir(bolt.root) / ("f" * 64)  # as a killed process, then a lost row, left it
    (stray / "bundle" / "rootfs").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "stray", str(stray / "bundle" / "rootfs")], check=True)
    try:
        assert leftover_resources(bolt.root) != []
        bolt.ok("system", "prune", "-f")
        assert not stray.exists() and leftover_resources(bolt.root) == []
        assert container_ids_on_disk(bolt.root) == []
    finally:
        linux.unmount_below(stray)
        shutil.rmtree(stray, ignore_errors=True)


def test_a_container_whose_run_directory_vanished_is_cleaned_up(bolt: Bolt) -> None:
    """As after a reboot: the tmpfs is empty, the container directory still links to it."""
    with Engine(bolt.root) as eng:
        intent = ContainerIntent(image="busybox", command=["true"], auto_remove=True)
        cid = eng.create(intent, name="after-reboot").id
    db = StateDB(bolt.root)
    row = db.get(cid)
    db.close()
    os.kill(row.monitor_pid, signal.SIGKILL)  # a reboot ends the monitor and the init
    kill_cgroups(cid)
    run = run_dir(bolt.root) / cid
    linux.unmount_below(run)
    shutil.rmtree(run)  # and empties the tmpfs
    assert wait_for(lambda: bolt.inspect("after-reboot")["status"] == "exited")
    started = bolt("start", "after-reboot")
    assert started.returncode == 2 and "no bundle left" in started.stderr
    bolt.ok("rm", "after-reboot")
    assert (
        leftover_resources(bolt.root, cid) == [] and not Path(bolt.root, "containers", cid).exists()
    )


def test_a_container_created_while_prune_runs_is_left_alone(bolt: Bolt) -> None:
    """A `bolt run --rm` that records its container just as prune reads the rows (the
    interleaving is forced: the creation happens inside prune's own read)."""
    from bolt.engine import containers, operations

    made: list[str] = []
    calls = 0

    class Interleaved(StateDB):
        def all(self):  # type: ignore[no-untyped-def]
            nonlocal calls
            rows = super().all()
            calls += 1
            if calls == 2:  # the read of the known ids, after the pass over stopped ones
                row = containers.prepare(
                    bolt.root, ContainerIntent(image="busybox", auto_remove=True), self
                ).row
                made.append(row.id)
            return rows

    db = Interleaved(bolt.root)
    try:
        operations.prune(bolt.root, db)
        operations.prune(bolt.root, db)  # the second prune: the first one's reads are old
        (cid,) = made
        cdir = bolt.root / "containers" / cid
        assert cdir.is_dir() and (cdir / "bundle" / "config.json").is_file()
        assert linux.is_mountpoint(str((cdir / "bundle" / "rootfs").resolve()))
    finally:
        for cid in made:
            containers.discard(bolt.root, db, db.get(cid))
        db.close()
