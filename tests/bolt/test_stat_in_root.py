"""``linux.stat_in_root``: paths and links resolved as a process rooted there sees them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from bolt.runtime import linux


def test_links_absolute_or_climbing_stay_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_text("#!/bin/sh\n")
    (root / "bin" / "tool").chmod(0o755)
    (root / "abs").symlink_to("/bin/tool")  # means root/bin/tool, not the host's /bin/tool
    (root / "host").symlink_to("/etc/hostname")  # exists on the host only
    (root / "climb").symlink_to("../../../../etc/hostname")
    assert Path("/etc/hostname").exists()
    found = linux.stat_in_root(str(root), "/abs")
    assert found is not None and stat.S_ISREG(found.st_mode)
    assert found.st_ino == os.stat(root / "bin" / "tool").st_ino
    assert linux.stat_in_root(str(root), "/host") is None
    assert linux.stat_in_root(str(root), "/climb") is None
    assert linux.stat_in_root(str(root), "/../../etc/hostname") is None
    assert linux.stat_in_root(str(root), "/bin/tool/x") is None  # ENOTDIR
    directory = linux.stat_in_root(str(root), "/bin")
    assert directory is not None and stat.S_ISDIR(directory.st_mode)


def test_a_link_loop_is_nothing_there(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("/b")
    (tmp_path / "b").symlink_to("/a")
    assert linux.stat_in_root(str(tmp_path), "/a") is None
