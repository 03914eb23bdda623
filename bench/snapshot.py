"""Capsule snapshot create/restore of one container, against the same work done by hand.

CRIU does not work on these machines, so the peer is what an operator would script:

* create: ``crun pause``, ``tar -czf`` of the container's overlay upper directory (with
  xattrs, as overlayfs whiteouts need), ``crun resume``;
* restore: stop the container, unpack the tar into a fresh directory, swap it in for the
  upper directory, start the container again (the same Engine stop/start as ours, so the
  ratio shows the snapshot's own mechanics and bookkeeping).

Ours: ``await Snapshot.create(name, containers=[c], providers=["containers"])`` and
``await snap.restore()`` (journaled two-phase restore, digest check, paused capture).
Runs as root; a temporary ``$BOLT_ROOT``.  Prints medians and the ratio ours/peer.

    python bench/snapshot.py [--files 200] [--kb 16] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _rootfs import busybox_rootfs
from bolt.capsules.snapshots import Snapshot
from bolt.engine import Engine
from bolt.engine.containers import runtime_of
from bolt.images.store import ImageStore
from bolt.runtime import rootfs
from bolt.runtime.intent import ContainerIntent
from bolt.runtime.layout import ContainerDir
from bolt.state.db import StateDB


def _runtime_argv(root: Path, cid: str, verb: str) -> list[str]:
    db = StateDB(root)
    try:
        return runtime_of(root, db.get(cid)).argv(verb, cid)
    finally:
        db.close()


def peer_create(root: Path, cid: str, out: Path) -> float:
    upper = ContainerDir.of(root, cid).overlay_dirs[0]
    t0 = time.perf_counter()
    subprocess.run(_runtime_argv(root, cid, "pause"), check=True)
    try:
        subprocess.run(
            ["tar", "--xattrs", "--xattrs-include=*", "-C", str(upper), "-czf", str(out), "."],
            check=True,
        )
    finally:
        subprocess.run(_runtime_argv(root, cid, "resume"), check=True)
    return time.perf_counter() - t0


def peer_restore(root: Path, cid: str, archive: Path) -> float:
    cdir = ContainerDir.of(root, cid)
    upper, work = cdir.overlay_dirs
    t0 = time.perf_counter()
    with Engine(root) as eng:
        eng.stop(cid, timeout=0)
        rootfs.unmount(cdir.rootfs)
        fresh = upper.with_name("upper.peer")
        fresh.mkdir()
        subprocess.run(
            ["tar", "--xattrs", "--xattrs-include=*", "-C", str(fresh), "-xzf", str(archive)],
            check=True,
        )
        shutil.rmtree(upper)
        os.rename(fresh, upper)
        shutil.rmtree(work)
        work.mkdir()
        eng.start(cid)
    return time.perf_counter() - t0


async def ours(root: Path, cid: str, name: str) -> tuple[float, float]:
    t0 = time.perf_counter()
    snap = await Snapshot.create(name, containers=[cid], providers=["containers"], root=root)
    t1 = time.perf_counter()
    await snap.restore()
    t2 = time.perf_counter()
    Snapshot.delete(name, root=root)
    return t1 - t0, t2 - t1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=200, help="files written in the container")
    ap.add_argument("--kb", type=int, default=16, help="size of each file")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/snapshot.py needs root (containers)", file=sys.stderr)
        return 4
    work = Path(tempfile.mkdtemp(prefix="bolt-bench-snapshot-"))
    root = work / "root"
    try:
        ImageStore(root).import_path(busybox_rootfs(work / "rootfs"), "busybox:latest")
        with Engine(root) as eng:
            info = eng.run(
                ContainerIntent(image="busybox", command=["sh", "-c", "exec sleep 100000"]),
                name="bench-snapshot",
            )
            fill = (
                f"mkdir -p /data; i=0; while [ $i -lt {args.files} ]; do "
                f"head -c {args.kb * 1024} /dev/urandom > /data/f$i; i=$((i+1)); done; "
                "rm /bin/vi"
            )
            eng.exec(info.id, ["sh", "-c", fill])
        cid = info.id
        archive = work / "peer.tar.gz"
        peer_c, peer_r, our_c, our_r = [], [], [], []
        for i in range(args.rounds):
            peer_c.append(peer_create(root, cid, archive))
            peer_r.append(peer_restore(root, cid, archive))
            c, r = asyncio.run(ours(root, cid, f"bench-{i}"))
            our_c.append(c)
            our_r.append(r)
        size = sum(
            f.stat().st_size
            for f in (ContainerDir.of(root, cid).overlay_dirs[0]).rglob("*")
            if f.is_file()
        )
        print(
            f"container upper dir: {args.files} files x {args.kb} KiB = {size / 1e6:.1f} MB; "
            f"{args.rounds} rounds, medians"
        )
        for what, o, p in (("create", our_c, peer_c), ("restore", our_r, peer_r)):
            mo, mp = statistics.median(o), statistics.median(p)
            print(
                f"{what:8} bolt snapshot {mo * 1000:8.1f} ms   crun pause+tar by hand "
                f"{mp * 1000:8.1f} ms   ratio {mo / mp:.2f}x"
            )
        with Engine(root) as eng:
            eng.remove(cid, force=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
