"""Fixtures for the registry tests: a docker-registry per test (plain, htpasswd or behind a
token service), a state root with a busybox image, and a ``bolt`` runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bolt.images.store import ImageStore
from tests.bolt_registry.registry_fixture import Registry, TokenFront, start_registry
from tests.conftest import tool


@dataclass
class Bolt:
    root: Path
    env: dict[str, str]

    def __call__(
        self, *args: str, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [tool("bolt"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    def ok(self, *args: str, **kw: object) -> str:
        proc = self(*args, **kw)  # type: ignore[arg-type]
        assert proc.returncode == 0, (
            f"bolt {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
        )
        return proc.stdout

    @property
    def store(self) -> ImageStore:
        return ImageStore(self.root)


def busybox_tree(dest: Path, marker: str = "hello from busybox") -> Path:
    """busybox-static with its applet links, /etc/passwd and a marker file."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    (dest / "bin").mkdir(parents=True)
    shutil.copy2(busybox, dest / "bin/busybox")
    listing = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True)
    for applet in listing.stdout.split():
        if applet != "busybox":
            (dest / "bin" / applet).symlink_to("/bin/busybox")
    (dest / "etc").mkdir()
    (dest / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (dest / "etc/group").write_text("root:x:0:\n")
    (dest / "etc/marker").write_text(marker + "\n")
    for d in ("root", "tmp", "proc", "sys", "dev"):
        (dest / d).mkdir(exist_ok=True)
    return dest


_made: list[Bolt] = []


def make_bolt(base: Path) -> Bolt:
    """A Bolt with its own state root; its containers are removed after the test."""
    env = dict(os.environ)
    env["BOLT_ROOT"] = str(base / "root")
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    made = Bolt(base / "root", env)
    _made.append(made)
    return made


@pytest.fixture
def bolt(tmp_path: Path) -> Iterator[Bolt]:
    """A fresh state root holding ``busybox:latest`` (one gzip layer, ``Cmd`` cat marker)."""
    b = make_bolt(tmp_path)
    tree = busybox_tree(tmp_path / "busybox-tree")
    tarball = tmp_path / "busybox.tar.gz"
    subprocess.run(["tar", "-czf", str(tarball), "-C", str(tree), "."], check=True)
    b.store.import_path(tarball, "busybox:latest", config={"Cmd": ["cat", "/etc/marker"]})
    yield b
    while _made:  # a run that failed half-way must not leave mounts behind
        other = _made.pop()
        if (other.root / "containers").is_dir():
            names = other("ps", "-a", "-q").stdout.split()
            if names:
                other("rm", "-f", *names)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = start_registry(tmp_path / "registry")
    yield reg
    reg.stop()


@pytest.fixture
def basic_registry(tmp_path: Path) -> Iterator[Registry]:
    reg = start_registry(tmp_path / "basic-registry", htpasswd=True)
    yield reg
    reg.stop()


@pytest.fixture
def token_registry(registry: Registry) -> Iterator[TokenFront]:
    front = TokenFront(registry.host).start()
    yield front
    front.stop()


def run_tool(*cmd: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
    """Run a peer tool (skopeo, umoci, podman); it must be installed and succeed."""
    if shutil.which(str(cmd[0])) is None:
        pytest.fail(f"{cmd[0]} is not installed (./project.sh setup installs it)")
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed: {proc.stderr}"
    return proc  # type: ignore[no-any-return]
