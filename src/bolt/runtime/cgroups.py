"""A container's cgroups (``/bolt/<id>`` under each hierarchy): finding them, and
killing whatever is left in them before removing them."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

CGROUP_BASE = "/sys/fs/cgroup"


def cgroup_dirs(cid: str) -> list[Path]:
    base = Path(CGROUP_BASE)
    candidates = [base / "bolt" / cid, base / "unified" / "bolt" / cid]
    if base.is_dir():
        candidates += [p / "bolt" / cid for p in base.iterdir() if p.is_dir()]
    return [p for p in dict.fromkeys(candidates) if p.is_dir()]


def kill_cgroups(cid: str) -> None:
    """SIGKILL whatever is left in the container's cgroups, then remove them."""
    for _ in range(50):
        dirs = cgroup_dirs(cid)
        if not dirs:
            return
        for d in dirs:
            with contextlib.suppress(OSError):
                for pid in (d / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
            with contextlib.suppress(OSError):
                d.rmdir()
        time.sleep(0.02)
