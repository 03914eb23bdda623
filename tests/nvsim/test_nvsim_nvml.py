"""End to end: an unmodified pynvml client in another process sees the model move.

The client loads nvsim's libnvidia-ml.so.1 through ``nvsim env``'s LD_LIBRARY_PATH, as any
NVML program would; settings it makes through NVML change what the model does.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import NvsimInstance
from tests.nvsim.helpers import wait_for

pytestmark = pytest.mark.nvsim

FAST = {"gpus": 1, "model": "rtx4090", "args": ["--time-scale", "10"]}

SAMPLE_WHILE_LOADING = """
import json, time, pynvml as N
N.nvmlInit()
h = N.nvmlDeviceGetHandleByIndex(0)
samples = []
for _ in range(12):
    samples.append([N.nvmlDeviceGetTemperature(h, N.NVML_TEMPERATURE_GPU),
                    N.nvmlDeviceGetPowerUsage(h)])
    time.sleep(0.1)
print(json.dumps(samples))
"""

CUT_POWER_LIMIT = """
import ctypes, json, time, pynvml as N
N.nvmlInit()
h = N.nvmlDeviceGetHandleByIndex(0)
def reading():
    return {"clock": N.nvmlDeviceGetClockInfo(h, N.NVML_CLOCK_GRAPHICS),
            "reasons": N.nvmlDeviceGetCurrentClocksEventReasons(h),
            "power_mw": N.nvmlDeviceGetPowerUsage(h)}
before = reading()
rc = N._nvmlGetFunctionPointer("nvmlDeviceSetPowerManagementLimit")(h, ctypes.c_uint(200000))
time.sleep(0.6)
print(json.dumps({"rc": rc, "before": before, "after": reading(),
                  "limit_mw": N.nvmlDeviceGetPowerManagementLimit(h)}))
"""

OVERCLOCK_UNTIL_LOST = """
import ctypes, json, sys, pynvml as N
N.nvmlInit()
h = N.nvmlDeviceGetHandleByIndex(0)
events = N.nvmlEventSetCreate()
N.nvmlDeviceRegisterEvents(h, N.nvmlEventTypeXidCriticalError, events)
info = N.c_nvmlClockOffset_t()
info.version = N.nvmlClockOffset_v1
info.type = N.NVML_CLOCK_GRAPHICS
info.pstate = N.NVML_PSTATE_0
info.clockOffsetMHz = int(sys.argv[1])
rc = N._nvmlGetFunctionPointer("nvmlDeviceSetClockOffsets")(h, ctypes.byref(info))
xids = []
while not xids or xids[-1] != 79:
    xids.append(N.nvmlEventSetWait_v2(events, 10000).eventData)
try:
    N.nvmlDeviceGetTemperature(h, N.NVML_TEMPERATURE_GPU)
    after = "readable"
except N.NVMLError as err:
    after = err.value
