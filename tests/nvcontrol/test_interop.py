"""Unmodified NVML clients (gpustat, nvitop from PyPI) see nvsim's GPUs exactly as nvctl does."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.conftest import NvsimInstance, tool

pytestmark = pytest.mark.nvsim

NVITOP_DUMP = """
import json
from nvitop import Device
print(json.dumps([
    {"name": d.name(), "uuid": d.uuid(), "memory_total": d.memory_total(),
     "temperature": d.temperature(), "power_mw": d.power_usage(), "index": d.index}
    for d in Device.all()
]))
"""


def _settle(inst: NvsimInstance) -> None:
    """Let the model reach steady state so readings taken moments apart agree."""
    deadline = time.monotonic() + 30
    last = None
    while time.monotonic() < deadline:
        doc = json.loads(inst.nvctl("gpu", "info", "--json", check=True).stdout)
        now = [(g["temperature"]["gpu_c"], g["power"]["usage_w"]) for g in doc["gpus"]]
        if now == last:
            return
        last = now
        time.sleep(0.5)
    pytest.fail(f"nvsim did not settle: {last}")


@pytest.mark.parametrize(
    "nvsim_gpus",
    [{"gpus": 2, "model": "rtx4090,rtx3060", "args": ["--time-scale", "60"]}],
    indirect=True,
)
def test_gpustat_and_nvitop_match_nvctl_info(nvsim_gpus: NvsimInstance) -> None:
    inst = nvsim_gpus
    inst.run("load", "1", "70")
    _settle(inst)
    ours = json.loads(inst.nvctl("gpu", "info", "--json", check=True).stdout)["gpus"]
    gs = json.loads(
        subprocess.run(
            [tool("gpustat"), "--json"], env=inst.env, capture_output=True, text=True, check=True
        ).stdout
    )["gpus"]
    nt = json.loads(
        subprocess.run(
            [sys.executable, "-c", NVITOP_DUMP],
            env=inst.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert len(ours) == len(gs) == len(nt) == 2
    assert {g["name"] for g in ours} == {"NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 3060"}
    for mine, theirs, top in zip(ours, gs, nt, strict=True):
        assert theirs["uuid"] == top["uuid"] == mine["uuid"]
        assert theirs["name"] == top["name"] == mine["name"]
        assert theirs["memory.total"] == mine["memory"]["total_mib"]
        assert top["memory_total"] == mine["memory"]["total_bytes"]
        assert theirs["temperature.gpu"] == top["temperature"] == mine["temperature"]["gpu_c"]
        # gpustat prints whole watts; nvitop gives milliwatts.
        assert theirs["power.draw"] == int(mine["power"]["usage_w"])
        assert top["power_mw"] / 1000 == pytest.approx(mine["power"]["usage_w"], abs=0.01)
    loaded = ours[1]
    assert loaded["utilization"]["gpu_pct"] == gs[1]["utilization.gpu"] > 0


def test_nvitop_once_lists_the_virtual_gpus(nvsim_gpus: NvsimInstance) -> None:
    out = subprocess.run(
        [tool("nvitop"), "--once", "--ascii"],
        env=nvsim_gpus.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("RTX 4090") >= 2
