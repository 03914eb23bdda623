"""Moving one blob: download into a staging area while hashing, or upload from the
store; both report progress.

A download that is longer or shorter than its descriptor, or whose digest is not the one
promised, raises :class:`CorruptBlob`; a layer is then read through once more by the
store's own layer check (``tarlayer.scan_layer``, the one ``bolt image import`` uses),
which measures its diff id and refuses a hostile tar.  On any error the caller's staging
area is discarded and nothing is stored.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import httpx

from bolt.images.digests import CHUNK, digest_hex
from bolt.images.errors import CorruptBlob
from bolt.images.layout import Staging
from bolt.registry.client import RegistryClient, RegistryError
from bolt.registry.progress import Progress

Task = Callable[[threading.Event], None]
ATTEMPTS = 3  # a blob whose transfer breaks off is fetched again from the start
RETRY_DELAY = 0.5  # seconds before a broken-off blob is fetched again, times the attempt


class Cancelled(Exception):
    """A transfer stopped because another one failed or the user interrupted."""


def run_parallel(tasks: list[Task], jobs: int) -> None:
    """Run ``tasks`` on ``jobs`` threads.  The first failure (or Ctrl-C) sets the event
    every task is given, so the others stop at their next chunk; that failure is raised
    once all have stopped."""
    cancel = threading.Event()
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        futures = [pool.submit(task, cancel) for task in tasks]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            if future in done and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
    except BaseException:
        cancel.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def download(
    client: RegistryClient,
    repository: str,
    descriptor: dict[str, Any],
    stage: Staging,
    lock: threading.Lock,
    progress: Progress,
    *,
    label: str,
    diff_id: str | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Fetch one blob into ``stage``; with ``diff_id`` it is a layer whose uncompressed
    digest must be ``diff_id``."""
    digest = str(descriptor["digest"])
    size = int(descriptor["size"])
    where = f"{label} of {client.registry}/{repository}"
    tmp = stage.path / f"download-{digest_hex(digest)}"
    for attempt in range(ATTEMPTS):
        blob_hash = hashlib.sha256()
        received = 0
        progress.start(digest, label, size)
        try:
            with client.open_blob(repository, digest) as response, open(tmp, "wb") as out:
                for chunk in response.iter_bytes(CHUNK):
                    if cancel is not None and cancel.is_set():
                        raise Cancelled(digest)
                    received += len(chunk)
                    if received > size:
                        raise CorruptBlob(
                            f"{where} ({digest}) is longer than the {size} bytes its manifest says",
                            hint="the registry serves damaged data; nothing was stored",
                        )
                    blob_hash.update(chunk)
                    out.write(chunk)
                    progress.advance(digest, len(chunk))
                out.flush()
                os.fsync(out.fileno())
            break
        except httpx.HTTPError as err:  # the connection broke: start this blob again
            if attempt + 1 == ATTEMPTS:
                raise RegistryError(
                    f"{where} ({digest}): the transfer broke off after {received} of "
                    f"{size} bytes, {ATTEMPTS} times: {err}",
                    hint="try again later; nothing was stored",
                ) from err
            progress.finish(digest, f"broke off after {received} bytes; again")
            if cancel is not None and cancel.wait(RETRY_DELAY * (attempt + 1)):
                raise Cancelled(digest) from err
    actual = "sha256:" + blob_hash.hexdigest()
    if received != size:
        raise CorruptBlob(
            f"{where} ({digest}) is truncated: {received} of {size} bytes",
            hint="the registry serves damaged data; nothing was stored",
        )
    if actual != digest:
        raise CorruptBlob(
            f"{where} does not match its digest: expected {digest}, got {actual}",
            hint="the registry serves damaged data; nothing was stored",
        )
    if diff_id is not None:
        check_layer(tmp, diff_id, where)
    with lock:
        stage.adopt(tmp, digest)
    progress.finish(digest, "done")


def check_layer(path: Path, diff_id: str, where: str) -> None:
    """The checks every stored layer passes (see ``tarlayer.scan_layer``: it decompresses,
    parses as tar, names nothing outside, links only within itself), and its diff id."""
    from bolt.images.tarlayer import scan_layer

    actual = scan_layer(path, label=where).diff_id
    if actual != diff_id:
        raise CorruptBlob(
            f"{where} unpacks to {actual}, but the image config says {diff_id}",
            hint="the image in the registry is inconsistent; nothing was stored",
        )


def file_chunks(
    path: Path,
    offset: int,
    length: int,
    progress: Progress,
    key: str,
    cancel: threading.Event | None = None,
) -> Iterator[bytes]:
    """``length`` bytes of ``path`` from ``offset``, reported as they are read."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        left = length
        while left > 0:
            if cancel is not None and cancel.is_set():
                raise Cancelled(key)
            data = fh.read(min(CHUNK, left))
            if not data:
                raise CorruptBlob(f"{path} is shorter than its descriptor says")
            left -= len(data)
            progress.advance(key, len(data))
            yield data
