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


@pytest.fixture(scope="session")
def surge_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state root with busybox:latest, shared by the session's Surge projects."""
    from bolt.images.store import ImageStore
    from tests.bolt.conftest import make_busybox_rootfs, require_root

    require_root()
    base = tmp_path_factory.mktemp("surge")
    root = base / "root"
    rootfs = make_busybox_rootfs(base / "busybox-rootfs")
    ImageStore(root).import_path(rootfs, "busybox:latest", config={"Cmd": ["/bin/sh"]})
    return root


@pytest.fixture
def surge_project(surge_root: Path, tmp_path: Path):
    """A project directory on the session's root; after the test ``down -v`` runs and
    nothing of the project may be left on the host."""
    import os
    import secrets
    import sys

    from tests.surge.project import Project

    token = secrets.token_hex(3)
    directory = tmp_path / "project"
    directory.mkdir()
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    env.pop("BOLT_CDI_SPEC_DIRS", None)
    project = Project(surge_root, directory, env, name=f"sg{token}", marker=f"surge-{token}")
    yield project
    if project.file.exists():
        before = project.engine_state()
        project.surge("down", "-v", "-t", "1")
        assert project.leftovers(before) == []
