"""Setters: effective at once for their getters, range-checked, root-only, and nothing
changes when they refuse.  Return codes are read from the C call itself, because several
nvidia-ml-py setters ignore them."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pynvml
import pytest

from nvsim import build, layout
from tests.nvsim_c import fakestate
from tests.nvsim_c.conftest import call
from tests.nvsim_c.fakestate import FakeState

pytestmark = pytest.mark.root  # setters succeed only for root, and the refusal test drops to nobody

OK = pynvml.NVML_SUCCESS
BAD = pynvml.NVML_ERROR_INVALID_ARGUMENT
UNSUPPORTED = pynvml.NVML_ERROR_NOT_SUPPORTED


@pytest.fixture
def h(nvml: FakeState) -> pynvml.c_nvmlDevice_t:
    return pynvml.nvmlDeviceGetHandleByIndex(0)


def offsets_struct(kind: int, pstate: int, offset: int = 0) -> pynvml.c_nvmlClockOffset_t:
    info = pynvml.c_nvmlClockOffset_t()
    info.version = pynvml.nvmlClockOffset_v1
    info.type, info.pstate, info.clockOffsetMHz = kind, pstate, offset
    return info


def set_offset(h: pynvml.c_nvmlDevice_t, kind: int, pstate: int, offset: int) -> int:
    return call("nvmlDeviceSetClockOffsets", h, ctypes.byref(offsets_struct(kind, pstate, offset)))


def get_offset(h: pynvml.c_nvmlDevice_t, kind: int, pstate: int) -> pynvml.c_nvmlClockOffset_t:
    info = offsets_struct(kind, pstate)
    assert call("nvmlDeviceGetClockOffsets", h, ctypes.byref(info)) == OK
    return info


def test_power_limit_applies_and_out_of_range_changes_nothing(
    nvml: FakeState, h: pynvml.c_nvmlDevice_t
) -> None:
    g = nvml.gpu(0)
    seq = g.settings_seq
    assert call("nvmlDeviceSetPowerManagementLimit", h, ctypes.c_uint(300_000)) == OK
    assert pynvml.nvmlDeviceGetPowerManagementLimit(h) == 300_000
    assert pynvml.nvmlDeviceGetEnforcedPowerLimit(h) == 300_000
    assert g.power_limit_mw == 300_000 and g.settings_seq == seq + 1
    for wrong in (149_999, 600_001):
        assert call("nvmlDeviceSetPowerManagementLimit", h, ctypes.c_uint(wrong)) == BAD
    assert pynvml.nvmlDeviceGetPowerManagementLimit(h) == 300_000
    assert g.settings_seq == seq + 1

    value = pynvml.c_nvmlPowerValue_v2_t()
    value.version, value.powerScope, value.powerValueMw = pynvml.nvmlPowerValue_v2, 0, 550_000
    assert call("nvmlDeviceSetPowerManagementLimit_v2", h, ctypes.byref(value)) == OK
    assert pynvml.nvmlDeviceGetPowerManagementLimit(h) == 550_000
    value.version = 1
    assert (
        call("nvmlDeviceSetPowerManagementLimit_v2", h, ctypes.byref(value))
        == pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH
    )
    value.version, value.powerScope = pynvml.nvmlPowerValue_v2, pynvml.NVML_POWER_SCOPE_MODULE
    assert call("nvmlDeviceSetPowerManagementLimit_v2", h, ctypes.byref(value)) == UNSUPPORTED


def test_clock_offsets_snap_to_the_step_then_check_the_range(
    nvml: FakeState, h: pynvml.c_nvmlDevice_t
) -> None:
    gfx, mem = pynvml.NVML_CLOCK_GRAPHICS, pynvml.NVML_CLOCK_MEM
    assert set_offset(h, gfx, 0, 107) == OK
    info = get_offset(h, gfx, 0)
    assert (info.clockOffsetMHz, info.minClockOffsetMHz, info.maxClockOffsetMHz) == (
        105,
        -200,
        1000,
    )
    assert set_offset(h, gfx, 0, -8) == OK
    assert get_offset(h, gfx, 0).clockOffsetMHz == -15
    assert set_offset(h, gfx, 2, 997) == OK  # snaps down to 990, inside the range
    assert get_offset(h, gfx, 2).clockOffsetMHz == 990
    assert get_offset(h, gfx, 0).clockOffsetMHz == -15  # per pstate
    assert set_offset(h, mem, 0, 1001) == OK
    assert get_offset(h, mem, 0).clockOffsetMHz == 1002
    assert nvml.gpu(0).pstates[0].mem_offset_mhz == 1002

    # Rejected: snaps outside the range, unsupported pstate, clock without offsets.
    assert set_offset(h, gfx, 0, 1003) == BAD  # 1005 > 1000
    assert set_offset(h, mem, 0, -2002) == BAD
    assert set_offset(h, gfx, 3, 0) == BAD
    assert set_offset(h, pynvml.NVML_CLOCK_VIDEO, 0, 0) == BAD
    assert get_offset(h, gfx, 0).clockOffsetMHz == -15
    wrong = offsets_struct(gfx, 0, 30)
    wrong.version = 2
    assert (
        call("nvmlDeviceSetClockOffsets", h, ctypes.byref(wrong))
        == pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH
    )


def test_deprecated_vf_offsets_work_on_pstate_zero(
    nvml: FakeState, h: pynvml.c_nvmlDevice_t
) -> None:
    pynvml.nvmlDeviceSetGpcClkVfOffset(h, 100)
    assert pynvml.nvmlDeviceGetGpcClkVfOffset(h) == 105
    assert get_offset(h, pynvml.NVML_CLOCK_GRAPHICS, 0).clockOffsetMHz == 105
    pynvml.nvmlDeviceSetMemClkVfOffset(h, 500)
    assert pynvml.nvmlDeviceGetMemClkVfOffset(h) == 500
    assert list(pynvml.nvmlDeviceGetGpcClkMinMaxVfOffset(h)) == [-200, 1000]
    assert list(pynvml.nvmlDeviceGetMemClkMinMaxVfOffset(h)) == [-2000, 6000]
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceSetGpcClkVfOffset(h, 5000)


def test_locked_clocks_validate_their_range(nvml: FakeState, h: pynvml.c_nvmlDevice_t) -> None:
    g = nvml.gpu(0)
    pynvml.nvmlDeviceSetGpuLockedClocks(h, 1000, 2000)
    assert (g.locked_gpc_min, g.locked_gpc_max) == (1000, 2000)
    for lo, hi in ((2000, 1000), (100, 2000), (210, 4000)):
        with pytest.raises(pynvml.NVMLError_InvalidArgument):
            pynvml.nvmlDeviceSetGpuLockedClocks(h, lo, hi)
    assert (g.locked_gpc_min, g.locked_gpc_max) == (1000, 2000)
    pynvml.nvmlDeviceSetGpuLockedClocks(
        h, pynvml.NVML_CLOCK_LIMIT_ID_TDP, pynvml.NVML_CLOCK_LIMIT_ID_UNLIMITED
    )
    assert (g.locked_gpc_min, g.locked_gpc_max) == (2235, 3105)
    pynvml.nvmlDeviceResetGpuLockedClocks(h)
    assert (g.locked_gpc_min, g.locked_gpc_max) == (0, 0)
    pynvml.nvmlDeviceSetMemoryLockedClocks(h, 405, 10501)
    assert (g.locked_mem_min, g.locked_mem_max) == (405, 10501)
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceSetMemoryLockedClocks(h, 405, 20000)
    pynvml.nvmlDeviceResetMemoryLockedClocks(h)
    assert (g.locked_mem_min, g.locked_mem_max) == (0, 0)


def test_fan_control(nvml: FakeState, h: pynvml.c_nvmlDevice_t) -> None:
    manual, auto = pynvml.NVML_FAN_POLICY_MANUAL, pynvml.NVML_FAN_POLICY_TEMPERATURE_CONTINOUS_SW
    assert call("nvmlDeviceSetFanSpeed_v2", h, 0, 80) == OK
    assert pynvml.nvmlDeviceGetTargetFanSpeed(h, 0) == 80
    assert pynvml.nvmlDeviceGetFanControlPolicy_v2(h, 0) == manual
    assert pynvml.nvmlDeviceGetFanControlPolicy_v2(h, 1) == auto
    assert call("nvmlDeviceSetFanSpeed_v2", h, 0, 20) == BAD  # below the 30 % floor
    assert call("nvmlDeviceSetFanSpeed_v2", h, 0, 101) == BAD
    assert call("nvmlDeviceSetFanSpeed_v2", h, 2, 50) == BAD  # no third fan
    assert pynvml.nvmlDeviceGetTargetFanSpeed(h, 0) == 80
    pynvml.nvmlDeviceSetDefaultFanSpeed_v2(h, 0)
    assert pynvml.nvmlDeviceGetFanControlPolicy_v2(h, 0) == auto
    pynvml.nvmlDeviceSetFanControlPolicy(h, 1, manual)
    assert pynvml.nvmlDeviceGetFanControlPolicy_v2(h, 1) == manual
    assert call("nvmlDeviceSetFanControlPolicy", h, 1, 7) == BAD


def test_modes_and_acoustic_target(nvml: FakeState, h: pynvml.c_nvmlDevice_t) -> None:
    pynvml.nvmlDeviceSetPersistenceMode(h, pynvml.NVML_FEATURE_ENABLED)
    assert pynvml.nvmlDeviceGetPersistenceMode(h) == pynvml.NVML_FEATURE_ENABLED
    assert call("nvmlDeviceSetPersistenceMode", h, 5) == BAD
    pynvml.nvmlDeviceSetComputeMode(h, pynvml.NVML_COMPUTEMODE_PROHIBITED)
    assert pynvml.nvmlDeviceGetComputeMode(h) == pynvml.NVML_COMPUTEMODE_PROHIBITED
    assert (
        call("nvmlDeviceSetComputeMode", h, pynvml.NVML_COMPUTEMODE_EXCLUSIVE_THREAD) == UNSUPPORTED
    )
    assert call("nvmlDeviceSetComputeMode", h, 9) == BAD
    acoustic = pynvml.NVML_TEMPERATURE_THRESHOLD_ACOUSTIC_CURR
    pynvml.nvmlDeviceSetTemperatureThreshold(h, acoustic, 85)
    assert pynvml.nvmlDeviceGetTemperatureThreshold(h, acoustic) == 85
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceSetTemperatureThreshold(h, acoustic, 95)
    with pytest.raises(pynvml.NVMLError_NotSupported):
        pynvml.nvmlDeviceSetTemperatureThreshold(h, pynvml.NVML_TEMPERATURE_THRESHOLD_SHUTDOWN, 80)
    assert pynvml.nvmlDeviceGetTemperatureThreshold(h, acoustic) == 85


def test_boards_without_a_feature_refuse_its_setter(
    libnvml: ctypes.CDLL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    st = fakestate.create(tmp_path / "dc", (fakestate.DATACENTER,))
    monkeypatch.setenv("NVSIM_STATE", str(st.directory))
    pynvml.nvmlInit()
    try:
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        assert call("nvmlDeviceSetFanSpeed_v2", h, 0, 80) == UNSUPPORTED
        assert set_offset(h, pynvml.NVML_CLOCK_GRAPHICS, 0, 30) == UNSUPPORTED
        assert st.gpu(0).settings_seq == 0
    finally:
        pynvml.nvmlShutdown()
        st.close()


# ---- non-root callers -------------------------------------------------------------------

_UNPRIVILEGED_CLIENT = r"""
import ctypes, json, sys
lib = ctypes.CDLL(sys.argv[1])
u = ctypes.c_uint
out = {"init": lib.nvmlInit_v2()}
h = ctypes.c_void_p()
lib.nvmlDeviceGetHandleByIndex_v2(u(0), ctypes.byref(h))
power = u()
out["read"] = lib.nvmlDeviceGetPowerManagementLimit(h, ctypes.byref(power))
offset = (ctypes.c_int * 6)((24 | 1 << 24), 0, 0, 30, 0, 0)
value = (u * 3)((12 | 2 << 24), 0, 300000)
temp = ctypes.c_int(85)
out["setters"] = {
    "power": lib.nvmlDeviceSetPowerManagementLimit(h, u(300000)),
    "power_v2": lib.nvmlDeviceSetPowerManagementLimit_v2(h, ctypes.byref(value)),
    "offsets": lib.nvmlDeviceSetClockOffsets(h, ctypes.byref(offset)),
    "gpc_vf": lib.nvmlDeviceSetGpcClkVfOffset(h, ctypes.c_int(30)),
    "mem_vf": lib.nvmlDeviceSetMemClkVfOffset(h, ctypes.c_int(30)),
    "locked": lib.nvmlDeviceSetGpuLockedClocks(h, u(1000), u(2000)),
    "locked_reset": lib.nvmlDeviceResetGpuLockedClocks(h),
    "mem_locked": lib.nvmlDeviceSetMemoryLockedClocks(h, u(405), u(10501)),
    "mem_locked_reset": lib.nvmlDeviceResetMemoryLockedClocks(h),
    "fan": lib.nvmlDeviceSetFanSpeed_v2(h, u(0), u(80)),
    "fan_default": lib.nvmlDeviceSetDefaultFanSpeed_v2(h, u(0)),
    "fan_policy": lib.nvmlDeviceSetFanControlPolicy(h, u(0), u(1)),
    "persistence": lib.nvmlDeviceSetPersistenceMode(h, u(1)),
    "compute": lib.nvmlDeviceSetComputeMode(h, u(2)),
    "acoustic": lib.nvmlDeviceSetTemperatureThreshold(h, u(5), ctypes.byref(temp)),
}
print(json.dumps(out))
"""


@pytest.fixture
def shared_instance(libnvml: ctypes.CDLL) -> Iterator[FakeState]:
    """A state directory others may read, with the library installed in its lib/."""
    top = Path(tempfile.mkdtemp(prefix="nvsim-c-"))
    try:
        top.chmod(0o755)
        st = fakestate.create(top / "nvsim")
        (top / "nvsim").chmod(0o755)
        (top / "nvsim" / "lib").mkdir(mode=0o755)
        shutil.copy2(build.library_path(), top / "nvsim" / "lib" / build.LIB_NAME)
        yield st
        st.close()
    finally:
        shutil.rmtree(top)


def test_unprivileged_setters_are_refused_and_change_nothing(shared_instance: FakeState) -> None:
    before = shared_instance.path.read_bytes()
    env = {k: v for k, v in os.environ.items() if k not in ("NVSIM_STATE", "LD_LIBRARY_PATH")}
    lib = shared_instance.directory / "lib" / build.LIB_NAME
    proc = subprocess.run(
        [
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            sys.executable,
            "-c",
            _UNPRIVILEGED_CLIENT,
            str(lib),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    # Found through <lib dir>/../state, opened read-only, and readable.
    assert result["init"] == OK and result["read"] == OK
    refused = {
        name: code
        for name, code in result["setters"].items()
        if code != pynvml.NVML_ERROR_NO_PERMISSION
    }
    assert refused == {}
    assert shared_instance.path.read_bytes() == before
    assert shared_instance.gpu(0).settings_seq == 0
    assert shared_instance.gpu(0).power_limit_mw == 450_000
    assert shared_instance.gpu(0).features & layout.FEAT_POWER_LIMIT
