"""GPUs through CDI on nvsim: the container sees the host's virtual GPUs through the same
NVML library, device nodes and state, and nvidia-ml-py inside reads the same GPUs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tests.bolt.conftest import Bolt, make_busybox_rootfs
from tests.bolt.pyrootfs import INTERPRETER, PYLIB, STDLIB_VOLUME, add_python

pytestmark = [pytest.mark.root, pytest.mark.runtime, pytest.mark.nvsim]

NVML_SCRIPT = """
import json, os, pynvml
pynvml.nvmlInit()
gpus = []
for i in range(pynvml.nvmlDeviceGetCount()):
    h = pynvml.nvmlDeviceGetHandleByIndex(i)
    gpus.append({"name": pynvml.nvmlDeviceGetName(h), "uuid": pynvml.nvmlDeviceGetUUID(h)})
lib = [l.split()[-1] for l in open("/proc/self/maps") if "libnvidia-ml" in l][0]
print(json.dumps({"gpus": gpus, "lib": lib}))
"""


@pytest.fixture
def gpu_bolt(bolt: Bolt, nvsim_gpus, tmp_path: Path) -> Bolt:
    env = {**bolt.env, **{k: nvsim_gpus.env[k] for k in ("NVSIM_STATE", "LD_LIBRARY_PATH")}}
    env["BOLT_CDI_SPEC_DIRS"] = str(tmp_path / "cdi")
    gb = replace(bolt, env=env)
    gb.ok("gpu", "cdi", "generate", "--output", str(tmp_path / "cdi" / "nvidia.json"))
    return gb


def test_cdi_spec_points_at_nvsim(gpu_bolt: Bolt, nvsim_gpus, tmp_path: Path) -> None:
    spec = json.loads((tmp_path / "cdi" / "nvidia.json").read_text())
    assert spec["kind"] == "nvidia.com/gpu"
    names = {d["name"] for d in spec["devices"]}
    host = json.loads(gpu_bolt.ok("gpu", "list", "--json"))
    assert names == {"all", "nvsim-state-rw"} | {str(g["index"]) for g in host} | {
        g["uuid"] for g in host
    }
    state = str(nvsim_gpus.state.resolve())
    nodes = {n["path"]: n["hostPath"] for n in spec["containerEdits"]["deviceNodes"]}
    assert nodes["/dev/nvidiactl"] == f"{state}/dev/nvidiactl"
    mounts = {m["containerPath"]: m["hostPath"] for m in spec["containerEdits"]["mounts"]}
    assert mounts["/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1"].startswith(state)
    assert mounts["/run/nvsim/state"] == f"{state}/state"
    assert "NVSIM_STATE=/run/nvsim" in spec["containerEdits"]["env"]
    assert sorted(gpu_bolt.ok("gpu", "cdi", "list").split())[0] == "nvidia.com/gpu=0"


def test_gpus_all_shows_the_host_gpus_to_nvidia_ml_py_inside(
    gpu_bolt: Bolt, tmp_path: Path
) -> None:
    rootfs = add_python(make_busybox_rootfs(tmp_path / "pyroot"))
    gpu_bolt.ok("image", "import", str(rootfs), "-t", "nvml-py:1")
    host = json.loads(gpu_bolt.ok("gpu", "list", "--json"))
    out = gpu_bolt.ok(
        "run", "--rm", "--gpus", "all", "-v", STDLIB_VOLUME, "-e", f"PYTHONPATH={PYLIB}", "nvml-py:1",
        INTERPRETER, "-c", NVML_SCRIPT,
    )  # fmt: skip
    inside = json.loads(out)
    assert inside["gpus"] == [{"name": g["name"], "uuid": g["uuid"]} for g in host]
    assert inside["lib"] == "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1"
    listing = gpu_bolt("run", "--rm", "--gpus", "all", "nvml-py:1", "sh", "-c",
                       "ls /dev/nvidia* /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1; "
                       "dd if=/dev/nvidia0 of=/dev/null count=0 2>&1").stdout  # fmt: skip
    for path in ("/dev/nvidia0", "/dev/nvidia1", "/dev/nvidiactl", "/dev/nvidia-uvm"):
        assert path in listing
    # The device cgroup lets the open through; only the (absent) kernel driver refuses it.
    assert "Operation not permitted" not in listing and "No such device" in listing


def test_gpus_by_index_and_uuid_select_only_those_nodes(gpu_bolt: Bolt) -> None:
    host = json.loads(gpu_bolt.ok("gpu", "list", "--json"))
    by_index = gpu_bolt.ok(
        "run", "--rm", "--gpus", "1", "busybox", "sh", "-c", "ls /dev | grep nvidia[0-9]"
    )
    assert by_index.split() == ["nvidia1"]
    by_uuid = gpu_bolt.ok(
        "run",
        "--rm",
        "--gpus",
        host[0]["uuid"],
        "busybox",
        "sh",
        "-c",
        "ls /dev | grep nvidia[0-9]",
    )
    assert by_uuid.split() == ["nvidia0"]
    missing = gpu_bolt("run", "--rm", "--gpus", "7", "busybox", "true")
    assert missing.returncode == 2 and "nvidia.com/gpu=7" in missing.stderr


def test_gpu_commands_without_a_driver_exit_3(bolt: Bolt) -> None:
    env = {k: v for k, v in bolt.env.items() if k not in ("NVSIM_STATE", "LD_LIBRARY_PATH")}
    proc = replace(bolt, env=env)("gpu", "list")
    assert proc.returncode == 3 and "no NVIDIA driver" in proc.stderr
