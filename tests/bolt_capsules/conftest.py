"""Fixtures for capsule snapshot tests: Bolt's session root with a busybox image (from the
runtime tests), nvsim with two GPUs, and one environment that sees both — plus, on
demand, the test-blocker provider that pauses a step so a test can kill the process."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.bolt.conftest import Bolt, bolt, bolt_session  # noqa: F401 (fixtures)
from tests.conftest import NvsimInstance, tool

PLUGIN = Path(__file__).parent / "plugin"


@dataclass
class Capsules:
    bolt: Bolt
    nvsim: NvsimInstance | None
    env: dict[str, str]

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [tool("bolt"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def ok(self, *args: str) -> str:
        done = self(*args)
        assert done.returncode == 0, (
            f"bolt {' '.join(args)} exited {done.returncode}: {done.stderr}"
        )
        return done.stdout

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [tool("bolt"), *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )

    def nvctl(self, *args: str) -> dict:
        done = subprocess.run(
            [tool("nvctl"), *args, "--json"], env=self.env, capture_output=True, text=True
        )
        assert done.returncode == 0, f"nvctl {' '.join(args)} failed: {done.stderr}"
        return json.loads(done.stdout)

    def power_limits(self) -> dict[str, float]:
        assert self.nvsim is not None
        return {g["uuid"]: g["power_limit_w"] for g in self.nvsim.status()["gpus"]}

    def run_container(self, name: str) -> str:
        return self.ok("run", "-d", "--name", name, "busybox", "sh", "-c", "exec sleep 100000")

    def read(self, container: str, path: str) -> str:
        done = self("exec", container, "cat", path)
        return done.stdout if done.returncode == 0 else f"<exit {done.returncode}>"

    def write(self, container: str, path: str, text: str) -> None:
        self.ok("exec", container, "sh", "-c", f"mkdir -p $(dirname {path}); echo {text} > {path}")


@pytest.fixture
def capsules(bolt: Bolt, nvsim_gpus: NvsimInstance, tmp_path: Path) -> Iterator[Capsules]:  # noqa: F811
    """Bolt and nvsim in one environment; snapshots of the session root are deleted after."""
    env = dict(nvsim_gpus.env)
    env["BOLT_ROOT"] = str(bolt.root)
    env["PATH"] = bolt.env["PATH"]
    c = Capsules(bolt, nvsim_gpus, env)
    yield c
    _delete_snapshots(c)


@pytest.fixture
def capsules_no_gpu(bolt: Bolt) -> Iterator[Capsules]:  # noqa: F811
    c = Capsules(bolt, None, dict(bolt.env))
    yield c
    _delete_snapshots(c)


def _delete_snapshots(c: Capsules) -> None:
    names = [s["name"] for s in json.loads(c.ok("snapshot", "list", "--json"))]
    if names:
        c.ok("snapshot", "delete", *names)


@pytest.fixture
def blocker(capsules: Capsules, tmp_path: Path) -> Path:
    """The test-blocker provider installed (by entry point) for the capsules' commands."""
    d = tmp_path / "blocker"
    d.mkdir()
    capsules.env["PYTHONPATH"] = str(PLUGIN)
    capsules.env["CAPSULE_BLOCKER_DIR"] = str(d)
    return d
