"""``bolt push``: send an image's config and layers (in parallel) to a repository, then its
manifest, byte for byte as stored so that its digest is kept.

For each blob: HEAD first (the registry may have it already); else, when the image came
from another repository of the same registry, a cross-repository mount; else an upload,
monolithic (POST, then PUT ``?digest=``) or chunked (PATCHes of ``chunk_size``).
"""

from __future__ import annotations

import functools
import json
import threading
from typing import Any

from bolt.errors import InvalidInput
from bolt.images.errors import CorruptBlob
from bolt.images.store import ImageStore
from bolt.registry.client import RegistryClient
from bolt.registry.manifest import digest_of
from bolt.registry.progress import Progress, Silent
from bolt.registry.pull import JOBS, SOURCE_ANNOTATION
from bolt.registry.reference import RemoteRef
from bolt.registry.transfer import file_chunks, run_parallel


def push(
    store: ImageStore,
    source: str,
    dest: RemoteRef,
    client: RegistryClient,
    *,
    progress: Progress | None = None,
    jobs: int = JOBS,
    chunk_size: int | None = None,
) -> str:
    """Push the local image ``source`` to ``dest``; returns the manifest digest."""
    progress = progress or Silent()
    if dest.tag is None:
        raise InvalidInput(f"push to {dest} needs a tag", hint="use REGISTRY/REPOSITORY:TAG")
    entry = store.descriptor(source)
    record = store.resolve(source)
    data = store.layout.blob_path(record.manifest_digest).read_bytes()
    if digest_of(data) != record.manifest_digest:
        raise CorruptBlob(f"the stored manifest of {record.ref} does not match its digest")
    manifest = json.loads(data)
    blobs: list[dict[str, Any]] = [manifest["config"], *manifest["layers"]]
    origin = str((entry.get("annotations") or {}).get(SOURCE_ANNOTATION, ""))
    host, _, repository = origin.partition("/")
    mount_from = repository if host == dest.registry and repository != dest.repository else None

    def send(descriptor: dict[str, Any], cancel: threading.Event) -> None:
        digest = str(descriptor["digest"])
        size = int(descriptor["size"])
        label = "config" if descriptor is blobs[0] else f"layer {digest[7:19]}"
        progress.start(digest, label, size)
        if client.blob_exists(dest.repository, digest):
            progress.finish(digest, "already there")
            return
        location = None
        if mount_from is not None:
            location = client.mount_blob(dest.repository, digest, mount_from)
            if location is None:
                progress.finish(digest, f"mounted from {mount_from}")
                return
        location = location or client.start_upload(dest.repository)
        path = store.layout.blob_path(digest)
        client.upload(
            dest.repository,
            location,
            digest,
            size,
            lambda offset, length: file_chunks(path, offset, length, progress, digest, cancel),
            chunk_size,
        )
        progress.finish(digest, "pushed")

    unique = list({str(b["digest"]): b for b in blobs}.values())
    run_parallel([functools.partial(send, b) for b in unique], jobs)
    media_type = str(manifest.get("mediaType") or entry["mediaType"])
    served = client.put_manifest(dest.repository, dest.tag, data, media_type)
    if served and served != record.manifest_digest:
        raise CorruptBlob(
            f"{dest}: the registry stored the manifest as {served}, not {record.manifest_digest}"
        )
    return record.manifest_digest
