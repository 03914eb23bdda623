"""On a real NVIDIA GPU: `nvctl gpu info --json` agrees with `nvidia-smi -q -x`.

Read-only: it never changes a setting.  Collected only when NVCTL_HARDWARE=1 (see
tests/conftest.py); also runnable directly: ``python tests/hardware/test_nvidia_smi.py``
prints every compared value and exits non-zero on a mismatch.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.hardware

POWER_PARENTS = ("gpu_power_readings", "power_readings")
NVCTL = str(Path(sys.executable).parent / "nvctl")


def _num(text: str | None) -> float | None:
    m = re.match(r"\s*([0-9.]+)", text or "")
    return float(m.group(1)) if m else None


def _find(gpu: ET.Element, *paths: str) -> str | None:
    for p in paths:
        node = gpu.find(p)
        if node is not None and node.text and node.text.strip() not in ("N/A", ""):
            return node.text.strip()
    return None


def comparisons() -> list[tuple[str, Any, Any]]:
    """(what, nvidia-smi's value, nvctl's value) for every GPU."""
    smi = ET.fromstring(subprocess.check_output(["nvidia-smi", "-q", "-x"], text=True))
    # Temporary state: nvctl's start-up repair must never act on the host's real journal.
    with tempfile.TemporaryDirectory(prefix="nvctl-hw-") as tmp:
        env = dict(os.environ, NVCTL_STATE_DIR=f"{tmp}/state", NVCTL_CONFIG_DIR=f"{tmp}/config")
        out = subprocess.check_output([NVCTL, "gpu", "info", "--json"], text=True, env=env)
    ours = json.loads(out)["gpus"]
    by_uuid = {g["uuid"]: g for g in ours}
    rows: list[tuple[str, Any, Any]] = [
        ("driver_version", _find(smi, "driver_version"), ours[0]["driver"]["driver_version"]),
        ("gpu count", len(smi.findall("gpu")), len(ours)),
    ]
    for gpu in smi.findall("gpu"):
        uuid = _find(gpu, "uuid")
        mine = by_uuid.get(uuid or "")
        tag = f"[{uuid}]"
        rows.append((f"{tag} present in nvctl", True, mine is not None))
        if mine is None:
            continue

        def pw(name: str, *alts: str, node: ET.Element = gpu) -> float | None:
            paths = [f"{parent}/{n}" for n in (name, *alts) for parent in POWER_PARENTS]
            return _num(_find(node, *paths))

        rows += [
            (f"{tag} name", _find(gpu, "product_name"), mine["name"]),
            (f"{tag} pci bus id", gpu.get("id", "").lower(), mine["pci_bus_id"].lower()),
            (f"{tag} serial", _find(gpu, "serial"), mine["serial"]),
            (f"{tag} vbios", _find(gpu, "vbios_version"), mine["vbios_version"]),
            (
                f"{tag} memory total MiB",
                _num(_find(gpu, "fb_memory_usage/total")),
                mine["memory"]["total_mib"],
            ),
            (
                f"{tag} max graphics MHz",
                _num(_find(gpu, "max_clocks/graphics_clock")),
                mine["clocks"]["max"]["graphics_mhz"],
            ),
            (
                f"{tag} max memory MHz",
                _num(_find(gpu, "max_clocks/mem_clock")),
                mine["clocks"]["max"]["memory_mhz"],
            ),
            (
                f"{tag} power limit W",
                pw("current_power_limit", "power_limit"),
                mine["power"]["limit_w"],
            ),
            (f"{tag} default limit W", pw("default_power_limit"), mine["power"]["default_limit_w"]),
            (f"{tag} min limit W", pw("min_power_limit"), mine["power"]["min_limit_w"]),
            (f"{tag} max limit W", pw("max_power_limit"), mine["power"]["max_limit_w"]),
        ]
    return rows


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(float(a) - float(b)) <= 0.5
    return bool(a == b)


@pytest.mark.skipif(shutil.which("nvidia-smi") is None, reason="needs nvidia-smi and a real GPU")
def test_nvctl_info_matches_nvidia_smi() -> None:
    bad = [(w, a, b) for w, a, b in comparisons() if a is not None and not _same(a, b)]
    assert not bad, bad


if __name__ == "__main__":
    failed = 0
    for what, smi_value, ours in comparisons():
        ok = smi_value is None or _same(smi_value, ours)
        failed += not ok
        print(f"{'ok ' if ok else 'BAD'} {what}: nvidia-smi={smi_value!r} nvctl={ours!r}")
    sys.exit(1 if failed else 0)
