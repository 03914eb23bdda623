"""Writing what a build makes into the image store: each step's layer blob (and its
unpacked directory, which is the step's upper directory itself), and the final image.

Blobs go through the layout's staging area (hashed, fsynced, moved in under the layout
lock).  The upper directory is renamed into ``$BOLT_ROOT/layers/<diff id>`` so that the
next step can mount it without unpacking the tar again.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from bolt.build.plan import Layer
from bolt.errors import BoltError
from bolt.images import refs
from bolt.images.layout import (
    CONFIG_MEDIA_TYPE,
    LAYER_GZIP,
    MANIFEST_MEDIA_TYPE,
    REF_ANNOTATION,
    dumps,
)
from bolt.images.store import ImageRecord, ImageStore
from bolt.images.upperlayer import LayerBlob, write_layer

UNTAGGED = "bolt-build"


def store_layer(store: ImageStore, upper: Path) -> Layer:
    """Store ``upper`` (an overlay upper directory, unmounted) as a layer; the directory
    is moved into the layer cache, or removed if that layer is unpacked already."""
    with store.layout.staging() as stage:
        tmp = stage.scratch()
        with open(tmp, "wb") as out:
            blob: LayerBlob = write_layer(upper, out)
            out.flush()
            os.fsync(out.fileno())
        stage.adopt(tmp, blob.digest)
        with store.layout.locked():
            store.layout.commit(stage)
    final = store.layers.dir_for(blob.diff_id)
    final.parent.mkdir(parents=True, exist_ok=True)
    if not final.is_dir():
        try:
            os.rename(upper, final)
        except OSError:
            pass  # someone unpacked the same layer meanwhile: theirs is as good
    shutil.rmtree(upper, ignore_errors=True)
    return Layer(blob.digest, blob.diff_id, LAYER_GZIP, blob.size)


def layer_dir(store: ImageStore, layer: Layer) -> Path:
    """The unpacked directory of ``layer`` (unpacked from its blob if needed)."""
    final = store.layers.dir_for(layer.diff_id)
    if final.is_dir():
        return final
    return store.layers.ensure(layer.diff_id, store.layout.blob_path(layer.digest), layer.digest)


def has_blob(store: ImageStore, digest: str) -> bool:
    return store.layout.blob_path(digest).is_file()


def commit_image(
    store: ImageStore, config: dict[str, Any], layers: list[Layer], tags: list[str]
) -> ImageRecord:
    """Store the image (config + manifest) and name it ``tags`` (none: ``bolt-build:<id>``)."""
    names = [refs.normalize(t) for t in tags]
    with store.layout.staging() as stage:
        config_digest, config_size = stage.add_bytes(dumps(config))
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {
                "mediaType": CONFIG_MEDIA_TYPE,
                "digest": config_digest,
                "size": config_size,
            },
            "layers": [
                {"mediaType": layer.media_type, "digest": layer.digest, "size": layer.size}
                for layer in layers
            ],
        }
        digest, size = stage.add_bytes(dumps(manifest))
        if not names:
            names = [f"{UNTAGGED}:{config_digest.removeprefix('sha256:')[:12]}"]
        with store.layout.locked():
            missing = [layer.digest for layer in layers if not has_blob(store, layer.digest)]
            if missing:
                raise BoltError(
                    f"layer {missing[0]} was removed from the image store during the build",
                    hint="build again (an image rm or prune ran meanwhile)",
                )
            store.layout.commit(stage)
            index = store.layout.read_index()
            descriptor = {"mediaType": MANIFEST_MEDIA_TYPE, "digest": digest, "size": size}
            index["manifests"] = [
                d
                for d in index.get("manifests", [])
                if (d.get("annotations") or {}).get(REF_ANNOTATION) not in names
            ] + [{**descriptor, "annotations": {REF_ANNOTATION: n}} for n in names]
            store.layout.write_index(index)
    return store.resolve(names[0])
