"""The driver-updater job: report the staged driver packages under ``/drivers`` and the
kernel trees mounted read-only (``/lib/modules``, ``/usr/src``), then exit.

It only looks; the staged verify/build/install pipeline of ``nvctl ct update`` is not
implemented yet, and this program says so rather than pretending to update anything.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

DRIVERS = Path(os.environ.get("DRIVERS_DIR", "/drivers"))
KERNEL_TREES = ("/lib/modules", "/usr/src")


def survey() -> dict[str, object]:
    staged = sorted(p.name for p in DRIVERS.iterdir()) if DRIVERS.is_dir() else []
    trees = {t: os.path.isdir(t) and bool(os.listdir(t)) for t in KERNEL_TREES}
    return {
        "kernel": os.uname().release,
        "drivers_dir": str(DRIVERS),
        "staged": staged,
        "kernel_trees": trees,
        "installed": False,
        "note": "survey only: the update pipeline (verify, build, install) is not implemented",
    }


def main() -> int:
    print(json.dumps(survey()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
