"""bolt image export, save and load, checked with skopeo, umoci and podman."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bolt_registry.conftest import Bolt, make_bolt, run_tool
from tests.bolt_registry.images import umoci_image
from tests.conftest import tool

pytestmark = [pytest.mark.root]

CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
"""


@pytest.fixture
def podman(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """podman with a private store and configuration (the host's stay untouched)."""
    base = tmp_path / "podman"
    base.mkdir()
    (base / "containers.conf").write_text(CONTAINERS_CONF)
    monkeypatch.setenv("CONTAINERS_CONF", str(base / "containers.conf"))
    runroot = Path(tempfile.mkdtemp(prefix="bolt-podman-", dir="/tmp"))  # podman: < 50 chars
    cmd = ["podman", "--root", str(base / "root"), "--runroot", str(runroot)]
    cmd += ["--storage-driver", "vfs"]
    try:
        yield cmd
    finally:
        subprocess.run([*cmd, "rm", "-af"], capture_output=True)
        subprocess.run([*cmd, "system", "reset", "-f"], capture_output=True)
        shutil.rmtree(runroot, ignore_errors=True)


def test_export_is_accepted_by_skopeo_and_umoci(bolt: Bolt, tmp_path: Path) -> None:
    layout = tmp_path / "exported"
    assert bolt.ok("image", "export", "busybox", str(layout)).strip() == f"{layout}:latest"
    image = bolt.store.resolve("busybox")
    seen = json.loads(run_tool("skopeo", "inspect", f"oci:{layout}:latest").stdout)
    assert seen["Layers"] == list(image.layers)
    bundle = tmp_path / "bundle"
    run_tool("umoci", "unpack", "--image", f"{layout}:latest", bundle)
    assert (bundle / "rootfs/etc/marker").read_text() == "hello from busybox\n"
    assert os.readlink(bundle / "rootfs/bin/sh") == "/bin/busybox"
    process = json.loads((bundle / "config.json").read_text())["process"]
    assert process["args"] == ["cat", "/etc/marker"]


def test_export_adds_to_an_existing_layout_under_a_chosen_name(bolt: Bolt, tmp_path: Path) -> None:
    layout = tmp_path / "two"
    bolt.ok("image", "export", "busybox", f"{layout}:first")
    bolt.ok("tag", "busybox", "again:2")
    bolt.ok("image", "export", "again:2", str(layout))
    listed = run_tool("umoci", "ls", "--layout", layout).stdout.split()
    assert sorted(listed) == ["2", "first"]
    (tmp_path / "not-a-layout").mkdir()
    (tmp_path / "not-a-layout/file").write_text("x")
    proc = bolt("image", "export", "busybox", str(tmp_path / "not-a-layout"))
    assert proc.returncode == 2 and "is not an OCI image layout" in proc.stderr


def test_saved_archive_loads_and_runs_under_podman(
    bolt: Bolt, tmp_path: Path, podman: list[str]
) -> None:
    archive = tmp_path / "busybox.tar"
    bolt.ok("save", "busybox", "-o", str(archive))
    loaded = run_tool(*podman, "load", "-i", archive).stdout
    assert "busybox:latest" in loaded
    out = run_tool(*podman, "run", "--rm", "--network", "none", "busybox:latest").stdout
    assert out == "hello from busybox\n"


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_podman_saved_archive_loads_and_runs_under_bolt(
    bolt: Bolt, tmp_path: Path, podman: list[str], fmt: str
) -> None:
    layout = umoci_image(tmp_path / "src", f"saved by podman as {fmt}")
    run_tool(*podman, "pull", f"oci:{layout}:v1")
    (image_id,) = run_tool(*podman, "images", "-q").stdout.split()
    run_tool(*podman, "tag", image_id, "localhost/from-podman:1")
    archive = tmp_path / "podman.tar"
    run_tool(*podman, "save", "--format", fmt, "-o", archive, "localhost/from-podman:1")
    fresh = make_bolt(tmp_path / "fresh")
    out = fresh.ok("load", "-i", str(archive))
    ref = out.split()[2]
    assert ref.endswith("from-podman:1")
    assert fresh.ok("run", "--rm", ref) == f"saved by podman as {fmt}\n"


def test_save_and_load_round_trip_keeps_every_name(bolt: Bolt, tmp_path: Path) -> None:
    bolt.ok("tag", "busybox", "second:name")
    for fmt in ("docker-archive", "oci-archive"):
        archive = tmp_path / f"{fmt}.tar"
        bolt.ok("save", "--format", fmt, "busybox", "second:name", "-o", str(archive))
        fresh = make_bolt(tmp_path / f"fresh-{fmt}")
        fresh.ok("load", "-i", str(archive))
        images = json.loads(fresh.ok("images", "--json"))
        assert {i["ref"] for i in images} == {"busybox:latest", "second:name"}, fmt
        assert {i["id"] for i in images} == {bolt.store.resolve("busybox").id}


def test_damaged_archive_is_rejected_and_nothing_stored(bolt: Bolt, tmp_path: Path) -> None:
    good = tmp_path / "good.tar"
    bolt.ok("save", "busybox", "-o", str(good))
    bad = tmp_path / "bad.tar"
    with tarfile.open(good) as src, tarfile.open(bad, "w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
            if member.name.endswith("layer.tar"):
                data = data.replace(b"hello from busybox", b"HELLO FROM BUSYBOX")
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    fresh = make_bolt(tmp_path / "fresh")
    proc = fresh("load", "-i", str(bad))
    assert proc.returncode == 2, proc.stderr
    assert "but its config says" in proc.stderr
    assert fresh.ok("images", "-q") == ""
    blobs = fresh.root / "images/blobs/sha256"
    assert not blobs.is_dir() or not any(blobs.iterdir())


def test_save_to_a_pipe_loads_from_a_pipe(bolt: Bolt, tmp_path: Path) -> None:
    fresh = make_bolt(tmp_path / "fresh")
    saved = subprocess.run(
        [tool("bolt"), "save", "busybox", "-o", "-"], env=bolt.env, capture_output=True, check=True
    )
    loaded = subprocess.run(
        [tool("bolt"), "load", "-i", "-", "--json"],
        env=fresh.env,
        input=saved.stdout,
        capture_output=True,
        check=True,
    )
    (record,) = json.loads(loaded.stdout)
    assert record["ref"] == "busybox:latest"
    assert record["id"] == bolt.store.resolve("busybox").id
