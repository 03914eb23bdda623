"""``linux.unmount_below``: every mount inside a plain directory goes, deepest and stacked
ones included, and nothing outside it is touched (``umount -R`` does nothing unless the
directory itself is a mount point)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bolt.runtime import linux


def _mounts_under(path: Path) -> list[str]:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points if p == str(path) or p.startswith(f"{path}/")]


def test_every_mount_inside_a_plain_directory_is_detached(tmp_path: Path) -> None:
    scratch, beside = tmp_path / "scratch", tmp_path / "scratch-beside"
    for d in ("a", "a/b", "c", "c"):  # a nested mount, and two stacked on one point
        (scratch / d).mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "t", str(scratch / d)], check=True)
        (scratch / "a" / "b").mkdir(parents=True, exist_ok=True)
    beside.mkdir()  # a sibling whose name starts with the same text stays mounted
    subprocess.run(["mount", "-t", "tmpfs", "t", str(beside)], check=True)
    try:
        assert len(_mounts_under(scratch)) == 4
        assert subprocess.run(["umount", "-R", str(scratch)], capture_output=True).returncode
        linux.unmount_below(scratch)
        assert _mounts_under(scratch) == []
        assert _mounts_under(beside) == [str(beside)]
    finally:
        linux.unmount_below(scratch)
        subprocess.run(["umount", str(beside)], check=False)
