"""Which stack ``nvctl ct`` drives: ``-f FILE``, else ``$NVCTL_CT_STACK``, else the
``stacks/nvcontrol/Boltfile.toml`` shipped beside this package in the checkout."""

from __future__ import annotations

import os
from pathlib import Path

from basis.errors import NotFound

SHIPPED = Path(__file__).resolve().parents[3] / "stacks" / "nvcontrol" / "Boltfile.toml"


def boltfile_path(file: str | None) -> Path:
    chosen = Path(file or os.environ.get("NVCTL_CT_STACK") or SHIPPED)
    if chosen.is_dir():
        chosen = chosen / "Boltfile.toml"
    if not chosen.is_file():
        raise NotFound(f"no stack at {chosen}", hint="give the stack's Boltfile.toml with -f FILE")
    return chosen


def load(file: str | None) -> object:
    from bolt.config import Boltfile

    return Boltfile.from_path(boltfile_path(file))
