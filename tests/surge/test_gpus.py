"""The seed's multi-GPU snippet on nvsim: each per-GPU service sees exactly its own GPU
through nvidia-ml-py inside the container; ``gpu.nvidia = true`` alone sees them all."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.bolt.conftest import make_busybox_rootfs
from tests.bolt.pyrootfs import INTERPRETER, PYLIB, STDLIB_VOLUME, add_python
from tests.bolt.test_gpu import NVML_SCRIPT
from tests.conftest import tool
from tests.surge.conftest import seed_snippets
from tests.surge.project import Project

pytestmark = [pytest.mark.root, pytest.mark.runtime, pytest.mark.nvsim]


def _with_python(snippet: str) -> str:
    """The snippet as written, each service also given the interpreter's standard library
    (bind-mounted read-only, as the Bolt GPU tests do) and nvidia-ml-py's path."""
    extra = f'volumes = ["{STDLIB_VOLUME}"]\nenv.PYTHONPATH = "{PYLIB}"\n'
    out = []
    for line in snippet.splitlines(keepends=True):
        out.append(line)
        if line.startswith("env.CUDA_VISIBLE_DEVICES"):
            out.append(extra)
    return "".join(out)


def _on_nvsim_with_python(p: Project, nvsim_gpus, tmp_path) -> None:
    """Point the project at nvsim's GPUs through a CDI spec of its own, and import
    ``nvml-py:1``: busybox with a Python that can load pynvml."""
    p.env = {**p.env, **{k: nvsim_gpus.env[k] for k in ("NVSIM_STATE", "LD_LIBRARY_PATH")}}
    p.env["BOLT_CDI_SPEC_DIRS"] = str(tmp_path / "cdi")
    bolt = [tool("bolt"), "--root", str(p.root)]
    subprocess.run(
        [*bolt, "gpu", "cdi", "generate", "--output", str(tmp_path / "cdi" / "nvidia.json")],
        env=p.env,
        check=True,
    )
    rootfs = add_python(make_busybox_rootfs(tmp_path / "pyroot"))
    subprocess.run(
        [*bolt, "image", "import", str(rootfs), "-t", "nvml-py:1"],
        env=p.env,
        check=True,
        capture_output=True,
    )


def test_seed_multi_gpu_services_each_see_their_own_gpu(
    surge_project: Project, nvsim_gpus, tmp_path
):
    p = surge_project
    _on_nvsim_with_python(p, nvsim_gpus, tmp_path)
    context = p.directory / "containers" / "gpu-manager"
    context.mkdir(parents=True)
    (context / "Dockerfile.bolt").write_text(
        f"FROM nvml-py:1\nCMD {json.dumps([INTERPRETER, '-c', NVML_SCRIPT, p.marker])}\n"
    )
    snippet = seed_snippets()["multi-gpu"]
    p.file.write_text(f'project = "{p.name}"\n\n' + _with_python(snippet))
    assert p.surge("validate").returncode == 0
    host = json.loads(
        subprocess.run(
            [tool("bolt"), "--root", str(p.root), "gpu", "list", "--json"],
            env=p.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    assert len(host) == 2

    p.surge("up", check=True, timeout=300)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(c["status"] != "exited" for c in p.ps()):
        time.sleep(0.2)
    for index in (0, 1):
        logs = p.surge("logs", f"gpu-manager-{index}", "--no-color", check=True).stdout
        inside = json.loads(logs.split("| ", 1)[1])
        assert inside["gpus"] == [{"name": host[index]["name"], "uuid": host[index]["uuid"]}]
    states = {c["service"]: c for c in p.ps()}
    assert all(states[f"gpu-manager-{i}"]["exit_code"] == 0 for i in (0, 1))

    # the same services by UUID, and with gpu.nvidia = true alone: all GPUs
    by_uuid = f'''project = "{p.name}"
[services.by-uuid]
build = "./containers/gpu-manager"
gpu.nvidia.devices = ["{host[1]["uuid"]}"]
volumes = ["{STDLIB_VOLUME}"]
env.PYTHONPATH = "{PYLIB}"
[services.all]
build = "./containers/gpu-manager"
gpu.nvidia = true
volumes = ["{STDLIB_VOLUME}"]
env.PYTHONPATH = "{PYLIB}"
'''
    p.file.write_text(by_uuid)
    p.surge("up", "--remove-orphans", check=True, timeout=300)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(c["status"] != "exited" for c in p.ps()):
        time.sleep(0.2)
    one = json.loads(p.surge("logs", "by-uuid", "--no-color", check=True).stdout.split("| ", 1)[1])
    assert one["gpus"] == [{"name": host[1]["name"], "uuid": host[1]["uuid"]}]
    every = json.loads(p.surge("logs", "all", "--no-color", check=True).stdout.split("| ", 1)[1])
    assert [g["uuid"] for g in every["gpus"]] == [g["uuid"] for g in host]


DRIVER_SCRIPT = """
import json, os, pynvml
pynvml.nvmlInit()
print(json.dumps({
    "driver": pynvml.nvmlSystemGetDriverVersion(),
    "gpus": pynvml.nvmlDeviceGetCount(),
    "wanted": os.environ.get("NVIDIA_DRIVER_VERSION"),
    "staged": sorted(os.listdir("/drivers")),
}))
"""


def test_seed_driver_test_snippet_comes_up(surge_project: Project, nvsim_gpus, tmp_path):
    """The seed's driver-test service, as written (plus the interpreter, as above): it
    builds, sees every GPU and the driver through NVML, its ``/drivers`` volume and its
    ``NVIDIA_DRIVER_VERSION``, and exits 0."""
    p = surge_project
    _on_nvsim_with_python(p, nvsim_gpus, tmp_path)
    context = p.directory / "containers" / "driver-test"
    context.mkdir(parents=True)
    (context / "Dockerfile.bolt").write_text(
        f"FROM nvml-py:1\nCMD {json.dumps([INTERPRETER, '-c', DRIVER_SCRIPT])}\n"
    )
    (p.directory / "test-drivers").mkdir()
    (p.directory / "test-drivers" / "NVIDIA-Linux-x86_64-535.154.05.run").write_text("#!/bin/sh\n")
    snippet = seed_snippets()["driver-test"]
    seed_volumes = 'volumes = ["./test-drivers:/drivers"]'
    assert seed_volumes in snippet
    snippet = snippet.replace(
        seed_volumes,
        f'volumes = ["./test-drivers:/drivers", "{STDLIB_VOLUME}"]\nenv.PYTHONPATH = "{PYLIB}"',
    )
    p.file.write_text(f'project = "{p.name}"\n\n' + snippet)
    assert p.surge("validate").returncode == 0
    p.surge("up", check=True, timeout=300)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(c["status"] != "exited" for c in p.ps()):
        time.sleep(0.2)
    state = {c["service"]: c for c in p.ps()}["driver-test"]
    assert state["exit_code"] == 0, p.surge("logs", "driver-test", "--no-color").stdout
    logs = p.surge("logs", "driver-test", "--no-color", check=True).stdout
    inside = json.loads(logs.split("| ", 1)[1])
    host = json.loads(nvsim_gpus.nvctl("gpu", "list", "--json", check=True).stdout)
    assert inside == {
        "driver": host["driver"]["driver_version"],
        "gpus": 2,
        "wanted": "535.154.05",
        "staged": ["NVIDIA-Linux-x86_64-535.154.05.run"],
    }
