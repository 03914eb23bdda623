"""The library against a running `nvsim up` instance: the model's faults and driver version
reach NVML clients, and an installed copy finds its state without any environment."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pynvml
import pytest

from tests.conftest import NvsimInstance

pytestmark = pytest.mark.nvsim


def test_injected_xid_reaches_an_event_waiter(nvsim_in_process: NvsimInstance) -> None:
    h = pynvml.nvmlDeviceGetHandleByIndex(1)
    events = pynvml.nvmlEventSetCreate()
    try:
        pynvml.nvmlDeviceRegisterEvents(h, pynvml.nvmlEventTypeXidCriticalError, events)
        with pytest.raises(pynvml.NVMLError_Timeout):
            pynvml.nvmlEventSetWait_v2(events, 50)
        fault = threading.Timer(0.2, nvsim_in_process.run, ("fault", "1", "xid", "43"))
        fault.start()
        got = pynvml.nvmlEventSetWait_v2(events, 10_000)
        fault.join()
        assert got.eventType == pynvml.nvmlEventTypeXidCriticalError
        assert got.eventData == 43
        assert pynvml.nvmlDeviceGetIndex(got.device) == 1
    finally:
        pynvml.nvmlEventSetFree(events)


def test_a_gpu_that_fell_off_the_bus_is_lost_until_reset(nvsim_in_process: NvsimInstance) -> None:
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    uuid = pynvml.nvmlDeviceGetUUID(h)
    nvsim_in_process.run("fault", "0", "lost")
    with pytest.raises(pynvml.NVMLError_GpuIsLost):
        pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU)
    assert pynvml.nvmlDeviceGetUUID(h) == uuid
    nvsim_in_process.run("reset", "0")
    assert pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU) > 0


CLIENT = """
import json, pynvml as N
N.nvmlInit()
h = N.nvmlDeviceGetHandleByIndex(0)
out = {"driver": N.nvmlSystemGetDriverVersion(), "name": N.nvmlDeviceGetName(h)}
try:
    N.nvmlDeviceGetCurrentClocksEventReasons(h)
    out["event_reasons"] = "found"
except N.NVMLError_FunctionNotFound:
    out["event_reasons"] = "not found"
out["throttle_reasons"] = N.nvmlDeviceGetCurrentClocksThrottleReasons(h)
print(json.dumps(out))
"""


@pytest.mark.parametrize(
    "nvsim_gpus",
    [{"gpus": 1, "model": "rtx4090", "args": ["--driver", "525.147.05"]}],
    indirect=True,
)
def test_installed_copy_finds_its_state_and_reports_the_pretended_driver(
    nvsim_gpus: NvsimInstance,
) -> None:
    env = dict(nvsim_gpus.env)
    env.pop("NVSIM_STATE")  # only LD_LIBRARY_PATH=<state>/lib, as in a container
    proc = subprocess.run(
        [sys.executable, "-c", CLIENT], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["driver"] == "525.147.05"
    assert out["name"] == "NVIDIA GeForce RTX 4090"
    assert out["event_reasons"] == "not found"  # arrived in R535
    assert isinstance(out["throttle_reasons"], int)
