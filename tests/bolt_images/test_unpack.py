"""Applying single layers: what is kept, how whiteouts are converted, what is rejected."""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
from pathlib import Path

import pytest

from bolt.errors import ExitCode, Unsupported
from bolt.images.errors import CorruptBlob
from bolt.images.unpack import OPAQUE_XATTR, unpack_layer
from tests.bolt_images.image_helpers import Entry, root_only, tar_bytes, write_layer

AS_ROOT = os.geteuid() == 0

ROOTFS = [
    Entry("bin", "dir", mode=0o755),
    Entry("bin/busybox", data=b"\x7fELF-ish", mode=0o755),
    Entry("bin/sh", "symlink", target="/bin/busybox"),
    Entry("bin/ls", "symlink", target="busybox"),
    Entry("bin/su", data=b"su", mode=0o4755),
    Entry("bin/su-again", "hardlink", target="bin/su"),
    Entry("etc", "dir", mode=0o750, mtime=1_500_000_000),
    Entry("etc/owned", data=b"x", mode=0o640, uid=1000, gid=1001),
    Entry("etc/tagged", data=b"t", xattrs={"user.bolt": b"yes"}),
    Entry("run/fifo", "fifo", mode=0o600),
    Entry("/abs/file", data=b"absolute"),
]


def test_files_links_modes_and_times_are_kept(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    unpack_layer(write_layer(tmp_path / "l.tar.gz", ROOTFS), dest)

    assert os.readlink(dest / "bin/sh") == "/bin/busybox"  # kept verbatim, not resolved
    assert os.readlink(dest / "bin/ls") == "busybox"
    su = (dest / "bin/su").stat()
    assert stat.S_IMODE(su.st_mode) == 0o4755
    assert (dest / "bin/su-again").stat().st_ino == su.st_ino
    assert su.st_nlink == 2
    etc = (dest / "etc").stat()
    assert stat.S_IMODE(etc.st_mode) == 0o750
    assert etc.st_mtime == 1_500_000_000  # set after its children were written
    assert (dest / "bin/busybox").stat().st_mtime == 1_600_000_000
    assert os.getxattr(dest / "etc/tagged", "user.bolt") == b"yes"
    assert stat.S_ISFIFO((dest / "run/fifo").lstat().st_mode)
    assert (dest / "abs/file").read_bytes() == b"absolute"
    if AS_ROOT:
        owned = (dest / "etc/owned").stat()
        assert (owned.st_uid, owned.st_gid) == (1000, 1001)


@pytest.mark.parametrize("compress", ["none", "gzip", "xz", "bzip2"])
def test_every_supported_compression_gives_the_same_tree(tmp_path: Path, compress: str) -> None:
    entries = [Entry("a/b/c", data=b"same"), Entry("a/link", "symlink", target="b/c")]
    dest = tmp_path / "dest"
    dest.mkdir()
    unpack_layer(write_layer(tmp_path / "layer", entries, compress), dest)
    assert (dest / "a/b/c").read_bytes() == b"same"
    assert (dest / "a/link").read_bytes() == b"same"


def test_zstd_layers_need_the_zstandard_module(tmp_path: Path) -> None:
    layer = write_layer(tmp_path / "layer", [Entry("z", data=b"zstd")], "zstd")
    dest = tmp_path / "dest"
    dest.mkdir()
    try:
        import zstandard  # noqa: F401
    except ImportError:
        with pytest.raises(Unsupported, match="zstandard"):
            unpack_layer(layer, dest)
    else:
        unpack_layer(layer, dest)
        assert (dest / "z").read_bytes() == b"zstd"


@root_only
def test_device_nodes_are_created_as_root(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    entries = [Entry("dev/null", "chr", mode=0o666, dev=(1, 3))]
    unpack_layer(write_layer(tmp_path / "l", entries), dest)
    st = (dest / "dev/null").lstat()
    assert stat.S_ISCHR(st.st_mode)
    assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 3)
    assert stat.S_IMODE(st.st_mode) == 0o666


def test_flatten_whiteout_deletes_the_lower_file(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    lower = [Entry("etc/keep", data=b"k"), Entry("etc/gone", data=b"g"), Entry("var/d/x", data=b"")]
    upper = [Entry("etc/.wh.gone", data=b""), Entry("var/.wh.d", data=b"")]
    unpack_layer(write_layer(tmp_path / "1", lower), dest, mode="flatten")
    unpack_layer(write_layer(tmp_path / "2", upper), dest, mode="flatten")
    assert sorted(p.name for p in (dest / "etc").iterdir()) == ["keep"]
    assert list((dest / "var").iterdir()) == []


def test_flatten_opaque_dir_keeps_only_its_own_layer(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    lower = [Entry("opt/app/old1", data=b"1"), Entry("opt/app/old2", data=b"2")]
    upper = [
        Entry("opt/app", "dir", mode=0o755),
        Entry("opt/app/new", data=b"n"),
        Entry("opt/app/.wh..wh..opq", data=b""),
    ]
    unpack_layer(write_layer(tmp_path / "1", lower), dest, mode="flatten")
    unpack_layer(write_layer(tmp_path / "2", upper), dest, mode="flatten")
    assert sorted(p.name for p in (dest / "opt/app").iterdir()) == ["new"]


@root_only
def test_overlay_mode_converts_whiteouts_to_overlayfs_form(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    upper = [
        Entry("etc/.wh.gone", data=b""),
        Entry("opt/app", "dir", mode=0o755),
        Entry("opt/app/.wh..wh..opq", data=b""),
    ]
    unpack_layer(write_layer(tmp_path / "2", upper), dest, mode="overlay")
    st = (dest / "etc/gone").lstat()
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert not (dest / "etc/.wh.gone").exists()
    assert os.getxattr(dest / "opt/app", OPAQUE_XATTR) == b"y"
    assert not (dest / "opt/app/.wh..wh..opq").exists()


def test_truncated_gzip_is_rejected(tmp_path: Path) -> None:
    data = gzip.compress(tar_bytes([Entry("f", data=os.urandom(200_000))]))
    layer = tmp_path / "layer"
    layer.write_bytes(data[: len(data) // 2])
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(CorruptBlob, match="corrupt or truncated gzip") as err:
        unpack_layer(layer, dest)
    assert err.value.exit_code == ExitCode.INVALID_INPUT


def test_garbage_is_not_a_tar(tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    layer.write_bytes(gzip.compress(b"this is not a tar archive" * 40))
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(CorruptBlob, match="not a valid tar"):
        unpack_layer(layer, dest)


def test_digest_mismatch_is_rejected(tmp_path: Path) -> None:
    layer = write_layer(tmp_path / "layer", [Entry("f", data=b"x")])
    right = "sha256:" + hashlib.sha256(layer.read_bytes()).hexdigest()
    wrong = "sha256:" + "0" * 64
    dest = tmp_path / "dest"
    dest.mkdir()
    unpack_layer(layer, dest, expected_digest=right)
    with pytest.raises(CorruptBlob, match="digest mismatch"):
        unpack_layer(layer, dest, expected_digest=wrong)
    with pytest.raises(CorruptBlob, match="diff id"):
        unpack_layer(layer, dest, expected_diff_id=wrong)


def test_a_stream_is_accepted_as_well_as_a_path(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with open(write_layer(tmp_path / "l", [Entry("s", data=b"stream")]), "rb") as fh:
        unpack_layer(fh, dest)
    assert (dest / "s").read_bytes() == b"stream"


def test_a_later_entry_replaces_an_earlier_one(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    entries = [
        Entry("x", "dir"),
        Entry("x/inner", data=b"i"),
        Entry("x", data=b"now a file"),
        Entry("y", data=b"file"),
        Entry("y", "dir", mode=0o700),
    ]
    unpack_layer(write_layer(tmp_path / "l", entries), dest, mode="flatten")
    assert (dest / "x").read_bytes() == b"now a file"
    assert (dest / "y").is_dir()
    assert stat.S_IMODE((dest / "y").stat().st_mode) == 0o700
