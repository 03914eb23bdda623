"""Spare root file systems: from an image's second one-shot run removed on exit on, the
Engine's monitor server keeps one overlay of it mounted, and the next such container
takes it with one rename.  Each container still starts from a pristine root file
system; a spare lost to another taker, or no longer mounted, is never used; nothing of
them is left after the engine closes, a prune, an image's removal, or a killed owner."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bolt.engine import ContainerIntent, Engine, containers
from bolt.runtime import linux, spares
from bolt.runtime.layout import run_dir
from bolt.state.db import StateDB
from tests.bolt.conftest import Bolt, leftover_resources, make_busybox_rootfs
from tests.nvsim.helpers import wait_for

pytestmark = [pytest.mark.root, pytest.mark.runtime]

ONESHOT = ContainerIntent(
    image="busybox",
    command=["sh", "-c", "hostname; ls /tmp; echo dirty > /tmp/left-by-the-last-run"],
    auto_remove=True,
)


def _run(eng: Engine) -> list[str]:
    out: list[str] = []
    assert eng.run_oneshot(ONESHOT, stream=lambda _s, text: out.append(text)) == 0
    return "".join(out).split()


def _image_id(bolt: Bolt) -> str:
    return str(json.loads(bolt.ok("image", "inspect", "busybox"))["id"])


def _events_of(db: StateDB, cid: str) -> list[str]:
    rows = db.conn.execute("SELECT type FROM events WHERE container=? ORDER BY seq", (cid,))
    return [r[0] for r in rows]


def _ready(root: Path, image_id: str) -> spares.Spare:
    found: list[spares.Spare] = []

    def ready() -> bool:
        spare = spares.find(root, image_id)
        found[:] = [spare] if spare else []
        return bool(found)

    wait_for(ready, timeout=10)
    return found[0]


def _spare_after_two_runs(eng: Engine, bolt: Bolt) -> spares.Spare:
    """Two one-shot runs of busybox: the engine's server then mounts a spare of it."""
    _run(eng)
    _run(eng)
    return _ready(bolt.root, _image_id(bolt))


