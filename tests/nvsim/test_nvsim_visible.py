"""NVML sees the GPUs whose device nodes are present, as with the real driver (a container
given one GPU's /dev/nvidiaN sees only that GPU, numbered 0)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.nvsim, pytest.mark.root]

LIST = """
import json, pynvml
pynvml.nvmlInit()
out = []
for i in range(pynvml.nvmlDeviceGetCount()):
    h = pynvml.nvmlDeviceGetHandleByIndex(i)
    out.append([pynvml.nvmlDeviceGetIndex(h), pynvml.nvmlDeviceGetUUID(h)])
missing = None
try:
    pynvml.nvmlDeviceGetHandleByUUID(OTHER)
except pynvml.NVMLError as err:
    missing = str(err)
print(json.dumps({"gpus": out, "other": missing}))
"""


def listing(env: dict[str, str], other_uuid: str) -> dict:
    code = LIST.replace("OTHER", repr(other_uuid))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_only_gpus_with_device_nodes_are_enumerated(nvsim_gpus):
    if os.geteuid() != 0:
        pytest.fail("needs root: the instance's device nodes are made with mknod")
    uuids = [uuid for _, uuid in listing(nvsim_gpus.env, "GPU-none")["gpus"]]
    assert len(uuids) == 2
    every = listing(nvsim_gpus.env, uuids[1])
    assert every == {"gpus": [[0, uuids[0]], [1, uuids[1]]], "other": None}
    (nvsim_gpus.state / "dev" / "nvidia0").unlink()
    only_second = listing(nvsim_gpus.env, uuids[0])
    assert only_second["gpus"] == [[0, uuids[1]]]
    assert only_second["other"] == "Not Found"
