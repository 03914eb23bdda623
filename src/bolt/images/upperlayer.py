"""An OCI layer taken from an overlay upper directory (a build step's, or a container's
for a capsule snapshot).

overlayfs records a deletion as a 0/0 character device and a replaced directory as one
with ``trusted.overlay.opaque=y``; an OCI layer says ``.wh.NAME`` and ``.wh..wh..opq``.
``write_layer`` converts while it writes the tar (sorted, numeric owners, whole-second
mtimes, xattrs kept except overlayfs' own), gzips it and returns both digests.  By default
it also strips overlayfs' bookkeeping xattrs (origin, impure) from the upper directory, so
that the directory can be used as it is as the layer's unpacked form — exactly what
``unpack_layer(mode="overlay")`` would make of the tar.  ``strip=False`` leaves the
directory untouched, for the upper directory of a container that is still mounted.
"""

from __future__ import annotations

import gzip
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from bolt.images.digests import HashingWriter
from bolt.images.unpack import OPAQUE, OPAQUE_XATTR, WHITEOUT

OVERLAY_XATTR = "trusted.overlay."
GZIP_LEVEL = 6


@dataclass(frozen=True)
class LayerBlob:
    diff_id: str  # sha256 of the tar
    digest: str  # sha256 of the gzip blob
    size: int  # bytes of the gzip blob
    entries: int


def is_empty(upper: Path) -> bool:
    with os.scandir(upper) as it:
        return next(it, None) is None


def write_layer(
    upper: Path, out: BinaryIO, *, strip: bool = True, level: int = GZIP_LEVEL
) -> LayerBlob:
    """Write ``upper`` as a tar+gzip OCI layer to ``out`` (gzip ``level`` 1-9)."""
    _xattrs(upper, strip)  # overlayfs may mark the upper root itself (impure, origin)
    blob = HashingWriter(out)
    count = 0
    with gzip.GzipFile(fileobj=blob, mode="wb", mtime=0, compresslevel=level) as gz:  # type: ignore[arg-type]
        plain = HashingWriter(gz)  # type: ignore[arg-type]
        with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as archive:  # type: ignore[call-overload]
            for dirpath, dirnames, filenames in os.walk(upper):
                dirnames.sort()
                here = Path(dirpath)
                rel_dir = here.relative_to(upper)
                for name in sorted([*dirnames, *filenames]):
                    count += _add(
                        archive, here / name, str(rel_dir / name).removeprefix("./"), strip
                    )
    return LayerBlob(plain.digest, blob.digest, blob.size, count)


def _add(archive: tarfile.TarFile, path: Path, arcname: str, strip: bool) -> int:
    st = os.lstat(path)
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        info = tarfile.TarInfo(_sibling(arcname, WHITEOUT + path.name))
        info.mode = 0o644
        info.mtime = int(st.st_mtime)
        archive.addfile(info)
        return 1
    info = archive.gettarinfo(str(path), arcname=arcname)
    if info is None:
        return 0  # sockets
    info.uname = info.gname = ""
    info.mtime = int(info.mtime)
    xattrs, opaque = _xattrs(path, strip)
    info.pax_headers = {**info.pax_headers, **xattrs}
    if info.isreg():
        with open(path, "rb") as fh:
            archive.addfile(info, fh)
    else:
        archive.addfile(info)
    if opaque and info.isdir():
        marker = tarfile.TarInfo(f"{arcname}/{OPAQUE}")
        marker.mode = 0o644
        marker.mtime = info.mtime
        archive.addfile(marker)
        return 2
    return 1


def _sibling(arcname: str, name: str) -> str:
    head, _, _ = arcname.rpartition("/")
    return f"{head}/{name}" if head else name


def _xattrs(path: Path, strip: bool) -> tuple[dict[str, str], bool]:
    """The PAX headers of ``path``'s xattrs and whether it is an opaque directory; overlayfs'
    own xattrs are left out of the tar and (with ``strip``) removed from the file (all but
    opaque)."""
    headers: dict[str, str] = {}
    opaque = False
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return headers, False
    for name in sorted(names):
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
        if name == OPAQUE_XATTR:
            opaque = value == b"y"
            continue
        if name.startswith(OVERLAY_XATTR):
            if not strip:
                continue
            try:
                os.removexattr(path, name, follow_symlinks=False)
            except OSError:
                pass
            continue
        headers[f"SCHILY.xattr.{name}"] = value.decode("utf-8", "surrogateescape")
    return headers, opaque
