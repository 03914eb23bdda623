"""The ``containers`` provider: the file system state of containers, as their overlay upper dirs.

Capture pauses every selected running container (cgroup freezer) so that the set is
consistent, then keeps each upper directory either

* as an OCI layer (tar+gzip with OCI whiteouts, written by the image store's
  :func:`bolt.images.upperlayer.write_layer`, the writer ``bolt build`` uses), or
* as a read-only btrfs subvolume snapshot, when ``$BOLT_ROOT`` is on btrfs (Bolt then keeps
  a container's upper and work directories in one subvolume, ``fs/``),

and unpauses them.  The containers it paused are listed in ``paused.json`` first, so a
capture killed half-way leaves nothing frozen once the next command has run
(:meth:`ContainerFilesystems.discard`).

Restore: ``prepare`` unpacks each layer (digest checked) or makes a writable snapshot beside
the container's upper directory (or ``fs`` subvolume): ``upper.restore`` — nothing live
changes.  ``commit`` stops the container (its processes are killed: what they would write is
being replaced), moves ``upper`` to ``upper.previous`` and ``upper.restore`` to ``upper``,
empties the overlay work directory, and starts the container again if it was running.
``abort`` puts ``upper.previous`` back; ``finish`` removes it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from bolt.capsules import containers
from bolt.capsules.providers import Context, Document
from bolt.capsules.store import SnapshotCorrupt
from bolt.errors import BoltError
from bolt.runtime import btrfs

FORMAT = 1
LAYER, SUBVOLUME = "layer", "btrfs"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_ID = re.compile(r"^[0-9a-f]{64}$")
PAUSED_FILE = "paused.json"
# gzip level of kept layers: the containers stay paused while it runs.  On 3.3 MB of
# incompressible files plus 1.2 MB of text, level 1 took 1.0 s against level 6's 1.3 s
# (the rest is the tar walk) for 0.3 % more bytes.
SNAPSHOT_GZIP_LEVEL = 1


def _entries(doc: Document) -> list[dict[str, Any]]:
    """The document's container entries, validated (a damaged one names its field)."""
    where = "containers"
    if doc.get("format") != FORMAT:
        raise SnapshotCorrupt(f"{where}.format is {doc.get('format')!r}, expected {FORMAT}")
    items = doc.get("containers")
    if not isinstance(items, list):
        raise SnapshotCorrupt(f"{where}.containers must be a list")
    for i, e in enumerate(items):
        at = f"{where}.containers[{i}]"
        if not isinstance(e, dict):
            raise SnapshotCorrupt(f"{at} must be an object")
        for key in ("id", "name", "image", "status", "kind", "path"):
            if not isinstance(e.get(key), str) or not e[key]:
                raise SnapshotCorrupt(f"{at}.{key} is missing or not a string")
        if not _ID.match(e["id"]):
            raise SnapshotCorrupt(f"{at}.id {e['id']!r:.40} is not a container id")
        if e["kind"] not in (LAYER, SUBVOLUME):
            raise SnapshotCorrupt(f"{at}.kind {e['kind']!r:.40} is not {LAYER} or {SUBVOLUME}")
        if e["path"].startswith("/") or ".." in Path(e["path"]).parts:
            raise SnapshotCorrupt(f"{at}.path {e['path']!r:.60} leaves the snapshot directory")
        if e["kind"] == LAYER and not _DIGEST.match(str(e.get("digest"))):
            raise SnapshotCorrupt(f"{at}.digest is missing or not a sha256 digest")
    return items


