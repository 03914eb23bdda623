"""The image store: importing, naming, sharing blobs, the layer cache, removal and pruning."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from bolt.errors import ExitCode, InvalidInput, NotFound
from bolt.images import layercache, unpack
from bolt.images.errors import CorruptBlob, ImageInUse, UnsafeLayer
from bolt.images.store import ImageStore
from tests.bolt_images.image_helpers import (
    Entry,
    busybox_rootfs,
    root_only,
    tar_bytes,
    write_layer,
)

FILES = [Entry("etc/os-release", data=b"ID=test\n"), Entry("bin/sh", "symlink", target="/bin/x")]


def _blobs(store: ImageStore) -> set[str]:
    return {p.name for p in store.layout.blobs.iterdir()} if store.layout.blobs.exists() else set()


def _state(store: ImageStore) -> tuple[set[str], list[object]]:
    index = store.layout.read_index()["manifests"]
    return _blobs(store), index


def test_busybox_rootfs_dir_imports_and_its_layer_unpacks(
    store: ImageStore, tmp_path: Path
) -> None:
    rootfs = busybox_rootfs(tmp_path / "rootfs")
    record = store.import_path(rootfs, "busybox", config={"Cmd": ["/bin/sh"]})
    assert record.ref == "busybox:latest"
    assert record.config["Cmd"] == ["/bin/sh"]
    assert record.config["Env"][0].startswith("PATH=")
    assert len(record.layers) == 1 and record.id.startswith("sha256:")
    [layer] = store.layer_dirs(record)
    assert os.readlink(layer / "bin/sh") == "/bin/busybox"
    assert (layer / "bin/busybox").read_bytes() == (rootfs / "bin/busybox").read_bytes()
    assert oct((layer / "tmp").stat().st_mode & 0o7777) == oct(0o1777)
    assert oct(layer.stat().st_mode & 0o777) == oct(0o755)


@root_only
def test_busybox_layer_runs_in_a_chroot(store: ImageStore, tmp_path: Path) -> None:
    record = store.import_path(busybox_rootfs(tmp_path / "rootfs"), "busybox:1")
    [layer] = store.layer_dirs(record)
    out = subprocess.run(
        ["chroot", str(layer), "/bin/sh", "-c", "echo hello from $(cat /etc/hostname)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == "hello from busybox\n"


@pytest.mark.parametrize("compress", ["none", "gzip", "xz", "bzip2"])
def test_rootfs_tarball_imports_in_every_compression(
    store: ImageStore, tmp_path: Path, compress: str
) -> None:
    tarball = write_layer(tmp_path / "rootfs.tar", FILES, compress)
    record = store.import_path(tarball, "t:" + compress)
    [layer] = store.layer_dirs(record)
    assert (layer / "etc/os-release").read_bytes() == b"ID=test\n"
    plain = write_layer(tmp_path / "plain.tar", FILES, "none").read_bytes()
    assert record.diff_ids == ("sha256:" + hashlib.sha256(plain).hexdigest(),)


def test_shared_blobs_and_layers_are_stored_once(store: ImageStore, tmp_path: Path) -> None:
    tarball = write_layer(tmp_path / "rootfs.tar.gz", FILES)
    a = store.import_path(tarball, "a:1")
    b = store.import_path(tarball, "b:1")
    assert a.layers == b.layers
    layer_blob = a.layers[0].removeprefix("sha256:")
    assert layer_blob in _blobs(store)
    # one layer, two configs (different created times or not), two manifests at most
    assert len(_blobs(store)) <= 5
    assert store.layer_dirs(a) == store.layer_dirs(b)
    assert len(list((store.root / "layers").glob("[0-9a-f]*"))) == 1


def test_layers_are_unpacked_once_and_reused(
    store: ImageStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = store.import_path(write_layer(tmp_path / "r.tar", FILES), "once")
    calls = []
    real = unpack.unpack_layer

    def counting(*args: object, **kw: object) -> None:
        calls.append(args)
        real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(unpack, "unpack_layer", counting)
    first = store.layer_dirs(record)
    inode = (first[0] / "etc/os-release").stat().st_ino
    second = store.layer_dirs(record)
    assert first == second
    assert (second[0] / "etc/os-release").stat().st_ino == inode
    assert len(calls) == 1


def test_a_crash_mid_unpack_leaves_nothing_visible(
    store: ImageStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = store.import_path(write_layer(tmp_path / "r.tar", FILES), "crash")

    def dies_halfway(source: Path, dest: Path, **kw: object) -> None:
        (dest / "half-written").write_text("partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(unpack, "unpack_layer", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        store.layer_dirs(record)
    assert list((store.root / "layers").glob("[0-9a-f]*")) == []
    assert list((store.root / "layers").glob(".tmp-*")) == []
    monkeypatch.undo()
    [layer] = store.layer_dirs(record)
    assert not (layer / "half-written").exists()
    assert (layer / "etc/os-release").exists()


def test_a_damaged_stored_blob_is_rejected_at_unpack(store: ImageStore, tmp_path: Path) -> None:
    record = store.import_path(write_layer(tmp_path / "r.tar.gz", FILES), "damaged")
    blob = store.layout.blob_path(record.layers[0])
    data = bytearray(blob.read_bytes())
    data[-12] ^= 0xFF  # inside the gzip trailer: still gunzips partly, digest differs
    blob.write_bytes(bytes(data))
    with pytest.raises(CorruptBlob):
        store.layer_dirs(record)
    assert list((store.root / "layers").glob("[0-9a-f]*")) == []


@pytest.mark.parametrize(
    "damage",
    ["truncated-gzip", "not-a-tar", "hostile-member"],
)
def test_a_bad_tarball_is_rejected_and_nothing_is_stored(
    store: ImageStore, tmp_path: Path, damage: str
) -> None:
    store.import_path(write_layer(tmp_path / "ok.tar", FILES), "existing")
    before = _state(store)
    bad = tmp_path / "bad.tar.gz"
    if damage == "truncated-gzip":
        data = gzip.compress(tar_bytes([Entry("big", data=os.urandom(100_000))]))
        bad.write_bytes(data[:-5000])
        error: type[Exception] = CorruptBlob
    elif damage == "not-a-tar":
        bad.write_bytes(gzip.compress(b"no tar here" * 100))
        error = CorruptBlob
    else:
        write_layer(bad, [Entry("ok", data=b""), Entry("../../etc/passwd", data=b"x")])
        error = UnsafeLayer
    with pytest.raises(error) as err:
        store.import_path(bad, "bad")
    assert err.value.exit_code == ExitCode.INVALID_INPUT  # type: ignore[attr-defined]
    assert _state(store) == before
    assert list((store.layout.path / ".staging").iterdir()) == []


def test_names_and_id_prefixes_resolve(store: ImageStore, tmp_path: Path) -> None:
    record = store.import_path(write_layer(tmp_path / "r.tar", FILES), "example.com/team/app:v1")
    assert store.resolve("example.com/team/app:v1") == record
    assert store.resolve(record.id) == record
    assert store.resolve(record.short_id[:6]) == record
    assert store.resolve("sha256:" + record.short_id) == record
    assert store.resolve(record.manifest_digest) == record
    with pytest.raises(NotFound) as err:
        store.resolve("example.com/team/app")  # means :latest
    assert err.value.exit_code == ExitCode.INVALID_INPUT
    assert err.value.hint and "bolt images" in err.value.hint


def test_invalid_names_are_refused_before_anything_is_stored(
    store: ImageStore, tmp_path: Path
) -> None:
    tarball = write_layer(tmp_path / "r.tar", FILES)
    for bad in ["UPPER:case", "a b", "name@sha256:00", "x:" + "t" * 200, "-lead"]:
        with pytest.raises(InvalidInput, match="invalid image reference"):
            store.import_path(tarball, bad)
    assert store.list() == []


def test_reimport_under_the_same_name_replaces_the_image(store: ImageStore, tmp_path: Path) -> None:
    store.import_path(write_layer(tmp_path / "1.tar", FILES), "app:1")
    second = store.import_path(write_layer(tmp_path / "2.tar", [Entry("v2")]), "app:1")
    assert [r.id for r in store.list()] == [second.id]


def test_remove_untags_and_deletes_what_no_image_needs(store: ImageStore, tmp_path: Path) -> None:
    tarball = write_layer(tmp_path / "r.tar.gz", FILES)
    a = store.import_path(tarball, "a")
    store.import_path(tarball, "b")
    [layer] = store.layer_dirs(a)
    assert store.remove("a") == ["a:latest"]
    assert layer.is_dir() and a.layers[0].removeprefix("sha256:") in _blobs(store)
    assert [r.ref for r in store.list()] == ["b:latest"]
    store.remove("b:latest")
    assert store.list() == []
    assert _blobs(store) == set()
    assert not layer.exists()


def test_remove_by_id_with_several_names_needs_force(store: ImageStore, tmp_path: Path) -> None:
    tarball = write_layer(tmp_path / "r.tar.gz", FILES)
    store.import_path(tarball, "a")
    rec = store.resolve("a")
    store.layout.write_index(
        {
            **store.layout.read_index(),
            "manifests": store.layout.read_index()["manifests"]
            + [
                {
                    **store.layout.read_index()["manifests"][0],
                    "annotations": {"org.opencontainers.image.ref.name": "alias:1"},
                }
            ],
        }
    )
    with pytest.raises(InvalidInput, match="several names"):
        store.remove(rec.short_id)
    assert sorted(store.remove(rec.short_id, force=True)) == ["a:latest", "alias:1"]
    assert store.list() == []


def test_an_image_in_use_is_kept_unless_forced(store: ImageStore, tmp_path: Path) -> None:
    record = store.import_path(write_layer(tmp_path / "r.tar.gz", FILES), "busy")
    [layer] = store.layer_dirs(record)
    asked: list[str] = []

    def in_use(image_id: str) -> bool:
        asked.append(image_id)
        return True

    before = _state(store)
    with pytest.raises(ImageInUse) as err:
        store.remove("busy", in_use=in_use)
    assert err.value.exit_code == ExitCode.INVALID_INPUT
    assert asked == [record.id]
    assert _state(store) == before
    store.remove("busy", force=True, in_use=in_use)
    assert store.list() == []
    assert layer.is_dir()  # a container still has it as a lower dir
    assert store.prune_layers(keep={record.diff_ids[0]}) == []
    assert layer.is_dir()
    assert store.prune_layers() == [record.diff_ids[0]]
    assert not layer.exists()


def test_prune_removes_orphans_and_crash_leftovers(store: ImageStore, tmp_path: Path) -> None:
    keep = store.import_path(write_layer(tmp_path / "k.tar", FILES), "keep")
    store.layer_dirs(keep)
    orphan = store.layout.blobs / ("ab" * 32)
    orphan.write_bytes(b"orphan")
    leftover = store.root / "layers" / (".tmp-" + "cd" * 32 + "-xyz")
    (leftover / "etc").mkdir(parents=True)
    removed = store.prune_layers()
    assert removed == ["sha256:" + "ab" * 32]
    assert not orphan.exists() and not leftover.exists()
    assert store.layer_dirs(keep)[0].is_dir()


def test_an_empty_store_lists_nothing_and_writes_nothing(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "fresh")
    assert store.list() == []
    with pytest.raises(NotFound):
        store.resolve("anything")
    assert not (tmp_path / "fresh").exists()


def test_the_index_is_an_oci_image_index(store: ImageStore, tmp_path: Path) -> None:
    record = store.import_path(write_layer(tmp_path / "r.tar", FILES), "idx:1")
    index = json.loads((store.layout.path / "index.json").read_text())
    assert index["schemaVersion"] == 2
    [entry] = index["manifests"]
    assert entry["digest"] == record.manifest_digest
    assert entry["annotations"] == {"org.opencontainers.image.ref.name": "idx:1"}
    layout = json.loads((store.layout.path / "oci-layout").read_text())
    assert layout == {"imageLayoutVersion": "1.0.0"}
    assert sorted(_blobs(store)) == sorted(
        d.removeprefix("sha256:") for d in (record.manifest_digest, record.id, *record.layers)
    )


def test_overlay_lower_dirs_are_found_in_mountinfo(tmp_path: Path) -> None:
    a, b = "a" * 64, "b" * 64
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 8:1 / / rw - ext4 /dev/vda rw\n"
        f"90 22 0:50 / /c/rootfs rw - overlay overlay rw,lowerdir=/r/layers/{a}:{b},"
        "upperdir=/c/upper,workdir=/c/work\n"
    )
    assert layercache.mounted_layer_ids(info) == {a, b}


def test_a_refname_is_only_for_layouts(store: ImageStore, tmp_path: Path) -> None:
    tarball = write_layer(tmp_path / "r.tar", FILES)
    with pytest.raises(InvalidInput, match="not an OCI image layout"):
        store.import_path(Path(f"{tarball}:latest"), "x")
    assert store.list() == []


def test_concurrent_first_uses_unpack_a_layer_once(
    store: ImageStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    record = store.import_path(write_layer(tmp_path / "r.tar", FILES), "race")
    calls = []
    real = unpack.unpack_layer

    def slow(*args: object, **kw: object) -> None:
        calls.append(args)
        time.sleep(0.2)
        real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(unpack, "unpack_layer", slow)
    results: list[list[Path]] = []
    threads = [
        threading.Thread(target=lambda: results.append(store.layer_dirs(record))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len(results) == 4 and all(r == results[0] for r in results)


def test_concurrent_imports_all_land_in_the_index(store: ImageStore, tmp_path: Path) -> None:
    import threading

    tarballs = [write_layer(tmp_path / f"{i}.tar", [Entry(f"f{i}")]) for i in range(4)]
    threads = [
        threading.Thread(target=store.import_path, args=(t, f"img:{i}"))
        for i, t in enumerate(tarballs)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.ref for r in store.list()] == [f"img:{i}" for i in range(4)]
    assert len({r for r in store.list()}) == 4  # records are hashable


def test_a_layer_removed_meanwhile_is_a_clear_error(store: ImageStore, tmp_path: Path) -> None:
    tarball = write_layer(tmp_path / "r.tar", FILES)
    record = store.import_path(tarball, "gone")
    store.remove("gone")
    with pytest.raises(NotFound, match="no longer in the image store"):
        store.layer_dirs(record)
