"""The Debian image of a test run: ``bolt image bootstrap debian:bookworm`` once per run,
saved with ``bolt save``, for every test that needs Debian.

Bootstrapping takes minutes (debootstrap downloads and unpacks a hundred packages), so the
run does it once, and as early as it can: ``tests/bolt_build/test_debootstrap.py``, the
test that checks the bootstrap itself, is the first thing the parallel worker runs
(``tests/parallel.py``), while the serial group works through its own tests; the builder's
run-and-build test and the ct stack load the archive later. xdist's workers are separate
processes, so the first caller bootstraps under a file lock in the run's shared temporary
directory and the others wait on that lock, then read what it left: the archive and the
command's result (a failed bootstrap is recorded too, so that it is not tried again).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import tool

IMAGE = "debian:bookworm"
# What the ct stack's base needs on top of minbase (nvcontrol.ct.baseimage.PACKAGES, which
# tests/ct/test_units.py checks this against); the builder's tests check that --include
# installed them.
PACKAGES = ("python3", "python3-venv")
BOOTSTRAP_TIMEOUT_S = 900


@dataclass(frozen=True)
class Bootstrapped:
    """What ``bolt image bootstrap`` did: its exit code and output, the scratch directories
    it left under its root's tmp/, and the ``bolt save`` archive of the image it made."""

    returncode: int
    stdout: str
    stderr: str
    scratch_left: list[str]
    seconds: float
    archive: Path

    def check(self) -> Path:
        """The archive, or the bootstrap's own error as the test's failure."""
        assert self.returncode == 0, f"bolt image bootstrap failed: {self.stderr[-4000:]}"
        assert self.archive.is_file(), f"no archive at {self.archive}"
        return self.archive


def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory every process of this test run shares: under xdist the workers'
    temporary roots are subdirectories of the controller's."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def bootstrapped(shared: Path) -> Bootstrapped:
    """This run's Debian image: made here, unless another process made it (or is making
    it, then wait)."""
    result = shared / "debian-bootstrap.json"
    with open(shared / "debian-bootstrap.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not result.is_file():
            made = _bootstrap(shared)
            doc = {**made.__dict__, "archive": str(made.archive)}
            tmp = result.with_suffix(".tmp")
            tmp.write_text(json.dumps(doc))
            tmp.replace(result)
    doc = json.loads(result.read_text())
    return Bootstrapped(**{**doc, "archive": Path(doc["archive"])})


def _bootstrap(shared: Path) -> Bootstrapped:
    root = shared / "debian-bootstrap-root"
    archive = shared / "debian-bookworm.tar"
    env = dict(os.environ)
    env["BOLT_ROOT"] = str(root)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    argv = [tool("bolt"), "image", "bootstrap", IMAGE, "--include", ",".join(PACKAGES), "-q"]
    began = time.monotonic()
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True,
                              timeout=BOOTSTRAP_TIMEOUT_S, stdin=subprocess.DEVNULL)  # fmt: skip
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired:
        code, out, err = -1, "", f"timed out after {BOOTSTRAP_TIMEOUT_S} s"
    seconds = time.monotonic() - began
    scratch = sorted(p.name for p in (root / "tmp").glob("bootstrap-*"))
    if code == 0:
        save = subprocess.run([tool("bolt"), "save", "-o", str(archive), IMAGE], env=env,
                              capture_output=True, text=True)  # fmt: skip
        if save.returncode != 0:
            code, err = save.returncode, f"bolt save: {save.stderr}"
    if not scratch:  # a killed debootstrap may leave /proc and /sys mounted in its scratch
        shutil.rmtree(root, ignore_errors=True)  # the archive is all later tests need
    return Bootstrapped(code, out, err, scratch, seconds, archive)
