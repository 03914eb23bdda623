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
from bolt.images.layout import INDEX_ANNOTATION, PLATFORM_ANNOTATION, Staging, platform_name
from bolt.images.store import ImageRecord, ImageStore
from bolt.registry.client import RegistryClient
from bolt.registry.manifest import (
    Fetched,
    Platform,
    check,
    diff_ids,
    pick_platform,
)
from bolt.registry.progress import Progress, Silent
from bolt.registry.reference import RemoteRef
from bolt.registry.transfer import download, run_parallel

SOURCE_ANNOTATION = "dev.bolt.registry.source"  # registry/repository the image came from
JOBS = 4


def resolve_manifest(
    client: RegistryClient,
    ref: RemoteRef,
    platform: Platform | None = None,
    top: Fetched | None = None,
) -> tuple[Fetched, Fetched]:
    """The manifest served for ``ref`` (or ``top``, when it is known already) and the
    image manifest for ``platform`` (default: ``linux/<this machine>``; the same one
    unless the first is an index or manifest list)."""
    wanted = platform or Platform("linux", host_arch())
    if top is None:
        top = client.get_manifest(ref.repository, ref.reference, ref.digest)
    if not top.is_index:
        return top, top
    child = pick_platform(top.doc, wanted, str(ref))
    image = client.get_manifest(ref.repository, str(child["digest"]), str(child["digest"]))
    if image.is_index:
        raise CorruptBlob(f"{ref}: the {wanted} entry is another index")
    return top, image


def pull(
    store: ImageStore,
    ref: RemoteRef,
    client: RegistryClient,
    *,
    progress: Progress | None = None,
    jobs: int = JOBS,
    platform: Platform | None = None,
) -> ImageRecord:
    """Pull ``ref`` into ``store`` under ``ref.local``: the image for ``platform`` (default:
    this machine's) when ``ref`` names an index, which is kept with it."""
    progress = progress or Silent()
    top, image = resolve_manifest(client, ref, platform, kept_index(store, ref))
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
        annotations = {SOURCE_ANNOTATION: f"{ref.registry}/{ref.repository}"}
        if top.is_index:  # kept: what else it offers, and which entry this image is
            stage.add_bytes(top.data)
            annotations[INDEX_ANNOTATION] = top.digest
            annotations[PLATFORM_ANNOTATION] = platform_in(top.doc, image.digest)
        blobs = [str(config_desc["digest"]), *(str(layer["digest"]) for layer in layers)]
        return store.commit_image(
            stage, image.descriptor(), ref.local, reused=blobs, annotations=annotations
        )


def kept_index(store: ImageStore, ref: RemoteRef) -> Fetched | None:
    """The index ``ref`` names by digest, when the store kept it from an earlier pull (an
    index is content-addressed: the same digest is the same document), so that another
    platform of the same release is pulled without asking for the index again."""
    if ref.digest is None or not store.has_blob(ref.digest):
        return None
    data = store.layout.blob_path(ref.digest).read_bytes()
    kept = check(data, "", str(ref), ref.digest)
    return kept if kept.is_index else None


def platform_in(index: dict[str, Any], digest: str) -> str:
    """The platform of the entry ``digest`` in ``index``."""
    for child in index.get("manifests") or []:
        if isinstance(child, dict) and child.get("digest") == digest:
            return platform_name(child)
    return "?"


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
