"""Fixtures for builder tests: a fresh Bolt root per test holding a busybox image (made
from busybox-static), and a ``bolt`` runner.  After each test no container, mount or
build scratch directory may be left under the root."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bolt.conftest import Bolt, make_busybox_rootfs, require_root


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_busybox_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")


@pytest.fixture
def bolt(tmp_path: Path, busybox_rootfs: Path) -> Iterator[Bolt]:
    require_root()
    from bolt.images.store import ImageStore

    root = tmp_path / "root"
    ImageStore(root).import_path(busybox_rootfs, "busybox:latest", config={"Cmd": ["/bin/sh"]})
    env = dict(os.environ)
    env["BOLT_ROOT"] = str(root)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    runner = Bolt(root=root, env=env)
    yield runner
    names = runner("ps", "-a", "-q").stdout.split()
    if names:
        runner("rm", "-f", *names, check=True)
    mounts = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4].startswith(str(root))
    ]
    assert not mounts, f"mounts left behind: {mounts}"
    build_dir = root / "build"
    assert not build_dir.is_dir() or not any(build_dir.iterdir()), "build scratch left behind"
