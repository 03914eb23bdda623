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


def create(root: Path, name: str, labels: dict[str, str]) -> Path:
    """Create volume ``name`` (an existing one keeps its data) with ``labels``."""
    import json

    path = ensure(root, name)
    (path.parent / "labels.json").write_text(json.dumps(labels))
    return path


def labels_of(root: Path, name: str) -> dict[str, str]:
    import json

    try:
        return dict(json.loads((volume_dir(root, name).parent / "labels.json").read_text()))
    except (OSError, ValueError):
        return {}


def listing(root: Path, labels: dict[str, str]) -> list[dict[str, object]]:
    """Every volume (carrying all of ``labels``): name, path, labels."""
    out: list[dict[str, object]] = []
    for n in names(root):
        own = labels_of(root, n)
        if all(own.get(k) == v for k, v in labels.items()):
            out.append({"name": n, "path": str(volume_dir(root, n)), "labels": own})
    return out
