"""``capsule = "SNAPSHOT[:CONTAINER]"``: a service that runs from a capsule snapshot.

A capsule snapshot (:mod:`bolt.capsules`) keeps, per container, the image it ran and its
upper directory: a layer blob, or on btrfs a read-only subvolume.  The service's image is
that image with the upper directory on top, stored as ``PROJECT-SERVICE:latest`` like a
built one; its config carries the snapshot it came from (label ``bolt.surge.capsule``), so
that the next ``up`` reuses it, and a newer snapshot of the same name makes a new image
(whose ID then recreates the service's containers through the spec hash).

``CONTAINER`` picks one of the snapshot's containers by name; without it the snapshot must
hold one container, or one named ``PROJECT-SERVICE-1``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from basis.errors import InvalidInput, NotFound
from bolt.config import Boltfile
from bolt.surge.intents import container_name, image_ref

SOURCE_LABEL = "bolt.surge.capsule"


def _entry(boltfile: Boltfile, service: str, snapshot: Any, container: str | None) -> Any:
    entries = [e for e in snapshot.documents.get("containers", {}).get("containers", [])]
    names = [str(e.get("name")) for e in entries]
    where = f"services.{service}.capsule"
    if not entries:
        raise InvalidInput(f"{where}: snapshot {snapshot.name!r} holds no container")
    wanted = container or (
        names[0] if len(entries) == 1 else container_name(boltfile.name, service, 1)
    )
    for e in entries:
        if e.get("name") == wanted:
            return e
    raise NotFound(
        f"{where}: snapshot {snapshot.name!r} has no container {wanted!r}",
        hint=f"its containers: {', '.join(names)}; name one as 'SNAPSHOT:CONTAINER'",
    )


def ensure_image(root: Path, boltfile: Boltfile, service: str) -> str:
    """The service's image made from its capsule (made now if missing or outdated); its ID."""
    from bolt.build import commit
    from bolt.build.plan import Layer
    from bolt.capsules.snapshots import Snapshot
    from bolt.capsules.store import SnapshotStore
    from bolt.images.layout import LAYER_GZIP
    from bolt.images.store import ImageStore
    from bolt.images.upperlayer import write_layer

    spec = boltfile.services[service].capsule or ""
    name, _, container = spec.partition(":")
    snapshot = Snapshot.get(name, root=root)
    entry = _entry(boltfile, service, snapshot, container or None)
    source = f"{snapshot.name}@{snapshot.created:.6f}/{entry.get('id')}"
    store = ImageStore(root)
    ref = image_ref(boltfile, service)
    try:
        current = store.resolve(ref)
        if (current.config.get("Labels") or {}).get(SOURCE_LABEL) == source:
            return current.id
    except NotFound:
        pass
    try:
        base = store.resolve(str(entry.get("image")))
    except NotFound:
        raise NotFound(
            f"services.{service}.capsule: the image {entry.get('image')!r} that "
            f"{entry.get('name')} ran is no longer in the image store",
            hint="pull or build it again",
        ) from None
    with SnapshotStore(root) as snapshots:
        files = Path(snapshots.get(name).dir)
    with store.layout.staging() as stage:
        if entry.get("kind") == "subvolume":  # a btrfs snapshot of the upper directory
            tmp = stage.scratch()
            with open(tmp, "wb") as out:
                blob = write_layer(files / str(entry["path"]), out, strip=False)
            stage.adopt(tmp, blob.digest)
            top = Layer(blob.digest, blob.diff_id, LAYER_GZIP, blob.size)
        else:
            with open(files / str(entry["path"]), "rb") as fh:
                expected = {"digest": entry["digest"], "size": int(entry["size"])}
                stage.add_stream(fh, expected)
            top = Layer(str(entry["digest"]), str(entry["diff_id"]), LAYER_GZIP, int(entry["size"]))
        with store.layout.locked():
            store.layout.commit(stage)
    config = store.layout.read_json({"digest": base.id})
    manifest = store.layout.read_json({"digest": base.manifest_digest})
    layers = [
        Layer(str(d["digest"]), diff_id, str(d.get("mediaType", "")), int(d.get("size", 0)))
        for d, diff_id in zip(manifest.get("layers") or [], base.diff_ids, strict=True)
    ]
    inner = dict(config.get("config") or {})
    inner["Labels"] = {**(inner.get("Labels") or {}), SOURCE_LABEL: source}
    image = {
        **config,
        "config": inner,
        "rootfs": {"type": "layers", "diff_ids": [*base.diff_ids, top.diff_id]},
        "history": [
            *(config.get("history") or []),
            {"created_by": f"bolt surge: capsule snapshot {snapshot.name} of {entry.get('name')}"},
        ],
    }
    return commit.commit_image(store, image, [*layers, top], [ref]).id
