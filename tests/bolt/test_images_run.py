"""Images from other tools run: one built with umoci, one imported from a rootfs tarball."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.bolt.conftest import Bolt, make_busybox_rootfs

pytestmark = [pytest.mark.root, pytest.mark.runtime]


def umoci(*args: str) -> None:
    assert shutil.which("umoci"), "umoci is not installed: run ./project.sh setup"
    subprocess.run(["umoci", *args], check=True, capture_output=True)


def test_image_built_by_umoci_runs_with_its_config(bolt: Bolt, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    umoci("init", "--layout", str(layout))
    umoci("new", "--image", f"{layout}:v1")
    bundle = tmp_path / "bundle"
    umoci("unpack", "--rootless", "--image", f"{layout}:v1", str(bundle))
    shutil.rmtree(bundle / "rootfs")
    make_busybox_rootfs(bundle / "rootfs")
    (bundle / "rootfs" / "hello.txt").write_text("from umoci\n")
    umoci("repack", "--image", f"{layout}:v1", str(bundle))
    umoci("config", "--image", f"{layout}:v1", "--config.cmd", "cat", "--config.cmd", "/hello.txt",
          "--config.env", "GREETING=hi", "--config.workingdir", "/tmp")  # fmt: skip
    bolt.ok("image", "import", f"{layout}:v1", "-t", "umoci-made:v1")
    assert bolt.ok("run", "--rm", "umoci-made:v1") == "from umoci\n"
    out = bolt.ok("run", "--rm", "umoci-made:v1", "sh", "-c", "echo $GREETING $(pwd)")
    assert out == "hi /tmp\n"


def test_image_from_a_rootfs_tarball_runs(bolt: Bolt, tmp_path: Path) -> None:
    rootfs = make_busybox_rootfs(tmp_path / "rootfs")
    (rootfs / "etc" / "os-release").write_text("ID=tarball\n")
    tarball = tmp_path / "rootfs.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(rootfs, arcname=".")
    bolt.ok("image", "import", str(tarball), "-t", "from-tar:1")
    assert bolt.ok("run", "--rm", "from-tar:1", "cat", "/etc/os-release") == "ID=tarball\n"
    # The container's writes stay in its own upper layer, not in the shared image.
    bolt.ok("run", "--name", "writer", "from-tar:1", "sh", "-c", "echo changed > /etc/os-release")
    assert bolt.ok("run", "--rm", "from-tar:1", "cat", "/etc/os-release") == "ID=tarball\n"


def test_image_used_by_a_container_is_not_removed(bolt: Bolt, tmp_path: Path) -> None:
    bolt.ok("image", "import", str(make_busybox_rootfs(tmp_path / "r")), "-t", "in-use:1")
    bolt.ok("run", "--name", "user", "in-use:1", "true")
    refused = bolt("image", "rm", "in-use:1")
    assert refused.returncode == 2 and "used by a container" in refused.stderr
    bolt.ok("rm", "user")
    bolt.ok("image", "rm", "in-use:1")
    assert bolt("run", "--rm", "in-use:1", "true").returncode == 2  # gone, and the cache knows
