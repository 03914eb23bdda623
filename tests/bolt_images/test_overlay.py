"""Cached layers used as overlayfs lower dirs: whiteouts and opaque dirs hide what they
should (mounted for real, as root)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bolt.images.store import ImageStore
from tests.bolt_images.image_helpers import Entry, root_only, run, write_layer


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[list[Path]]:
    """Collects overlay mount points and unmounts them afterwards."""
    points: list[Path] = []
    yield points
    for point in points:
        subprocess.run(["umount", str(point)], check=False)


def _overlay(tmp_path: Path, lowers: list[Path], mounted: list[Path]) -> Path:
    merged, upper, work = (tmp_path / n for n in ("merged", "upper", "work"))
    for d in (merged, upper, work):
        d.mkdir()
    lowerdir = ":".join(str(p) for p in reversed(lowers))  # overlayfs wants the top first
    run(
        "mount", "-t", "overlay", "overlay", "-o",
        f"lowerdir={lowerdir},upperdir={upper},workdir={work}", merged,
    )  # fmt: skip
    mounted.append(merged)
    return merged


@root_only
def test_upper_layer_deletions_hide_lower_files(
    store: ImageStore, tmp_path: Path, mounted: list[Path]
) -> None:
    lower = write_layer(
        tmp_path / "lower.tar",
        [
            Entry("etc/keep", data=b"keep"),
            Entry("etc/gone", data=b"gone"),
            Entry("opt/app/old1", data=b"1"),
            Entry("opt/app/old2", data=b"2"),
            Entry("var/tree/a/b", data=b"b"),
        ],
        compress="none",
    )
    upper = write_layer(
        tmp_path / "upper.tar",
        [
            Entry("etc/.wh.gone", data=b""),
            Entry("opt/app", "dir", mode=0o755),
            Entry("opt/app/.wh..wh..opq", data=b""),
            Entry("opt/app/new", data=b"new"),
            Entry("var/.wh.tree", data=b""),
        ],
        compress="none",  # umoci raw add-layer compresses it
    )
    layout = _two_layer_layout(store, tmp_path, lower, upper)
    record = store.import_path(layout, "two:layers")
    merged = _overlay(tmp_path, store.layer_dirs(record), mounted)
    assert sorted(p.name for p in (merged / "etc").iterdir()) == ["keep"]
    assert sorted(p.name for p in (merged / "opt/app").iterdir()) == ["new"]
    assert list((merged / "var").iterdir()) == []
    # and a file can be written through the mount without touching the cached layers
    (merged / "etc/keep").write_text("changed")
    assert (store.layer_dirs(record)[0] / "etc/keep").read_bytes() == b"keep"


def _two_layer_layout(store: ImageStore, tmp_path: Path, lower: Path, upper: Path) -> Path:
    """An OCI layout with the two layers, made with umoci's raw layer commands."""
    layout = tmp_path / "layout"
    run("umoci", "init", "--layout", layout)
    run("umoci", "new", "--image", f"{layout}:two")
    for layer in (lower, upper):
        run("umoci", "raw", "add-layer", "--image", f"{layout}:two", layer)
    return layout


@root_only
def test_layers_under_a_mounted_overlay_survive_prune(
    store: ImageStore, tmp_path: Path, mounted: list[Path]
) -> None:
    layer = write_layer(tmp_path / "l.tar", [Entry("etc/x", data=b"x")], compress="none")
    record = store.import_path(layer, "mounted:1")
    lowers = store.layer_dirs(record)
    _overlay(tmp_path, lowers, mounted)
    store.remove("mounted:1", force=True)  # nothing told the store a container uses it
    assert store.prune_layers() == []
    assert (lowers[0] / "etc/x").read_bytes() == b"x"


def test_a_stack_deeper_than_overlayfs_allows_is_refused_clearly(tmp_path: Path) -> None:
    from bolt.errors import BoltError
    from bolt.runtime.rootfs import mount_overlay

    lowers = [tmp_path / "layers" / f"{i:064x}" for i in range(501)]
    with pytest.raises(
        BoltError, match="501 layers cannot be mounted: overlayfs stacks at most 500"
    ):
        mount_overlay(lowers, tmp_path / "c", tmp_path / "c" / "rootfs")
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    assert not any(line.split()[4].startswith(str(tmp_path)) for line in mounts)
