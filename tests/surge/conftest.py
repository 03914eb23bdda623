"""Fixtures for Boltfile and Surge tests: project directories written from text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SEED = Path(__file__).resolve().parents[2] / "tests" / "surge" / "seed_boltfiles.toml"


def seed_snippets() -> dict[str, str]:
    """The seed's Boltfile and its multi-GPU and driver-test snippets, as written there."""
    text = SEED.read_text()
    parts = re.split(r"^# --- (\S+) ---$", text, flags=re.M)
    return {parts[i]: parts[i + 1].lstrip("\n") for i in range(1, len(parts), 2)}


def write_project(directory: Path, boltfile: str, dirs: tuple[str, ...] = ()) -> Path:
    """``Boltfile.toml`` in ``directory``, with the build directories it names."""
    for d in dirs:
        (directory / d).mkdir(parents=True, exist_ok=True)
    path = directory / "Boltfile.toml"
    path.write_text(boltfile)
    return path


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    d = tmp_path / "proj"
    d.mkdir()
    return d