def _overlays_in_run_dir(root: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [ln.split()[4] for ln in f if ln.split()[4].startswith(f"{run_dir(root)}/")]


def test_the_next_run_takes_the_spare_and_starts_from_a_pristine_root(bolt: Bolt) -> None:
    image_id = _image_id(bolt)
    with Engine(bolt.root) as eng:
        first = _run(eng)
        assert first[1:] == []  # /tmp was empty
        assert spares.find(bolt.root, image_id) is None  # one run: no spare asked for
        _run(eng)
        spare = _ready(bolt.root, image_id)
        assert linux.fs_magic(str(run_dir(bolt.root) / spare.cid / "bundle" / "rootfs")) == (
            spares.OVERLAYFS_MAGIC
        )
        hostname, *tmp = _run(eng)
        assert hostname == f"bolt-{spare.cid[:8]}"  # the container is the spare's
        assert tmp == []  # nothing of the last run's writes
        assert not spare.path.exists()
        assert eng.list() == []
        assert _ready(bolt.root, image_id) != spare  # the next one
        assert len(_overlays_in_run_dir(bolt.root)) == 1  # and only that
    assert spares.cids(bolt.root) == set()  # closing the engine unmounts its spares
    assert _overlays_in_run_dir(bolt.root) == []
    assert leftover_resources(bolt.root) == []


def test_a_spare_taken_by_another_caller_is_not_used(bolt: Bolt) -> None:
    """Two callers found the same spare: whoever writes its id first takes it; the
    other makes its container the ordinary way, under an id of its own."""
    with Engine(bolt.root) as eng:
        spare = _spare_after_two_runs(eng, bolt)
        db = StateDB(bolt.root)
        made = []
        try:
            intent = ContainerIntent(image="busybox", command=["true"], auto_remove=True)
            first = containers.prepare(bolt.root, intent, db, use_spare=True).row
            made.append(first)
            assert first.id == spare.cid
            with pytest.MonkeyPatch.context() as patch:  # a second caller found it too
                patch.setattr(spares, "find", lambda root, image: spare)
                second = containers.prepare(bolt.root, intent, db).row  # the id is taken
                made.append(second)
            assert second.id != spare.cid
            assert linux.is_mountpoint(str(run_dir(bolt.root) / second.id / "bundle" / "rootfs"))
            assert _events_of(db, second.id) == ["created"]
            assert _events_of(db, spare.cid) == ["created"]  # the first's, once
        finally:
            for row in made:
                containers.discard(bolt.root, db, db.get(row.id))
            db.close()


def test_a_spare_lost_between_finding_and_taking_leaves_no_trace(bolt: Bolt) -> None:
    image_id = _image_id(bolt)
    with Engine(bolt.root) as eng:
        spare = _spare_after_two_runs(eng, bolt)
        assert spares.discard(bolt.root, image_id=image_id) == 1  # as a prune would
        db = StateDB(bolt.root)
        try:
            with pytest.MonkeyPatch.context() as patch:  # found just before the prune
                patch.setattr(spares, "find", lambda root, image: spare)
                row = containers.prepare(
                    bolt.root, ContainerIntent(image="busybox", auto_remove=True), db
                ).row
            assert row.id != spare.cid
            assert db.find(spare.cid) is None
            assert _events_of(db, spare.cid) == []
            containers.discard(bolt.root, db, row)
        finally:
            db.close()
        assert not (run_dir(bolt.root) / spare.cid).exists()


def test_a_spare_no_longer_mounted_is_dropped_and_the_run_goes_on(bolt: Bolt) -> None:
    """After a reboot /run is empty: the spare's disk part is all that is left."""
    with Engine(bolt.root) as eng:
        spare = _spare_after_two_runs(eng, bolt)
        rootfs = run_dir(bolt.root) / spare.cid / "bundle" / "rootfs"
        assert linux.umount(str(rootfs), detach=True)
        hostname, *tmp = _run(eng)
        assert hostname != f"bolt-{spare.cid[:8]}" and tmp == []
        assert not spare.path.exists() and not (bolt.root / "containers" / spare.cid).exists()
        assert not (run_dir(bolt.root) / spare.cid).exists()
        db = StateDB(bolt.root)
        try:
            assert db.find(spare.cid) is None
        finally:
            db.close()


def test_prune_and_image_removal_take_the_spares_and_free_the_layers(
    bolt: Bolt, tmp_path: Path
) -> None:
    from bolt.images.store import ImageStore

    rootfs = make_busybox_rootfs(tmp_path / "rootfs")
    (rootfs / "only-here").write_text("a layer of its own\n")
    store = ImageStore(bolt.root)
    record = store.import_path(rootfs, "spare-image:1", config={"Cmd": ["/bin/true"]})
    (diff_id,) = record.diff_ids
    intent = ContainerIntent(image="spare-image:1", auto_remove=True)
    with Engine(bolt.root) as eng:
        for _ in range(2):
            assert eng.run_oneshot(intent) == 0
        _ready(bolt.root, record.id)
        bolt.ok("system", "prune", "-f")
        assert spares.cids(bolt.root) == set() and _overlays_in_run_dir(bolt.root) == []
        assert list(spares.base(bolt.root).iterdir()) == []  # nor an empty image directory
        assert eng.run_oneshot(intent) == 0
        _ready(bolt.root, record.id)
        bolt.ok("image", "rm", "spare-image:1")
        assert spares.cids(bolt.root) == set() and _overlays_in_run_dir(bolt.root) == []
        assert not store.layers.dir_for(diff_id).exists()  # no mount held it


def test_a_killed_owners_spares_go_with_the_next_owner_or_prune(bolt: Bolt) -> None:
    script = (
        "import sys, time; from bolt.engine import ContainerIntent, Engine; "
        "eng = Engine(sys.argv[1]); "
        "[eng.run_oneshot(ContainerIntent(image='busybox', command=['true'], auto_remove=True))"
        " for _ in range(2)]; print(eng._monitor_server().pid, flush=True); time.sleep(60)"
    )
    image_id = _image_id(bolt)
    for cleaner in ("engine", "prune"):
        proc = subprocess.Popen(
            [sys.executable, "-c", script, str(bolt.root)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert proc.stdout is not None
            server = pid = int(proc.stdout.readline())
            spare = _ready(bolt.root, image_id)
            os.kill(server, signal.SIGKILL)  # its owner: nothing unmounts it now
            proc.kill()
            proc.wait()
            wait_for(lambda pid=pid: not linux.process_alive(pid, None), timeout=10)
            assert spares.find(bolt.root, image_id) == spare  # left behind, still mounted
            if cleaner == "engine":
                with Engine(bolt.root) as eng:
                    _run(eng)
                    _run(eng)  # its server's first spare request clears dead owners' first
                    wait_for(
                        lambda spare=spare: (
                            spare.cid not in spares.cids(bolt.root)
                            and spares.find(bolt.root, image_id) is not None
                        ),
                        timeout=10,
                    )
            else:
                bolt.ok("system", "prune", "-f")
            assert spares.cids(bolt.root) == set()
            assert _overlays_in_run_dir(bolt.root) == []
        finally:
            proc.kill()
            proc.wait()


def test_an_owner_keeps_a_few_spares_the_newest_images(
    bolt: Bolt, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bolt.runtime import imagecache

    db = StateDB(bolt.root)
    try:
        layers = imagecache.resolve(bolt.root, db.conn, "busybox").layers
    finally:
        db.close()
    monkeypatch.setattr(spares, "KEEP", 2)
    owner = spares.me()
    images = [f"sha256:{c * 64}" for c in "abc"]
    try:
        for image_id in images:
            assert spares.make(bolt.root, image_id, layers, owner)
            assert not spares.make(bolt.root, image_id, layers, owner)  # one is ready
            time.sleep(0.02)  # distinct times
        assert [spares.find(bolt.root, i) is not None for i in images] == [False, True, True]
        assert len(_overlays_in_run_dir(bolt.root)) == 2
        assert spares.discard(bolt.root, owner="1-1") == 0  # another owner's: none
    finally:
        assert spares.discard(bolt.root, owner=owner) == 2
    assert spares.cids(bolt.root) == set() and _overlays_in_run_dir(bolt.root) == []
