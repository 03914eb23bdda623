"""One started nvctl ct stack per test module, on nvsim with two GPUs.

The Debian base is the test run's own ``bolt image bootstrap`` (``debian_bootstrap``, made
on the other worker while the serial tests run: tests/debian_image.py), tagged as the name
nvctl looks for. The stack's base image (the project's wheels installed) is built once and
kept as a ``bolt save`` archive under ``$NVCTL_CT_TEST_CACHE`` (default
``build/test-cache/ct`` in the checkout), named after its wheels' digest, so later test
sessions with the same wheels load it instead.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from nvcontrol.ct import baseimage
from tests import debian_image
from tests.bolt.conftest import require_root
from tests.conftest import NvsimInstance, _start, tool
from tests.debian_image import Bootstrapped

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("NVCTL_CT_TEST_CACHE") or REPO / "build" / "test-cache" / "ct")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    root: Path
    directory: Path
    env: dict[str, str]
    nvsim: NvsimInstance
    web_port: int
    first_start: subprocess.CompletedProcess[str] | None = None
    first_start_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def file(self) -> Path:
        return self.directory / "Boltfile.toml"

    def ct(
        self, *args: str, timeout: float = 300, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        argv = [tool("nvctl"), "ct", "-f", str(self.file), "--root", str(self.root), *args]
        return subprocess.run(argv, env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=check)  # fmt: skip

    def bolt(
        self, *args: str, timeout: float = 300, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        argv = [tool("bolt"), "--root", str(self.root), *args]
        return subprocess.run(argv, env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=check)  # fmt: skip

    def status(self) -> dict[str, Any]:
        proc = self.ct("status", "--json", check=True)
        return dict(json.loads(proc.stdout))

    def wait_healthy(self, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            doc = self.status()
            daemons = [s for s in doc["services"] if s["service"] != "driver-updater"]
            if len(daemons) == 3 and all(s["health"] == "healthy" for s in daemons):
                return doc
            if time.monotonic() > deadline:
                raise AssertionError(f"stack not healthy after {timeout} s: {doc['services']}")
            time.sleep(0.5)

    def offsets(self) -> list[dict[str, Any]]:
        """Each GPU's P0 offsets as the host's nvctl reads them (not through the stack)."""
        proc = self.nvsim.nvctl("gpu", "info", "--json", check=True)
        out = []
        for g in json.loads(proc.stdout)["gpus"]:
            p0 = g["offsets"]["pstates"]["P0"]
            out.append(
                {"graphics": p0["graphics"]["offset_mhz"], "memory": p0["memory"]["offset_mhz"]}
            )
        return out


def _load_images(stack: Stack, debian: Bootstrapped, base_tag: str) -> None:
    stack.bolt("load", "-i", str(debian.check()), check=True)
    stack.bolt("tag", debian_image.IMAGE, baseimage.DEBIAN, check=True)
    stack.notes.append(f"loaded this run's {debian_image.IMAGE} as {baseimage.DEBIAN}")
    archive = CACHE / f"{base_tag.replace(':', '-')}.tar"
    if archive.is_file():
        stack.bolt("load", "-i", str(archive), check=True)
        stack.notes.append(f"loaded {archive.name}")


def _save_cache(stack: Stack, base_tag: str) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    base_archive = CACHE / f"{base_tag.replace(':', '-')}.tar"
    if not base_archive.is_file():
        for old in CACHE.glob("nvcontrol-base-*.tar"):
            old.unlink()
        stack.bolt("save", "-o", str(base_archive), base_tag, "nvcontrol-base:latest", check=True)


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, debian_bootstrap: Bootstrapped
) -> Iterator[Stack]:
    require_root()
    from nvcontrol.ct.stack import SHIPPED

    base = tmp_path_factory.mktemp("ct")
    nv = _start(base, 2, "rtx4090", [])
    directory = base / "stack"
    shutil.copytree(SHIPPED.parent, directory)
    port = free_port()
    # The seed publishes 8080 on every address, and the quic network's listener at its own
    # port (UDP 3000); tests share the host, so they publish the dashboard on a free
    # loopback port and the listener on a free port.
    text = (directory / "Boltfile.toml").read_text()
    assert 'ports = ["8080:8080"]' in text and text.rstrip().endswith("encryption = true")
    text = text.replace('ports = ["8080:8080"]', f'ports = ["127.0.0.1:{port}:8080"]')
    # This host has no kernel headers; the driver-updater's read-only /lib/modules comes
    # from a tree with this kernel's build directory, as on a machine with them installed.
    modules = base / "kernel" / "modules"
    (modules / os.uname().release / "build").mkdir(parents=True)
    (modules / os.uname().release / "build" / "Makefile").write_text("# kernel headers\n")
    assert '"/lib/modules:/lib/modules:ro"' in text
    text = text.replace('"/lib/modules:/lib/modules:ro"', f'"{modules}:/lib/modules:ro"')
    (directory / "Boltfile.toml").write_text(text.rstrip() + '\npublish = "0.0.0.0:0"\n')
    env = dict(nv.env)
    env["BOLT_ROOT"] = str(base / "root")
    env["BOLT_CDI_SPEC_DIRS"] = str(base / "cdi")
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    s = Stack(base / "root", directory, env, nv, port)
    tag = baseimage.versioned_base(baseimage.wheel_dir(), directory)
    _load_images(s, debian_bootstrap, tag)
    began = time.monotonic()
    s.first_start = s.ct("start", timeout=1500)
    s.first_start_s = time.monotonic() - began
    try:
        assert s.first_start.returncode == 0, s.first_start.stderr[-4000:]
        _save_cache(s, tag)
        yield s
    finally:
        s.ct("stop", "-t", "2", timeout=300)
        nv.run("down", check=False)
