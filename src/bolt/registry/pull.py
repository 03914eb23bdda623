"""``bolt pull``: fetch an image's manifest (following an index or manifest list to this
machine's platform), its config and its layers (in parallel, skipping blobs the store
has), verify every digest and diff id, and store the image under its local name.

Everything is staged first; only a completely verified image becomes visible.
"""

from __future__ import annotations

import functools
import json
import threading
from typing import Any

from bolt.images.errors import CorruptBlob
from bolt.images.importer import host_arch
from bolt.images.layout import Staging
from bolt.images.store import ImageRecord, ImageStore
from bolt.registry.client import RegistryClient
from bolt.registry.manifest import Fetched, diff_ids, pick_platform
from bolt.registry.progress import Progress, Silent
from bolt.registry.reference import RemoteRef
from bolt.registry.transfer import download, run_parallel

SOURCE_ANNOTATION = "dev.bolt.registry.source"  # registry/repository the image came from
JOBS = 4


def resolve_manifest(
    client: RegistryClient, ref: RemoteRef, arch: str | None = None
) -> tuple[Fetched, Fetched]:
    """The manifest served for ``ref`` and the image manifest for ``linux/<arch>`` (the
    same one unless the first is an index or manifest list)."""
    top = client.get_manifest(ref.repository, ref.reference, ref.digest)
    if not top.is_index:
        return top, top
    child = pick_platform(top.doc, arch or host_arch(), str(ref))
    image = client.get_manifest(ref.repository, str(child["digest"]), str(child["digest"]))
    if image.is_index:
        raise CorruptBlob(f"{ref}: the linux/{arch or host_arch()} entry is another index")
    return top, image


def pull(
    store: ImageStore,
    ref: RemoteRef,
    client: RegistryClient,
    *,
    progress: Progress | None = None,
    jobs: int = JOBS,
    arch: str | None = None,
) -> ImageRecord:
    """Pull ``ref`` into ``store`` under ``ref.local``."""
    progress = progress or Silent()
    _, image = resolve_manifest(client, ref, arch)
    manifest = image.doc
    config_desc: dict[str, Any] = manifest["config"]
    layers: list[dict[str, Any]] = manifest["layers"]
    lock = threading.Lock()
    with store.layout.staging() as stage:
        if not store.has_blob(str(config_desc["digest"])):
            download(client, ref.repository, config_desc, stage, lock, progress, label="config")
        config_path = stage.blobs.get(str(config_desc["digest"])) or store.layout.blob_path(
            str(config_desc["digest"])
        )
        try:
            config = json.loads(config_path.read_bytes())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise CorruptBlob(f"image config of {ref} is not JSON: {err}") from err
        if not isinstance(config, dict):
            raise CorruptBlob(f"image config of {ref} is not a JSON object")
        ids = diff_ids(config, len(layers), str(ref))
        wanted: dict[str, tuple[dict[str, Any], str]] = {}
        for layer, diff_id in zip(layers, ids, strict=True):
            digest = str(layer["digest"])
            if store.has_blob(digest):
                progress.start(digest, f"layer {digest[7:19]}", int(layer["size"]))
                progress.finish(digest, "already stored")
            else:
                wanted.setdefault(digest, (layer, diff_id))
        run_parallel(
            [
                functools.partial(
                    _fetch_layer, client, ref.repository, layer, diff_id, stage, lock, progress
                )
                for layer, diff_id in wanted.values()
            ],
            jobs,
        )
        stage.add_bytes(image.data)
        blobs = [str(config_desc["digest"]), *(str(layer["digest"]) for layer in layers)]
        return store.commit_image(
            stage,
            image.descriptor(),
            ref.local,
            reused=blobs,
            annotations={SOURCE_ANNOTATION: f"{ref.registry}/{ref.repository}"},
        )


def _fetch_layer(
    client: RegistryClient,
    repository: str,
    layer: dict[str, Any],
    diff_id: str,
    stage: Staging,
    lock: threading.Lock,
    progress: Progress,
    cancel: threading.Event,
) -> None:
    label = f"layer {str(layer['digest'])[7:19]}"
    download(
        client,
        repository,
        layer,
        stage,
        lock,
        progress,
        label=label,
        diff_id=diff_id,
        cancel=cancel,
    )
