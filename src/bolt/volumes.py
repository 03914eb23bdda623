"""Named volumes: directories under ``$BOLT_ROOT/volumes/<name>/_data``."""

from __future__ import annotations

import re
from pathlib import Path

from bolt.errors import InvalidInput, NotFound

VOLUME_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def volume_dir(root: Path, name: str) -> Path:
    if not VOLUME_NAME_RE.match(name):
        raise InvalidInput(
            f"volume name {name!r} is invalid", hint="use [a-zA-Z0-9][a-zA-Z0-9_.-]*"
        )
    return root / "volumes" / name / "_data"


def ensure(root: Path, name: str) -> Path:
    """The data directory of volume ``name``, created on first use."""
    path = volume_dir(root, name)
    path.mkdir(parents=True, exist_ok=True)
    return path


def names(root: Path) -> list[str]:
    base = root / "volumes"
    return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


def remove(root: Path, name: str) -> None:
    import shutil

    path = volume_dir(root, name).parent
    if not path.is_dir():
        raise NotFound(f"no such volume: {name}")
    shutil.rmtree(path)
