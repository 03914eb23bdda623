"""A busybox-static root file system for benchmarks (the same shape the tests use)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def busybox_rootfs(target: Path) -> Path:
    busybox = shutil.which("busybox") or "/bin/busybox"
    (target / "bin").mkdir(parents=True)
    shutil.copy2(busybox, target / "bin" / "busybox")
    applets = subprocess.run(
        [busybox, "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        link = target / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    for d in ("etc", "tmp", "proc", "sys", "dev", "root"):
        (target / d).mkdir(exist_ok=True)
    (target / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    return target
