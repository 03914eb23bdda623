"""Unmodified NVML clients (gpustat, nvitop) run against the library as separate processes."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nvsim import build, layout
from tests.nvsim_c import fakestate
from tests.nvsim_c.fakestate import MIB, FakeState

BIN = Path(sys.executable).parent


@pytest.fixture
def mixed(libnvml: ctypes.CDLL, tmp_path: Path) -> tuple[FakeState, dict[str, str]]:
    """A GeForce and a datacenter board, a compute process on the second, and the env for
    a client process (library found by LD_LIBRARY_PATH, state by NVSIM_STATE)."""
    st = fakestate.create(tmp_path / "nvsim", (fakestate.GEFORCE, fakestate.DATACENTER))
    proc = st.gpu(1).procs[0]
    proc.pid, proc.kind, proc.used_bytes = os.getpid(), layout.PROC_COMPUTE, 1024 * MIB
    env = dict(os.environ)
    env["NVSIM_STATE"] = str(st.directory)
    env["LD_LIBRARY_PATH"] = str(build.library_path().parent)
    return st, env


def run(tool: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / tool), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_gpustat_reports_the_state(mixed: tuple[FakeState, dict[str, str]]) -> None:
    st, env = mixed
    proc = run("gpustat", ["--json"], env)
    assert proc.returncode == 0, proc.stderr
    gpus = json.loads(proc.stdout)["gpus"]
    geforce, h100 = gpus
    assert geforce["name"] == "NVIDIA GeForce RTX 4090"
    assert geforce["uuid"] == st.gpu(0).uuid.decode()
    assert (geforce["temperature.gpu"], geforce["fan.speed"], geforce["power.draw"]) == (42, 36, 30)
    assert (geforce["utilization.enc"], geforce["enforced.power.limit"]) == (7, 450)
    assert (geforce["memory.used"], geforce["memory.total"]) == (512, 24564)
    assert h100["name"] == "NVIDIA H100 80GB HBM3"
    assert h100["fan.speed"] is None and h100["utilization.enc"] is None
    assert [p["pid"] for p in h100["processes"]] == [os.getpid()]
    assert h100["processes"][0]["gpu_memory_usage"] == 1024


def test_nvitop_renders_every_gpu_and_process_without_errors(
    mixed: tuple[FakeState, dict[str, str]],
) -> None:
    _, env = mixed
    proc = run("nvitop", ["--once"], env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    out = proc.stdout
    assert "Driver Version: 575.64.03" in out and "CUDA Driver Version: 12.9" in out
    assert "GeForce RTX 4090" in out and "H100 80GB HBM3" in out
    assert "00000000:41:00.0" in out
    assert "42C" in out and "450W" in out and "700W" in out
    assert str(os.getpid()) in out and "1024MiB" in out
