"""The OCI image layout on disk: ``oci-layout``, ``index.json`` and ``blobs/sha256/<hex>``.

Blobs are content-addressed and written once: they are first staged (written while hashed,
fsynced) in a private directory under ``.staging/`` that holds an ``flock`` for as long as
it lives, and moved into ``blobs/`` under the layout lock only when everything an image
needs is verified.  ``index.json`` is replaced atomically.  Third-party tools (skopeo,
umoci) ignore the dot-entries.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from basis import workdirs
from bolt.images.digests import copy_hashed, digest_hex
from bolt.images.errors import CorruptBlob

REF_ANNOTATION = "org.opencontainers.image.ref.name"
# on an image's entry: the digest of the index (multi-platform) it was pulled from; the
# index blob is kept with the image
INDEX_ANNOTATION = "dev.bolt.registry.index"
PLATFORM_ANNOTATION = "dev.bolt.registry.platform"  # the image's entry there: linux/arm64
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
LAYER_GZIP = LAYER_TAR + "+gzip"
LAYER_ZSTD = LAYER_TAR + "+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (MANIFEST_MEDIA_TYPE, DOCKER_MANIFEST)
INDEX_TYPES = (INDEX_MEDIA_TYPE, DOCKER_LIST)
MAX_JSON_BLOB = 4 << 20


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def _write_tmp(path: Path, data: bytes) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return tmp


def write_atomic(path: Path, data: bytes) -> None:
    os.replace(_write_tmp(path, data), path)


def create_atomic(path: Path, data: bytes) -> None:
    """Write ``path`` whole, unless it exists already (then leave it as it is)."""
    tmp = _write_tmp(path, data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def is_layout(path: Path) -> bool:
    return (path / "oci-layout").is_file() and (path / "index.json").is_file()


class Layout:
    """An OCI image layout directory (ours, or one being imported)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.blobs = path / "blobs" / "sha256"

    def ensure(self) -> None:
        """Create an empty layout if there is none."""
        self.blobs.mkdir(parents=True, exist_ok=True)
        if not (self.path / "oci-layout").exists():
            create_atomic(self.path / "oci-layout", dumps({"imageLayoutVersion": "1.0.0"}))
        if not (self.path / "index.json").exists():
            create_atomic(self.path / "index.json", dumps(empty_index()))

    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest_hex(digest)

    def read_index(self) -> dict[str, Any]:
        try:
            data = (self.path / "index.json").read_bytes()
        except FileNotFoundError:
            return empty_index()
        index = json.loads(data)
        if not isinstance(index, dict) or not isinstance(index.get("manifests", []), list):
            raise CorruptBlob(f"{self.path / 'index.json'} is not an OCI image index")
        return index

    def write_index(self, index: dict[str, Any]) -> None:
        write_atomic(self.path / "index.json", json.dumps(index, indent=2).encode() + b"\n")

    def read_json(self, descriptor: dict[str, Any]) -> dict[str, Any]:
        """A small JSON blob (manifest, config, index), checked against its descriptor."""
        digest = str(descriptor.get("digest", ""))
        path = self.blob_path(digest)
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_JSON_BLOB + 1)
        except FileNotFoundError:
            raise CorruptBlob(
                f"blob {digest} is missing from {self.path}",
                hint="the image is incomplete; import it again",
            ) from None
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != digest or ("size" in descriptor and descriptor["size"] != len(data)):
            raise CorruptBlob(f"blob {digest} in {self.path} does not match its digest or size")
        doc = json.loads(data)
        if not isinstance(doc, dict):
            raise CorruptBlob(f"blob {digest} in {self.path} is not a JSON object")
        return doc

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive lock over index and blob changes (commit, untag, garbage collection)."""
        self.ensure()
        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def staging(self) -> Iterator[Staging]:
        """A private staging area, removed when the block ends (committed or not)."""
        area = self.path / ".staging"
        with self.locked():  # so that no one cleans the new area before it is locked
            area.mkdir(exist_ok=True)
            _clean_stale(area)
            stage = Staging(Path(tempfile.mkdtemp(dir=area)), self)
        try:
            yield stage
        finally:
            stage.discard()

    def clean_staging(self) -> list[tuple[str, int]]:
        """Remove the staging areas that killed imports and pulls left (partial downloads
        among them); those in use are kept.  Returns each one's name and size in bytes."""
        area = self.path / ".staging"
        if not area.is_dir():
            return []
        with self.locked():
            return _clean_stale(area)

    def commit(self, stage: Staging) -> None:
        """Move staged blobs into ``blobs/``; call with :meth:`locked` held."""
        for digest, path in stage.blobs.items():
            target = self.blob_path(digest)
            if target.exists():
                continue
            os.replace(path, target)
        dirfd = os.open(self.blobs, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)


def platform_name(entry: dict[str, Any]) -> str:
    """An index entry's platform as ``OS/ARCH[/VARIANT]`` (``?`` for what it lacks)."""
    plat = entry.get("platform") or {}
    parts = (plat.get("os", "?"), plat.get("architecture", "?"), plat.get("variant"))
    return "/".join(str(p) for p in parts if p)


def empty_index() -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": []}


class Staging:
    """Blobs written and verified for one import, not yet visible in the layout."""

    def __init__(self, path: Path, layout: Layout) -> None:
        self.path = path
        self.layout = layout
        self.blobs: dict[str, Path] = {}
        self._lock = workdirs.hold(path)
        self._n = 0

    def scratch(self) -> Path:
        """A fresh file name inside the staging area."""
        self._n += 1
        return self.path / f"part-{self._n}"

    def add_stream(self, src: BinaryIO, expected: dict[str, Any] | None = None) -> tuple[str, int]:
        """Stage a blob from ``src``; with ``expected`` (a descriptor) its digest and size
        must match."""
        tmp = self.scratch()
        with open(tmp, "wb") as out:
            digest, size = copy_hashed(src, out)
            out.flush()
            os.fsync(out.fileno())
        if expected is not None:
            want = str(expected.get("digest"))
            if digest != want or size != expected.get("size", size):
                tmp.unlink()
                raise CorruptBlob(
                    f"blob {want} does not match its descriptor: got {digest}, {size} bytes",
                    hint="the source is damaged; export or fetch it again",
                )
        return self.adopt(tmp, digest), size

    def add_bytes(self, data: bytes) -> tuple[str, int]:
        return self.add_stream(io.BytesIO(data))

    def adopt(self, tmp: Path, digest: str) -> str:
        """Register a fully written file under ``digest``."""
        final = self.path / digest_hex(digest)
        os.replace(tmp, final)
        self.blobs[digest] = final
        return digest

    def drop(self, digest: str) -> None:
        """Forget a staged blob (it will not be committed)."""
        path = self.blobs.pop(digest, None)
        if path is not None:
            path.unlink(missing_ok=True)

    def discard(self) -> None:
        if self._lock >= 0:
            shutil.rmtree(self.path, ignore_errors=True)
            os.close(self._lock)
            self._lock = -1


def _clean_stale(area: Path) -> list[tuple[str, int]]:
    """Remove staging dirs left by crashed imports (their flock is free); call with the
    layout lock held.  Returns each one's name and the bytes it held."""
    removed = []
    for entry in workdirs.abandoned(area):
        size = _bytes_under(entry)
        shutil.rmtree(entry, ignore_errors=True)
        removed.append((entry.name, size))
    return removed


def _bytes_under(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total
