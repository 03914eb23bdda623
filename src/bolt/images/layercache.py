"""Layers unpacked once into ``<root>/layers/<diff-id hex>/``, then used read-only as
overlayfs lower directories.

A layer is unpacked into ``.tmp-<hex>-*`` and renamed into place only when complete and
verified, under a per-layer ``flock`` so that two processes never unpack the same layer at
once: a crash mid-unpack leaves nothing half-visible, and the leftover is removed the next
time that layer is unpacked or layers are pruned.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bolt.errors import NotFound
from bolt.images.digests import digest_hex


class LayerCache:
    def __init__(self, path: Path) -> None:
        self.path = path

    def dir_for(self, diff_id: str) -> Path:
        return self.path / digest_hex(diff_id)

    def ensure(self, diff_id: str, blob: Path, blob_digest: str) -> Path:
        """The unpacked directory of a layer, unpacking ``blob`` first if needed."""
        final = self.dir_for(diff_id)
        if final.is_dir():
            return final
        from bolt.images.unpack import unpack_layer  # tarfile: only when something is unpacked

        hex_id = final.name
        with self._locked(hex_id, blocking=True):
            if final.is_dir():
                return final
            self._remove_leftovers(hex_id)
            if not blob.is_file():
                raise NotFound(
                    f"layer {blob_digest} is no longer in the image store",
                    hint="the image was removed meanwhile; import it again",
                )
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{hex_id}-", dir=self.path))
            try:
                os.chmod(tmp, 0o755)
                unpack_layer(
                    blob,
                    tmp,
                    mode="overlay",
                    expected_digest=blob_digest,
                    expected_diff_id=diff_id,
                )
                os.rename(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return final

    def unpacked(self) -> list[str]:
        """Diff ids of the layers present."""
        if not self.path.is_dir():
            return []
        return sorted(
            "sha256:" + e.name
            for e in os.scandir(self.path)
            if len(e.name) == 64 and e.is_dir(follow_symlinks=False)
        )

    def remove(self, diff_id: str) -> bool:
        """Drop an unpacked layer, unless an overlay mount uses it as a lower dir or another
        process is unpacking it right now."""
        final = self.dir_for(diff_id)
        if not final.is_dir() or final.name in mounted_layer_ids():
            return False
        with self._locked(final.name, blocking=True):
            # rename first, so that no half-removed directory is ever visible by its name
            doomed = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=self.path))
            os.rename(final, doomed / "layer")
            shutil.rmtree(doomed, ignore_errors=True)
        return True

    def clean_leftovers(self) -> None:
        """Remove what crashed unpacks left (layers being unpacked now are left alone)."""
        if not self.path.is_dir():
            return
        for hex_id in {e.name[5:69] for e in os.scandir(self.path) if e.name.startswith(".tmp-")}:
            with contextlib.suppress(BlockingIOError), self._locked(hex_id, blocking=False):
                self._remove_leftovers(hex_id)

    def _remove_leftovers(self, hex_id: str) -> None:
        for entry in self.path.glob(f".tmp-{hex_id}-*"):
            shutil.rmtree(entry, ignore_errors=True)

    @contextlib.contextmanager
    def _locked(self, hex_id: str, *, blocking: bool) -> Iterator[None]:
        locks = self.path / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        fd = os.open(locks / hex_id, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            yield
        finally:
            os.close(fd)


def mounted_layer_ids(mountinfo: Path = Path("/proc/self/mountinfo")) -> set[str]:
    """Hex ids of layer directories that overlay mounts in this mount namespace use as
    lower dirs (matched by directory name, since mounts may name them relatively)."""
    found: set[str] = set()
    try:
        text = mountinfo.read_text()
    except OSError:
        return found
    for line in text.splitlines():
        _, sep, tail = line.partition(" - ")
        fields = tail.split()
        if not sep or len(fields) < 3 or fields[0] != "overlay":
            continue
        for option in fields[2].split(","):
            if option.startswith("lowerdir="):
                for lower in option[len("lowerdir=") :].split(":"):
                    name = os.path.basename(lower.rstrip("/"))
                    if len(name) == 64:
                        found.add(name)
    return found
