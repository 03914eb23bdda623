"""Helpers for the GPU-control tests on nvsim: what nvsim reports, and JSON from nvctl."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from tests.conftest import NvsimInstance

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 and os.environ.get("CI") != "true",
    reason="GPU settings need root (CI runs as root)",
)


def settings_of(inst: NvsimInstance) -> list[dict[str, Any]]:
    """Every setting nvsim holds, per GPU by UUID — the ground truth tests compare."""
    out = []
    for g in inst.status()["gpus"]:
        out.append(
            {
                "uuid": g["uuid"],
                "offsets": g["offsets_mhz"],
                "locked_clocks": g["locked_clocks"],
                "power_limit_w": g["power_limit_w"],
                "fans": [
                    (f["policy"], f["target_pct"] if f["policy"] == "manual" else None)
                    for f in g["fans"]
                ],
                "persistence": g["persistence"],
                "compute_mode": g["compute_mode"],
            }
        )
    return out


def ok_json(inst: NvsimInstance, *args: str) -> Any:
    done = inst.nvctl(*args, "--json")
    assert done.returncode == 0, f"nvctl {' '.join(args)} failed:\n{done.stderr}"
    return json.loads(done.stdout)


def fails(inst: NvsimInstance, code: int, *args: str) -> subprocess.CompletedProcess[str]:
    done = inst.nvctl(*args)
    assert done.returncode == code, f"expected exit {code}, got {done.returncode}:\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return done
