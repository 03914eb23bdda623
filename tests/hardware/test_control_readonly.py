"""On a real NVIDIA GPU: the control layer's reads agree with nvidia-smi, and a snapshot of
the live state diffs empty.  Read-only: it never changes a setting (collected only with
NVCTL_HARDWARE=1)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.hardware
NVCTL = str(Path(sys.executable).parent / "nvctl")


def nvctl(tmp_path: Path, *args: str) -> dict:
    env = dict(
        os.environ, NVCTL_STATE_DIR=str(tmp_path / "s"), NVCTL_CONFIG_DIR=str(tmp_path / "c")
    )
    done = subprocess.run([NVCTL, *args, "--json"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def smi(query: str) -> list[str]:
    out = subprocess.run(
        ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [line.strip() for line in out.splitlines() if line.strip()]


@pytest.mark.skipif(shutil.which("nvidia-smi") is None, reason="nvidia-smi is needed")
def test_power_limits_agree_with_nvidia_smi(tmp_path: Path) -> None:
    rows = nvctl(tmp_path, "power", "status")["gpus"]
    for row, line in zip(rows, smi("uuid,power.limit,power.default_limit"), strict=True):
        uuid, limit, default = (x.strip() for x in line.split(","))
        assert row["uuid"] == uuid
        if limit not in ("[N/A]", "N/A"):
            assert abs(row["limit_w"] - float(limit)) < 1.0
            assert abs(row["default_limit_w"] - float(default)) < 1.0


def test_a_snapshot_of_the_live_state_diffs_empty(tmp_path: Path) -> None:
    nvctl(tmp_path, "overclock", "status")
    nvctl(tmp_path, "fan", "status")
    created = nvctl(tmp_path, "snapshot", "create", "hw")
    assert created["gpus"]
    assert nvctl(tmp_path, "snapshot", "diff", "hw")["differences"] == []
