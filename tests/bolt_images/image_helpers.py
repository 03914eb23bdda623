"""Builders for the image tests: layer tarballs from short entry lists, busybox rootfs trees,
and snapshots of directory trees to prove nothing changed."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import stat
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

F = TypeVar("F", bound=Any)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def root_only(fn: F) -> F:
    """Marks a test that needs root (CI runs as root, so it never skips there)."""
    return pytest.mark.root(needs_root(fn))  # type: ignore[no-any-return]


@dataclass
class Entry:
    """One tar member: ``kind`` is file, dir, symlink, hardlink, fifo, chr or blk."""

    name: str
    kind: str = "file"
    data: bytes = b""
    target: str = ""  # symlink / hardlink target
    mode: int | None = None  # 0o755 for directories, 0o644 otherwise
    uid: int = 0
    gid: int = 0
    mtime: int = 1_600_000_000
    xattrs: dict[str, bytes] = field(default_factory=dict)
    dev: tuple[int, int] = (0, 0)


_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "fifo": tarfile.FIFOTYPE,
    "chr": tarfile.CHRTYPE,
    "blk": tarfile.BLKTYPE,
}


def tar_bytes(entries: list[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = _TYPES[e.kind]
            info.mode = e.mode if e.mode is not None else (0o755 if e.kind == "dir" else 0o644)
            info.uid, info.gid = e.uid, e.gid
            info.mtime = e.mtime
            info.linkname = e.target
            info.devmajor, info.devminor = e.dev
            info.pax_headers = {
                f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape")
                for k, v in e.xattrs.items()
            }
            if e.kind == "file":
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def write_layer(path: Path, entries: list[Entry], compress: str = "gzip") -> Path:
    data = tar_bytes(entries)
    if compress == "gzip":
        data = gzip.compress(data, mtime=0)
    elif compress == "xz":
        import lzma

        data = lzma.compress(data)
    elif compress == "bzip2":
        import bz2

        data = bz2.compress(data)
    elif compress == "zstd":
        data = subprocess.run(
            ["zstd", "-q", "-c"], input=data, capture_output=True, check=True
        ).stdout
    path.write_bytes(data)
    return path


def busybox_rootfs(dest: Path) -> Path:
    """A minimal rootfs: /bin/busybox with absolute symlinks for its applets."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    (dest / "bin").mkdir(parents=True)
    shutil.copy2(busybox, dest / "bin" / "busybox")
    applets = subprocess.run(
        [busybox, "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (dest / "bin" / applet).symlink_to("/bin/busybox")
    (dest / "etc").mkdir()
    (dest / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (dest / "etc" / "hostname").write_text("busybox\n")
    (dest / "tmp").mkdir()
    os.chmod(dest / "tmp", 0o1777)
    return dest


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes | str]]:
    """Every entry under ``root`` with its mode, mtime and content (or link target)."""
    found: dict[str, tuple[int, int, bytes | str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                body: bytes | str = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                body = path.read_bytes()
            else:
                body = ""
            found[str(path.relative_to(root))] = (st.st_mode, st.st_mtime_ns, body)
    return found


def run(*cmd: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
    if shutil.which(str(cmd[0])) is None:
        pytest.fail(f"{cmd[0]} is not installed (./project.sh setup installs it)")
    return subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        check=True,
        **kw,  # type: ignore[call-overload]
    )


def write_oci_layout(
    layout: Path, layers: list[bytes], name: str = "v1", config: dict[str, Any] | None = None
) -> Path:
    """An OCI layout holding one image named ``name`` whose layers are ``layers`` (gzip
    bytes, lowest first), taken as they are: hostile layers too, which no careful tool
    would write, and stacks deeper than tools like to make."""
    import hashlib
    import json

    from bolt.images.importer import host_arch
    from bolt.images.layout import (
        CONFIG_MEDIA_TYPE,
        INDEX_MEDIA_TYPE,
        LAYER_GZIP,
        MANIFEST_MEDIA_TYPE,
        REF_ANNOTATION,
    )

    blobs = layout / "blobs/sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return f"sha256:{digest}"

    diff_ids = ["sha256:" + hashlib.sha256(gzip.decompress(x)).hexdigest() for x in layers]
    config_blob = json.dumps(
        {
            "architecture": host_arch(),
            "os": "linux",
            "config": config or {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {
                "mediaType": CONFIG_MEDIA_TYPE,
                "digest": put(config_blob),
                "size": len(config_blob),
            },
            "layers": [{"mediaType": LAYER_GZIP, "digest": put(x), "size": len(x)} for x in layers],
        }
    ).encode()
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [
            {
                "mediaType": MANIFEST_MEDIA_TYPE,
                "digest": put(manifest),
                "size": len(manifest),
                "annotations": {REF_ANNOTATION: name},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return layout
