"""nvsim's nvidia-smi and state inside GPU containers, through the generated CDI spec.

The image has no Python: busybox plus the C libraries nvidia-smi and the NVML library link
against (the shape of a Debian minbase image).  The spec injects nvidia-smi, the library
and a read-only state; only a container given ``nvidia.com/gpu=nvsim-state-rw`` may set.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from tests.bolt.conftest import Bolt, make_busybox_rootfs
from tests.bolt.pyrootfs import INTERPRETER, PYLIB, STDLIB_VOLUME, add_python

pytestmark = [pytest.mark.root, pytest.mark.runtime, pytest.mark.nvsim]

SET_POWER = """
import pynvml, sys
pynvml.nvmlInit()
h = pynvml.nvmlDeviceGetHandleByIndex(0)
try:
    pynvml.nvmlDeviceSetPowerManagementLimit(h, 300000)
    print("set", pynvml.nvmlDeviceGetPowerManagementLimit(h))
except pynvml.NVMLError as err:
    print("refused", err)
"""


def _glibc_rootfs(root: Path, binaries: list[Path]) -> Path:
    make_busybox_rootfs(root)
    for binary in binaries:
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
        for lib in re.findall(r"(/\S+) \(0x", out):
            target = root / lib.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(lib).resolve(), target)
    return root


@pytest.fixture
def smi_bolt(bolt: Bolt, nvsim_gpus, tmp_path: Path) -> Bolt:
    env = {**bolt.env, **{k: nvsim_gpus.env[k] for k in ("NVSIM_STATE", "LD_LIBRARY_PATH")}}
    env["BOLT_CDI_SPEC_DIRS"] = str(tmp_path / "cdi")
    gb = replace(bolt, env=env)
    gb.ok("gpu", "cdi", "generate", "--output", str(tmp_path / "cdi" / "nvidia.json"))
    state = nvsim_gpus.state
    rootfs = _glibc_rootfs(
        tmp_path / "smiroot", [state / "bin" / "nvidia-smi", state / "lib" / "libnvidia-ml.so.1"]
    )
    gb.ok("image", "import", str(rootfs), "-t", "smi:1")
    return gb


def test_nvidia_smi_in_a_gpu_container_without_python(smi_bolt: Bolt, nvsim_gpus) -> None:
    host = subprocess.run(
        [str(nvsim_gpus.state / "bin" / "nvidia-smi"), "-L"],
        env=nvsim_gpus.env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    inside = smi_bolt.ok("run", "--rm", "--gpus", "all", "smi:1", "nvidia-smi", "-L")
    assert inside == host and inside.count("NVIDIA GeForce RTX 4090") == 2
    table = smi_bolt.ok("run", "--rm", "--gpus", "all", "smi:1", "nvidia-smi")
    assert "Driver Version: 580.95.05" in table and "00000000:01:00.0" in table
    csv = smi_bolt.ok(
        "run", "--rm", "--gpus", "all", "smi:1",
        "nvidia-smi", "--query-gpu=index,uuid", "--format=csv,noheader",
    )  # fmt: skip
    uuids = [g["uuid"] for g in json.loads(smi_bolt.ok("gpu", "list", "--json"))]
    assert csv.splitlines() == [f"{i}, {u}" for i, u in enumerate(uuids)]


def test_the_state_is_read_only_in_gpu_containers(smi_bolt: Bolt, nvsim_gpus) -> None:
    before = (nvsim_gpus.state / "state").read_bytes()[:64]
    out = smi_bolt.ok(
        "run", "--rm", "--gpus", "all", "smi:1", "sh", "-c",
        "(echo garbage > /run/nvsim/state) 2>&1; echo rc=$?",
    )  # fmt: skip
    assert "Read-only file system" in out and "rc=1" in out
    assert (nvsim_gpus.state / "state").read_bytes()[:64] == before
    # The GPUs still read fine inside, and on the host.
    assert "NVIDIA GeForce RTX 4090" in smi_bolt.ok(
        "run", "--rm", "--gpus", "all", "smi:1", "nvidia-smi", "-L"
    )


def test_only_the_container_granted_write_access_can_set(
    smi_bolt: Bolt, nvsim_gpus, tmp_path: Path
) -> None:
    rootfs = add_python(make_busybox_rootfs(tmp_path / "pyroot"))
    smi_bolt.ok("image", "import", str(rootfs), "-t", "nvml-py:1")
    run = ["run", "--rm", "-v", STDLIB_VOLUME, "-e", f"PYTHONPATH={PYLIB}"]
    refused = smi_bolt.ok(*run, "--gpus", "all", "nvml-py:1", INTERPRETER, "-c", SET_POWER)
    assert refused.startswith("refused") and "Insufficient Permissions" in refused
    assert nvsim_gpus.status()["gpus"][0]["power_limit_w"] == 450
    granted = smi_bolt.ok(
        *run, "--gpus", "all", "--device", "nvidia.com/gpu=nvsim-state-rw", "nvml-py:1",
        INTERPRETER, "-c", SET_POWER,
    )  # fmt: skip
    assert granted.strip() == "set 300000"
    assert nvsim_gpus.status()["gpus"][0]["power_limit_w"] == 300


def test_a_privileged_gpu_container_may_set_without_the_explicit_grant(
    smi_bolt: Bolt, nvsim_gpus, tmp_path: Path
) -> None:
    """As with a real driver, whose nodes let a privileged container make every setter
    call as root: the seed's privileged gpu-manager needs no extra device."""
    rootfs = add_python(make_busybox_rootfs(tmp_path / "pyroot"))
    smi_bolt.ok("image", "import", str(rootfs), "-t", "nvml-py:1")
    run = ["run", "--rm", "-v", STDLIB_VOLUME, "-e", f"PYTHONPATH={PYLIB}"]
    out = smi_bolt.ok(
        *run, "--privileged", "--gpus", "all", "nvml-py:1", INTERPRETER, "-c", SET_POWER
    )
    assert out.strip() == "set 300000"
    assert nvsim_gpus.status()["gpus"][0]["power_limit_w"] == 300
