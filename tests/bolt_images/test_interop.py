"""Images made by umoci and skopeo import; skopeo and umoci read our store.

`umoci unpack` and `repack` need root (or --rootless, which changes what they write)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from bolt.errors import InvalidInput
from bolt.images.errors import CorruptBlob
from bolt.images.store import ImageStore
from tests.bolt_images.image_helpers import busybox_rootfs, needs_root, run

pytestmark = [pytest.mark.root, needs_root]


@pytest.fixture
def umoci_layout(tmp_path: Path) -> Path:
    """A two-layer busybox image made by umoci; the upper layer deletes /etc/passwd and
    replaces /opt/app/old with /opt/app/new (umoci writes .wh. whiteouts for that)."""
    layout = tmp_path / "umoci-img"
    bundle = tmp_path / "bundle"
    run("umoci", "init", "--layout", layout)
    run("umoci", "new", "--image", f"{layout}:t")
    run("umoci", "unpack", "--image", f"{layout}:t", bundle)
    rootfs = bundle / "rootfs"
    busybox_rootfs(tmp_path / "bb")
    shutil.copytree(tmp_path / "bb", rootfs, symlinks=True, dirs_exist_ok=True)
    (rootfs / "opt/app").mkdir(parents=True)
    (rootfs / "opt/app/old").write_text("old\n")
    run("umoci", "repack", "--refresh-bundle", "--image", f"{layout}:t", bundle)
    (rootfs / "etc/passwd").unlink()
    (rootfs / "opt/app/old").unlink()
    (rootfs / "opt/app/new").write_text("new\n")
    run("umoci", "repack", "--image", f"{layout}:t", bundle)
    run("umoci", "config", "--image", f"{layout}:t", "--config.cmd", "/bin/sh")
    return layout


def test_umoci_image_imports_under_its_index_name(store: ImageStore, umoci_layout: Path) -> None:
    record = store.import_path(umoci_layout)
    assert record.ref == "umoci-img:t"
    assert record.config["Cmd"] == ["/bin/sh"]
    assert len(record.layers) == 2
    lower, upper = store.layer_dirs(record)
    assert os.readlink(lower / "bin/sh") == "/bin/busybox"
    assert (lower / "etc/passwd").exists()
    assert (upper / "opt/app/new").read_text() == "new\n"
    assert not (upper / "etc/.wh.passwd").exists()  # converted, never kept as a file


def test_layout_image_can_be_picked_and_renamed(store: ImageStore, umoci_layout: Path) -> None:
    run("umoci", "tag", "--image", f"{umoci_layout}:t", "other")
    with pytest.raises(InvalidInput, match="holds 2 images"):
        store.import_path(umoci_layout)
    record = store.import_path(Path(f"{umoci_layout}:other"), "renamed:2")
    assert record.ref == "renamed:2"
    assert store.import_path(Path(f"{umoci_layout}:t")).ref == "umoci-img:t"
    with pytest.raises(InvalidInput, match="no image named"):
        store.import_path(Path(f"{umoci_layout}:missing"))


def test_skopeo_dir_copy_imports(store: ImageStore, umoci_layout: Path, tmp_path: Path) -> None:
    run("skopeo", "copy", f"oci:{umoci_layout}:t", f"dir:{tmp_path / 'dir'}")
    run("skopeo", "copy", f"dir:{tmp_path / 'dir'}", f"oci:{tmp_path / 'copied'}:v9")
    record = store.import_path(tmp_path / "copied")
    assert record.ref == "copied:v9"
    assert len(store.layer_dirs(record)) == 2


def test_shared_layers_of_two_images_are_stored_once(store: ImageStore, umoci_layout: Path) -> None:
    a = store.import_path(umoci_layout, "a:1")
    b = store.import_path(umoci_layout, "b:1")
    assert a.layers == b.layers
    # two layers, one config, one manifest: the second import added no blob
    assert len(list(store.layout.blobs.iterdir())) == 4


def test_a_tampered_layout_blob_is_rejected_and_nothing_stored(
    store: ImageStore, umoci_layout: Path
) -> None:
    manifest_digest = json.loads((umoci_layout / "index.json").read_text())["manifests"][0]
    manifest = json.loads(
        (umoci_layout / "blobs/sha256" / manifest_digest["digest"][7:]).read_text()
    )
    layer = umoci_layout / "blobs/sha256" / manifest["layers"][1]["digest"][7:]
    layer.write_bytes(layer.read_bytes()[:-100] + b"\0" * 100)
    with pytest.raises(CorruptBlob, match="does not match"):
        store.import_path(umoci_layout)
    assert store.list() == []
    assert list(store.layout.blobs.iterdir()) == []


def test_skopeo_and_umoci_read_our_store(store: ImageStore, tmp_path: Path) -> None:
    record = store.import_path(busybox_rootfs(tmp_path / "rootfs"), "busybox:1.36")
    images = store.layout.path
    info = json.loads(run("skopeo", "inspect", f"oci:{images}:busybox:1.36").stdout)
    assert info["Digest"] == record.manifest_digest
    assert info["Layers"] == list(record.layers)
    bundle = tmp_path / "bundle"
    run("umoci", "unpack", "--image", f"{images}:busybox:1.36", bundle)
    assert os.readlink(bundle / "rootfs/bin/sh") == "/bin/busybox"
    assert (bundle / "rootfs/bin/busybox").read_bytes() == (
        tmp_path / "rootfs/bin/busybox"
    ).read_bytes()


def test_oci_archive_from_skopeo_imports(
    store: ImageStore, umoci_layout: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "app.tar"
    run("skopeo", "copy", f"oci:{umoci_layout}:t", f"oci-archive:{archive}:v2")
    record = store.import_path(archive)
    assert record.ref == "app:v2"
    assert store.import_path(Path(f"{archive}:v2"), "again:1").layers == record.layers
    assert [p.name for p in (store.layout.path / ".staging").iterdir()] == []
    # the archive itself is not kept as a blob: only the image's own blobs are
    assert len(list(store.layout.blobs.iterdir())) == 2 + 2  # layers, config, manifest
    _, upper = store.layer_dirs(record)
    assert (upper / "opt/app/new").read_text() == "new\n"
