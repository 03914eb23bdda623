"""A hostile corpus: layers that try to write outside the directory they are unpacked into.

Each is either refused or contained (written inside the target); in every case the sentinel
directory beside the target is byte-for-byte unchanged and no file appears outside.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from bolt.errors import ExitCode, InvalidInput
from bolt.images.errors import UnsafeLayer
from bolt.images.unpack import unpack_layer
from tests.bolt_images.image_helpers import Entry, snapshot, write_layer

MODES = ["overlay", "flatten"]


@pytest.fixture
def arena(tmp_path: Path) -> tuple[Path, Path]:
    """``(sentinel, dest)``: a populated directory an attacker would like to change, and
    the empty target beside it."""
    sentinel = tmp_path / "sentinel"
    (sentinel / "sub").mkdir(parents=True)
    (sentinel / "file").write_text("original")
    (sentinel / "sub" / "deep").write_text("deep original")
    dest = tmp_path / "dest"
    dest.mkdir()
    return sentinel, dest


def _unpack(tmp_path: Path, dest: Path, entries: list[Entry], mode: str) -> None:
    unpack_layer(write_layer(tmp_path / "hostile.tar.gz", entries), dest, mode=mode)  # type: ignore[arg-type]


def _outside(tmp_path: Path, dest: Path) -> set[str]:
    """Files under tmp_path that are not in dest, the sentinel or the layer itself."""
    return {
        p
        for p in snapshot(tmp_path)
        if not p.startswith(("dest", "sentinel")) and p != "hostile.tar.gz"
    }


REFUSED = {
    "dotdot": [Entry("../sentinel/file", data=b"pwned")],
    "dotdot-inside": [Entry("a/../../sentinel/file", data=b"pwned")],
    "hardlink-dotdot": [Entry("link", "hardlink", target="../sentinel/file")],
    "hardlink-absolute": [Entry("link", "hardlink", target="{sentinel}/file")],
    "hardlink-through-symlink": [
        Entry("evil", "symlink", target="{sentinel}"),
        Entry("link", "hardlink", target="evil/file"),
    ],
    "hardlink-to-missing": [Entry("link", "hardlink", target="nothing/here")],
    "symlink-loop": [
        Entry("a", "symlink", target="b"),
        Entry("b", "symlink", target="a"),
        Entry("a/x", data=b"pwned"),
    ],
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_hostile_layer_is_refused_and_nothing_outside_changes(
    tmp_path: Path, arena: tuple[Path, Path], case: str, mode: str
) -> None:
    sentinel, dest = arena
    before = snapshot(sentinel)
    entries = [replace(e, target=e.target.format(sentinel=sentinel)) for e in REFUSED[case]]
    with pytest.raises(InvalidInput) as err:
        _unpack(tmp_path, dest, entries, mode)
    assert err.value.exit_code == ExitCode.INVALID_INPUT
    assert snapshot(sentinel) == before
    assert _outside(tmp_path, dest) == set()


def test_dotdot_names_the_member_in_the_error(tmp_path: Path, arena: tuple[Path, Path]) -> None:
    _, dest = arena
    with pytest.raises(UnsafeLayer, match=r"'\.\./sentinel/file'"):
        _unpack(tmp_path, dest, [Entry("../sentinel/file", data=b"pwned")], "overlay")


# (entries, where the payload must land inside dest)
CONTAINED = {
    "absolute-path": ([Entry("{sentinel}/file", data=b"pwned")], "{sentinel}/file"),
    "absolute-symlink-then-write-through": (
        [Entry("evil", "symlink", target="{sentinel}"), Entry("evil/file", data=b"pwned")],
        "{sentinel}/file",
    ),
    "relative-symlink-then-write-through": (
        [
            Entry("a/b", "dir"),
            Entry("a/b/evil", "symlink", target="../../../../../../sentinel"),
            Entry("a/b/evil/file", data=b"pwned"),
        ],
        "sentinel/file",
    ),
    "symlink-chain": (
        [
            Entry("one", "symlink", target="two/sub"),
            Entry("two", "symlink", target="{sentinel}"),
            Entry("one/deep", data=b"pwned"),
        ],
        "{sentinel}/sub/deep",
    ),
    "symlink-then-overwrite-the-link-itself": (
        [Entry("evil", "symlink", target="{sentinel}/file"), Entry("evil", data=b"pwned")],
        "evil",
    ),
    "symlink-dir-then-mkdir-below": (
        [
            Entry("evil", "symlink", target="{sentinel}"),
            Entry("evil/newdir", "dir", mode=0o777),
            Entry("evil/newdir/file", data=b"pwned"),
        ],
        "{sentinel}/newdir/file",
    ),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", sorted(CONTAINED))
def test_hostile_layer_is_contained_inside_the_target(
    tmp_path: Path, arena: tuple[Path, Path], case: str, mode: str
) -> None:
    sentinel, dest = arena
    before = snapshot(sentinel)
    raw, landing = CONTAINED[case]
    entries = [
        replace(e, name=e.name.format(sentinel=sentinel), target=e.target.format(sentinel=sentinel))
        for e in raw
    ]
    _unpack(tmp_path, dest, entries, mode)
    assert snapshot(sentinel) == before
    assert _outside(tmp_path, dest) == set()
    landed = dest / landing.format(sentinel=sentinel).lstrip("/")
    assert landed.read_bytes() == b"pwned"
    assert not landed.is_symlink()
    assert os.path.realpath(landed).startswith(str(dest) + "/")


def test_legitimate_absolute_symlinks_stay_as_they_are(
    tmp_path: Path, arena: tuple[Path, Path]
) -> None:
    sentinel, dest = arena
    entries = [
        Entry("bin/busybox", data=b"bb", mode=0o755),
        Entry("bin/sh", "symlink", target="/bin/busybox"),
        Entry("etc/escape", "symlink", target=f"{sentinel}/file"),
    ]
    _unpack(tmp_path, dest, entries, "overlay")
    assert os.readlink(dest / "bin/sh") == "/bin/busybox"
    assert os.readlink(dest / "etc/escape") == f"{sentinel}/file"
    assert (sentinel / "file").read_text() == "original"


HARDLINKS_OUT = {
    **{k: v for k, v in REFUSED.items() if k.startswith("hardlink")},
    # a file the layer does not hold (a lower layer's, at best): an overlay lower dir
    # holds its layer alone, so the link could never be made
    "hardlink-to-a-lower-layer": [Entry("etc/shadow-copy", "hardlink", target="etc/shadow")],
    "hardlink-to-a-directory": [Entry("d", "dir"), Entry("link", "hardlink", target="d")],
    "hardlink-before-its-target": [
        Entry("link", "hardlink", target="file"),
        Entry("file", data=b"late"),
    ],
}


@pytest.mark.parametrize("compress", ["gzip", "none"])
@pytest.mark.parametrize("case", sorted(HARDLINKS_OUT))
def test_import_refuses_a_hardlink_out_of_its_layer_and_stores_nothing(
    tmp_path: Path, arena: tuple[Path, Path], case: str, compress: str
) -> None:
    from bolt.images.store import ImageStore

    sentinel, _ = arena
    entries = [Entry("etc", "dir")] + [
        replace(e, target=e.target.format(sentinel=sentinel)) for e in HARDLINKS_OUT[case]
    ]
    tarball = write_layer(tmp_path / f"hostile.{compress}", entries, compress=compress)
    store = ImageStore(tmp_path / "root")
    expected = "climbs out of the root" if case == "hardlink-dotdot" else "not a file earlier"
    with pytest.raises(UnsafeLayer, match=expected) as err:
        store.import_path(tarball, "hostile:1")
    assert err.value.exit_code == ExitCode.INVALID_INPUT
    assert store.list() == []
    assert list(store.layout.blobs.iterdir()) == []
    assert list((store.layout.path / ".staging").iterdir()) == []


def test_hardlinks_within_their_layer_import_and_unpack(tmp_path: Path) -> None:
    from bolt.images.store import ImageStore

    entries = [
        Entry("bin", "dir"),
        Entry("./bin/tool", data=b"#!/bin/sh\n", mode=0o755),
        Entry("bin/alias", "hardlink", target="./bin/tool"),
        Entry("evil", "symlink", target="/elsewhere"),
        Entry("evil/file", data=b"contained"),  # written inside the target (see CONTAINED)
        Entry("again", "hardlink", target="evil/file"),
        Entry("alias-of-alias", "hardlink", target="bin/alias"),
    ]
    store = ImageStore(tmp_path / "root")
    record = store.import_path(write_layer(tmp_path / "ok.tar.gz", entries), "links:1")
    [layer] = store.layer_dirs(record)
    tool_stat = (layer / "bin/tool").stat()
    assert (layer / "bin/alias").stat().st_ino == tool_stat.st_ino
    assert (layer / "alias-of-alias").stat().st_ino == tool_stat.st_ino
    assert (layer / "again").read_bytes() == b"contained"
