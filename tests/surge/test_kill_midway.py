"""``kill -9`` of ``bolt surge up`` halfway: the next ``up`` converges, ``down`` is clean."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.conftest import tool
from tests.surge.project import Project
from tests.surge.test_project_up import serve

pytestmark = [pytest.mark.root, pytest.mark.runtime]


def chain(p: Project, n: int) -> str:
    parts = [f'project = "{p.name}"\n']
    for i in range(n):
        parts.append(f'[services.s{i}]\nimage = "busybox"\ncommand = {serve(p.marker, "true")}\n')
        if i:
            parts.append(f'depends_on = ["s{i - 1}"]\n')
    return "".join(parts)


def test_up_killed_halfway_then_up_converges_and_down_cleans(surge_project: Project):
    p = surge_project
    n = 6
    p.file.write_text(chain(p, n))
    proc = subprocess.Popen(
        [tool("bolt"), "--root", str(p.root), "surge", "-f", str(p.file), "up"],
        env=p.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if 1 <= len(p.ps()) < n:  # some services up, not all: halfway
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"up finished before it could be killed: {proc.stderr.read()}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(p.ps())
    assert partial < n

    p.surge("up", check=True)
    state = p.ps()
    assert sorted(c["service"] for c in state) == [f"s{i}" for i in range(n)]
    assert all(c["status"] == "running" for c in state)
    again = p.surge("up", check=True)
    assert "up to date" in again.stderr