print(json.dumps({"rc": rc, "xids": xids, "after": after, "lost_code": N.NVML_ERROR_GPU_IS_LOST}))
"""


def loaded(inst: NvsimInstance) -> None:
    """Put GPU 0 under full load and wait until the model has taken it up."""
    inst.run("load", "0", "100")
    assert wait_for(lambda: inst.status()["gpus"][0]["pstate"] == "P0")


def run_client(inst: NvsimInstance, script: str, *args: str) -> dict | list:
    res = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=inst.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


@pytest.mark.parametrize(
    "nvsim_gpus", [{"gpus": 1, "model": "rtx4090", "args": ["--time-scale", "3"]}], indirect=True
)
def test_nvml_client_sees_load_raise_temperature_and_power(nvsim_gpus: NvsimInstance) -> None:
    idle_temp, idle_power = run_client(nvsim_gpus, SAMPLE_WHILE_LOADING)[-1]
    nvsim_gpus.run("load", "0", "100")
    samples = run_client(nvsim_gpus, SAMPLE_WHILE_LOADING)
    temps = [t for t, _ in samples]
    assert idle_temp <= temps[0] < temps[4] < temps[8] <= temps[-1] + 1  # warming over time
    assert temps[-1] >= idle_temp + 15
    assert idle_power < 30_000 and samples[-1][1] > 300_000


@pytest.mark.parametrize("nvsim_gpus", [FAST], indirect=True)
def test_power_limit_cut_through_nvml_throttles_clocks_with_sw_power_cap(
    nvsim_gpus: NvsimInstance,
) -> None:
    import pynvml

    loaded(nvsim_gpus)
    result = run_client(nvsim_gpus, CUT_POWER_LIMIT)
    assert isinstance(result, dict) and result["rc"] == 0
    before, after = result["before"], result["after"]
    assert not before["reasons"] & pynvml.nvmlClocksEventReasonSwPowerCap
    assert after["reasons"] & pynvml.nvmlClocksEventReasonSwPowerCap
    assert after["clock"] < before["clock"] * 0.8
    assert result["limit_mw"] == 200_000
    assert after["power_mw"] <= 205_000
    assert nvsim_gpus.status()["gpus"][0]["power_limit_w"] == 200


@pytest.mark.parametrize("nvsim_gpus", [FAST], indirect=True)
def test_unstable_overclock_through_nvml_raises_xids_then_the_gpu_is_lost(
    nvsim_gpus: NvsimInstance,
) -> None:
    stable = nvsim_gpus.status()["gpus"][0]["hidden"]["stable_gpc_offset_mhz"]
    loaded(nvsim_gpus)
    result = run_client(nvsim_gpus, OVERCLOCK_UNTIL_LOST, str(stable + 45))
    assert isinstance(result, dict) and result["rc"] == 0
    assert len(result["xids"]) >= 2 and result["xids"][-1] == 79
    assert result["after"] == result["lost_code"]
    assert nvsim_gpus.status()["gpus"][0]["lost"]
    nvsim_gpus.run("reset")
    res = run_client(nvsim_gpus, SAMPLE_WHILE_LOADING)
    assert len(res) == 12  # readable again after the reset


def test_the_daemon_is_no_gpu_process_and_a_load_pid_is_one(
    nvsim_in_process: NvsimInstance,
) -> None:
    import pynvml

    inst = nvsim_in_process
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    inst.run("load", "0", "60")
    assert pynvml.nvmlDeviceGetComputeRunningProcesses(h) == []
    daemon = inst.status()["daemon"]["pid"]
    assert daemon not in [p.pid for p in pynvml.nvmlDeviceGetGraphicsRunningProcesses(h)]
    inst.run("load", "0", "60", "--pid", "4242", "--memory", "512")
    procs = pynvml.nvmlDeviceGetComputeRunningProcesses(h)
    assert [(p.pid, p.usedGpuMemory) for p in procs] == [(4242, 512 * 1024 * 1024)]
    assert wait_for(lambda: _process_util(h) == [(4242, 60)])


def _process_util(h: object) -> list[tuple[int, int]]:
    import pynvml

    try:
        return [(s.pid, s.smUtil) for s in pynvml.nvmlDeviceGetProcessUtilization(h, 0)]
    except pynvml.NVMLError_NotFound:
        return []


HOLD_LOCK = """
import sys, time
from pathlib import Path
from nvsim.state import StateFile
with StateFile.open(Path(sys.argv[1])) as sf, sf.lock():
    print("locked", flush=True)
    time.sleep(0.6)
"""


def test_a_setter_waits_for_a_model_write_in_progress(nvsim_in_process: NvsimInstance) -> None:
    """Setters take the state file's lock, so a two-field write (locked clocks) never lands
    in the middle of a model tick or of an `nvsim` CLI change."""
    import time

    import pynvml

    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(nvsim_in_process.state)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        start = time.monotonic()
        pynvml.nvmlDeviceSetGpuLockedClocks(h, 1000, 1500)
        waited = time.monotonic() - start
    finally:
        holder.wait(timeout=10)
    assert waited > 0.3
    gpu = nvsim_in_process.status()["gpus"][0]
    assert gpu["locked_clocks"]["gpc_mhz"] == [1000, 1500]