def _reset_work(work: Path) -> None:
    """The overlay work directory belongs to one upper directory: start it afresh."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(exist_ok=True)


class ContainerFilesystems:
    name = "containers"

    # ------------------------------------------------------------ capture

    async def capture(self, ctx: Context) -> Document | None:
        return await asyncio.to_thread(self._capture, ctx)

    def _capture(self, ctx: Context) -> Document | None:
        targets = containers.select(ctx.root, ctx.selection)
        if not targets:
            return None
        running = [t.id for t in targets if t.status == containers.RUNNING]
        paused_file = ctx.files / PAUSED_FILE
        paused_file.write_text(json.dumps(running))
        _fsync(paused_file)
        entries = []
        try:
            for cid in running:
                containers.pause(ctx.root, cid)
            for t in targets:
                entries.append(self._keep(ctx, t))
                ctx.tell(self.name, f"kept {t.name}")
        finally:
            containers.unpause_quietly(ctx.root, running)
        paused_file.unlink()
        return {"format": FORMAT, "containers": entries}

    def _keep(self, ctx: Context, t: containers.Target) -> dict[str, Any]:
        upper = containers.upper_dir(ctx.root, t.id)
        if not upper.is_dir():
            raise BoltError(f"container {t.name} has no upper directory at {upper}")
        (ctx.files / "containers").mkdir(exist_ok=True)
        entry: dict[str, Any] = t.to_json()
        unit, _, subvolume = containers.restore_unit(ctx.root, t.id)
        if subvolume:
            rel = f"containers/{t.id}"
            btrfs.snapshot(unit, ctx.files / rel, readonly=True)
            return {**entry, "kind": SUBVOLUME, "path": rel}
        from bolt.images.upperlayer import write_layer

        rel = f"containers/{t.id}.tar.gz"
        with open(ctx.files / rel, "wb") as out:
            # still mounted: leave its xattrs; level 1: a local copy, speed over size
            blob = write_layer(upper, out, strip=False, level=SNAPSHOT_GZIP_LEVEL)
            out.flush()
            os.fsync(out.fileno())
        return {
            **entry,
            "kind": LAYER,
            "path": rel,
            "digest": blob.digest,
            "diff_id": blob.diff_id,
            "size": blob.size,
        }

    def discard(self, doc: Document | None, ctx: Context) -> None:
        """Release what a capture holds: unpause what a dead capture froze, remove files."""
        paused_file = ctx.files / PAUSED_FILE
        try:
            frozen = json.loads(paused_file.read_text())
        except (OSError, ValueError):
            frozen = []
        containers.unpause_quietly(ctx.root, [c for c in frozen if isinstance(c, str)])
        kept = ctx.files / "containers"
        if kept.is_dir():
            for item in kept.iterdir():
                btrfs.remove_tree(item)

    # ------------------------------------------------------------ restore

    def check(self, doc: Document) -> None:
        _entries(doc)

    async def prepare(self, doc: Document, ctx: Context) -> Document:
        return await asyncio.to_thread(self._prepare, doc, ctx)

    def _prepare(self, doc: Document, ctx: Context) -> Document:
        plan = []
        for e in _entries(doc):
            t = containers.find(ctx.root, e["id"], e["name"], e["image"])
            if t is None:
                raise BoltError(
                    f"container {e['name']} of the snapshot no longer exists "
                    "(or was re-created from another image); nothing was changed",
                    hint="re-create it from the same image, or restore without it",
                )
            plan.append((e, t))
        record: list[dict[str, Any]] = []
        try:
            self._stage(ctx, plan, record)
        except BaseException:
            for item in record:  # nothing of a failed prepare stays staged
                btrfs.remove_tree(Path(item["staged"]))
            raise
        return {"containers": record}

    def _stage(
        self,
        ctx: Context,
        plan: list[tuple[dict[str, Any], containers.Target]],
        record: list[dict[str, Any]],
    ) -> None:
        for e, t in plan:
            unit, work, subvolume = containers.restore_unit(ctx.root, t.id)
            if subvolume != (e["kind"] == SUBVOLUME):
                raise BoltError(
                    f"the snapshot keeps {t.name} as a {e['kind']}, which its state directory "
                    "cannot take back (it was moved to or from btrfs); nothing was changed"
                )
            staged = unit.with_name(unit.name + ".restore")
            item = {
                "id": t.id,
                "name": t.name,
                "was_running": t.status == containers.RUNNING,
                "unit": str(unit),
                "work": str(work),
                "staged": str(staged),
                "previous": str(unit.with_name(unit.name + ".previous")),
            }
            record.append(item)
            btrfs.remove_tree(staged)  # a leftover of an earlier attempt
            source = ctx.files / e["path"]
            if not source.exists():
                raise BoltError(f"the snapshot's copy of {t.name} is missing: {source}")
            if e["kind"] == SUBVOLUME:
                btrfs.snapshot(source, staged, readonly=False)
            else:
                from bolt.images.unpack import unpack_layer

                staged.mkdir()
                unpack_layer(source, staged, mode="overlay", expected_digest=e["digest"])
            ctx.tell(self.name, f"staged {t.name}")

    async def commit(self, doc: Document, record: Document, ctx: Context) -> None:
        for item in record["containers"]:
            await asyncio.to_thread(self._swap_in, ctx, item)
            ctx.tell(self.name, f"restored {item['name']}")

    def _swap_in(self, ctx: Context, item: dict[str, Any]) -> None:
        staged, previous = Path(item["staged"]), Path(item["previous"])
        unit = Path(item["unit"])
        if staged.exists():
            containers.stop(ctx.root, item["id"])
            if not previous.exists() and unit.exists():
                os.rename(unit, previous)
            btrfs.remove_tree(unit)  # only a half-made one can be here now
            os.rename(staged, unit)
            _reset_work(Path(item["work"]))
        if item["was_running"]:
            containers.start(ctx.root, item["id"])

    async def abort(self, doc: Document, record: Document, ctx: Context, committed: bool) -> None:
        for item in record.get("containers", []):
            await asyncio.to_thread(self._undo, ctx, item, committed)

    def _undo(self, ctx: Context, item: dict[str, Any], committed: bool) -> None:
        staged, previous = Path(item["staged"]), Path(item["previous"])
        btrfs.remove_tree(staged)
        if not committed:
            return
        unit = Path(item["unit"])
        if previous.exists():
            containers.stop(ctx.root, item["id"])
            btrfs.remove_tree(unit)
            os.rename(previous, unit)
            _reset_work(Path(item["work"]))
        if item["was_running"] and containers.status(ctx.root, item["id"]) is not None:
            containers.start(ctx.root, item["id"])

    async def finish(self, doc: Document, record: Document, ctx: Context) -> None:
        for item in record.get("containers", []):
            await asyncio.to_thread(btrfs.remove_tree, Path(item["previous"]))
            await asyncio.to_thread(btrfs.remove_tree, Path(item["staged"]))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
