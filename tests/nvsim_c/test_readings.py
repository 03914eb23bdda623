"""Live readings: every getter reports the mapped state, and follows it when it changes."""

from __future__ import annotations

import ctypes
import time

import pynvml
import pytest

from nvsim import layout
from tests.nvsim_c import fakestate
from tests.nvsim_c.conftest import call
from tests.nvsim_c.fakestate import MIB, FakeState


@pytest.fixture
def h(nvml: FakeState) -> pynvml.c_nvmlDevice_t:
    return pynvml.nvmlDeviceGetHandleByIndex(0)


def test_memory_v1_counts_reserved_as_used_and_v2_reports_it_apart(
    nvml: FakeState, h: pynvml.c_nvmlDevice_t
) -> None:
    v1 = pynvml.nvmlDeviceGetMemoryInfo(h)
    assert v1.total == 24564 * MIB
    assert v1.used == (512 + 333) * MIB
    assert v1.free == v1.total - v1.used
    v2 = pynvml.nvmlDeviceGetMemoryInfo(h, version=pynvml.nvmlMemory_v2)
    assert (v2.total, v2.reserved, v2.used) == (24564 * MIB, 333 * MIB, 512 * MIB)
    assert v2.free == (24564 - 333 - 512) * MIB
    wrong = pynvml.c_nvmlMemory_v2_t()
    wrong.version = 1
    assert (
        call("nvmlDeviceGetMemoryInfo_v2", h, ctypes.byref(wrong))
        == pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH
    )


def test_readings_follow_the_model_without_caching(
    nvml: FakeState, h: pynvml.c_nvmlDevice_t
) -> None:
    assert pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU) == 42
    assert pynvml.nvmlDeviceGetPowerUsage(h) == 30412
    g = nvml.gpu(0)
    g.temp_c, g.power_mw, g.util_gpu, g.mem_used = 77.4, 401_000.6, 99, 20_000 * MIB
    g.gpc_mhz, g.pstate = 2745, 0
    assert pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU) == 77
    assert pynvml.nvmlDeviceGetPowerUsage(h) == 401001
    assert pynvml.nvmlDeviceGetUtilizationRates(h).gpu == 99
    assert pynvml.nvmlDeviceGetMemoryInfo(h).used == (20_000 + 333) * MIB
    assert pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_GRAPHICS) == 2745
    assert pynvml.nvmlDeviceGetPerformanceState(h) == 0


def test_utilization_and_codecs(nvml: FakeState, h: pynvml.c_nvmlDevice_t) -> None:
    util = pynvml.nvmlDeviceGetUtilizationRates(h)
    assert (util.gpu, util.memory) == (3, 1)
    assert pynvml.nvmlDeviceGetEncoderUtilization(h)[0] == 7
    assert pynvml.nvmlDeviceGetDecoderUtilization(h)[0] == 9


def test_temperatures_and_thresholds(nvml: FakeState, h: pynvml.c_nvmlDevice_t) -> None:
    temp = pynvml.c_nvmlTemperature_v1_t()
    temp.version = pynvml.nvmlTemperature_v1
    temp.sensorType = pynvml.NVML_TEMPERATURE_GPU
    assert call("nvmlDeviceGetTemperatureV", h, ctypes.byref(temp)) == pynvml.NVML_SUCCESS
    assert temp.temperature == 42
    expected = {
        pynvml.NVML_TEMPERATURE_THRESHOLD_SHUTDOWN: 92,
        pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN: 89,
        pynvml.NVML_TEMPERATURE_THRESHOLD_GPU_MAX: 87,
        pynvml.NVML_TEMPERATURE_THRESHOLD_ACOUSTIC_MIN: 60,
        pynvml.NVML_TEMPERATURE_THRESHOLD_ACOUSTIC_CURR: 83,
        pynvml.NVML_TEMPERATURE_THRESHOLD_ACOUSTIC_MAX: 90,
    }
    for kind, value in expected.items():
        assert pynvml.nvmlDeviceGetTemperatureThreshold(h, kind) == value, kind
    with pytest.raises(pynvml.NVMLError_NotSupported):  # no memory sensor on this board
        pynvml.nvmlDeviceGetTemperatureThreshold(h, pynvml.NVML_TEMPERATURE_THRESHOLD_MEM_MAX)


def test_power_readings_and_limits(nvml: FakeState, h: pynvml.c_nvmlDevice_t) -> None:
    assert pynvml.nvmlDeviceGetTotalEnergyConsumption(h) == 123_456_789
    assert pynvml.nvmlDeviceGetPowerManagementLimit(h) == 450_000
    assert pynvml.nvmlDeviceGetEnforcedPowerLimit(h) == 450_000
    assert pynvml.nvmlDeviceGetPowerManagementDefaultLimit(h) == 450_000
    assert pynvml.nvmlDeviceGetPowerManagementLimitConstraints(h) == [150_000, 600_000]
    assert pynvml.nvmlDeviceGetPowerManagementMode(h) == pynvml.NVML_FEATURE_ENABLED
    assert pynvml.nvmlDeviceGetPowerState(h) == 8


def test_clocks(nvml: FakeState, h: pynvml.c_nvmlDevice_t) -> None:
    current = {
        pynvml.NVML_CLOCK_GRAPHICS: 210,
        pynvml.NVML_CLOCK_SM: 210,
        pynvml.NVML_CLOCK_MEM: 405,
        pynvml.NVML_CLOCK_VIDEO: 555,
    }
    for kind, mhz in current.items():
        assert pynvml.nvmlDeviceGetClockInfo(h, kind) == mhz
        assert pynvml.nvmlDeviceGetClock(h, kind, pynvml.NVML_CLOCK_ID_CURRENT) == mhz
    assert pynvml.nvmlDeviceGetMaxClockInfo(h, pynvml.NVML_CLOCK_GRAPHICS) == 3105
    assert pynvml.nvmlDeviceGetMaxClockInfo(h, pynvml.NVML_CLOCK_MEM) == 10501
    assert pynvml.nvmlDeviceGetMaxCustomerBoostClock(h, pynvml.NVML_CLOCK_GRAPHICS) == 3105
    assert pynvml.nvmlDeviceGetApplicationsClock(h, pynvml.NVML_CLOCK_GRAPHICS) == 2235
    assert pynvml.nvmlDeviceGetDefaultApplicationsClock(h, pynvml.NVML_CLOCK_MEM) == 10501
    assert pynvml.nvmlDeviceGetSupportedMemoryClocks(h) == [10501, 10251, 810, 405]
    graphics = pynvml.nvmlDeviceGetSupportedGraphicsClocks(h, 810)
    assert graphics[0] == 2070 and graphics[-1] >= 210 and graphics == sorted(graphics)[::-1]
    with pytest.raises(pynvml.NVMLError_NotFound):
        pynvml.nvmlDeviceGetSupportedGraphicsClocks(h, 1234)
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceGetClockInfo(h, 7)


def test_performance_states(nvml: FakeState, h: pynvml.c_nvmlDevice_t) -> None:
    assert pynvml.nvmlDeviceGetSupportedPerformanceStates(h) == [0, 2, 5, 8]
    assert list(pynvml.nvmlDeviceGetMinMaxClockOfPState(h, pynvml.NVML_CLOCK_GRAPHICS, 5)) == [
        210,
        2070,
    ]
    assert list(pynvml.nvmlDeviceGetMinMaxClockOfPState(h, pynvml.NVML_CLOCK_MEM, 8)) == [405, 405]
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceGetMinMaxClockOfPState(h, pynvml.NVML_CLOCK_GRAPHICS, 3)


def test_clocks_event_reasons_under_both_names(nvml: FakeState, h: pynvml.c_nvmlDevice_t) -> None:
    nvml.gpu(0).reasons = layout.REASON_SW_POWER_CAP | layout.REASON_SW_THERMAL
    want = pynvml.nvmlClocksEventReasonSwPowerCap | pynvml.nvmlClocksEventReasonSwThermalSlowdown
    assert pynvml.nvmlDeviceGetCurrentClocksEventReasons(h) == want
    assert pynvml.nvmlDeviceGetCurrentClocksThrottleReasons(h) == want
    assert pynvml.nvmlDeviceGetSupportedClocksEventReasons(h) == layout.SUPPORTED_REASONS
    assert pynvml.nvmlDeviceGetSupportedClocksThrottleReasons(h) == layout.SUPPORTED_REASONS


def test_pcie(nvml: FakeState, h: pynvml.c_nvmlDevice_t) -> None:
    assert pynvml.nvmlDeviceGetCurrPcieLinkGeneration(h) == 1
    assert pynvml.nvmlDeviceGetCurrPcieLinkWidth(h) == 16
    assert pynvml.nvmlDeviceGetMaxPcieLinkGeneration(h) == 4
    assert pynvml.nvmlDeviceGetGpuMaxPcieLinkGeneration(h) == 4
    assert pynvml.nvmlDeviceGetMaxPcieLinkWidth(h) == 16
    assert pynvml.nvmlDeviceGetPcieThroughput(h, pynvml.NVML_PCIE_UTIL_TX_BYTES) == 1200
    assert pynvml.nvmlDeviceGetPcieThroughput(h, pynvml.NVML_PCIE_UTIL_RX_BYTES) == 3400
    assert pynvml.nvmlDeviceGetPcieReplayCounter(h) == 0
    assert pynvml.nvmlDeviceGetPcieSpeed(h) == 2500


def test_fan_readings(nvml: FakeState, h: pynvml.c_nvmlDevice_t) -> None:
    assert pynvml.nvmlDeviceGetNumFans(h) == 2
    assert pynvml.nvmlDeviceGetFanSpeed(h) == 36
    assert pynvml.nvmlDeviceGetFanSpeed_v2(h, 1) == 36
    assert pynvml.nvmlDeviceGetTargetFanSpeed(h, 0) == 36
    assert pynvml.nvmlDeviceGetFanSpeedRPM(h) == 1068
    nvml.gpu(0).fans[1].rpm = 2000
    rpm = pynvml.c_nvmlFanSpeedInfo_t()
    rpm.version, rpm.fan = pynvml.nvmlFanSpeedInfo_v1, 1
    assert call("nvmlDeviceGetFanSpeedRPM", h, ctypes.byref(rpm)) == pynvml.NVML_SUCCESS
    assert rpm.speed == 2000
    assert list(pynvml.nvmlDeviceGetMinMaxFanSpeed(h)) == [30, 100]
    assert (
        pynvml.nvmlDeviceGetFanControlPolicy_v2(h, 0)
        == pynvml.NVML_FAN_POLICY_TEMPERATURE_CONTINOUS_SW
    )
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceGetFanSpeed_v2(h, 2)


def test_modes_and_probes(nvml: FakeState, h: pynvml.c_nvmlDevice_t) -> None:
    assert pynvml.nvmlDeviceGetPersistenceMode(h) == pynvml.NVML_FEATURE_DISABLED
    assert pynvml.nvmlDeviceGetComputeMode(h) == pynvml.NVML_COMPUTEMODE_DEFAULT
    assert pynvml.nvmlDeviceGetDisplayMode(h) == pynvml.NVML_FEATURE_DISABLED
    assert pynvml.nvmlDeviceGetDisplayActive(h) == pynvml.NVML_FEATURE_DISABLED
    assert int(pynvml.nvmlDeviceIsMigDeviceHandle(h).value) == 0
    assert pynvml.nvmlDeviceGetMaxMigDeviceCount(h) == 0
    assert pynvml.nvmlDeviceGetVirtualizationMode(h) == pynvml.NVML_GPU_VIRTUALIZATION_MODE_NONE
    # An RTX 4090 has ECC-capable memory with ECC off: the mode reads, the counters do not.
    assert pynvml.nvmlDeviceGetEccMode(h) == [pynvml.NVML_FEATURE_DISABLED] * 2
    for probe in (
        pynvml.nvmlDeviceGetMigMode,
        pynvml.nvmlDeviceGetGpuInstanceId,
        pynvml.nvmlDeviceGetComputeInstanceId,
    ):
        with pytest.raises(pynvml.NVMLError_NotSupported):
            probe(h)
    with pytest.raises(pynvml.NVMLError_NotSupported):
        pynvml.nvmlDeviceGetNvLinkState(h, 0)
    with pytest.raises(pynvml.NVMLError_NotSupported):
        pynvml.nvmlDeviceGetMigDeviceHandleByIndex(h, 0)
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(h)
    with pytest.raises(pynvml.NVMLError_NotSupported):
        pynvml.nvmlDeviceGetTotalEccErrors(h, 0, 0)


def test_datacenter_board_lacks_fans_codecs_and_offsets(
    libnvml: ctypes.CDLL, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    st = fakestate.create(tmp_path / "dc", (fakestate.DATACENTER,))
    monkeypatch.setenv("NVSIM_STATE", str(st.directory))
    pynvml.nvmlInit()
    try:
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        assert pynvml.nvmlDeviceGetName(h) == "NVIDIA H100 80GB HBM3"
        for unsupported in (
            lambda: pynvml.nvmlDeviceGetFanSpeed(h),
            lambda: pynvml.nvmlDeviceGetNumFans(h),
            lambda: pynvml.nvmlDeviceGetEncoderUtilization(h),
            lambda: pynvml.nvmlDeviceGetGpcClkVfOffset(h),
            lambda: pynvml.nvmlDeviceGetTemperatureThreshold(
                h, pynvml.NVML_TEMPERATURE_THRESHOLD_ACOUSTIC_CURR
            ),
        ):
            with pytest.raises(pynvml.NVMLError_NotSupported):
                unsupported()
        offsets = pynvml.c_nvmlClockOffset_t()
        offsets.version = pynvml.nvmlClockOffset_v1
        offsets.type, offsets.pstate = pynvml.NVML_CLOCK_GRAPHICS, 0
        assert (
            call("nvmlDeviceGetClockOffsets", h, ctypes.byref(offsets))
            == pynvml.NVML_ERROR_NOT_SUPPORTED
        )
        # What a datacenter board does have.
        assert pynvml.nvmlDeviceGetEccMode(h) == [1, 1]
        assert pynvml.nvmlDeviceGetTotalEccErrors(h, 0, 0) == 0
        assert (
            pynvml.nvmlDeviceGetTemperatureThreshold(h, pynvml.NVML_TEMPERATURE_THRESHOLD_MEM_MAX)
            == 95
        )
    finally:
        pynvml.nvmlShutdown()
        st.close()


def test_field_values_each_with_their_own_status(nvml: FakeState, h: pynvml.c_nvmlDevice_t) -> None:
    ids = [
        pynvml.NVML_FI_DEV_POWER_INSTANT,
        pynvml.NVML_FI_DEV_POWER_AVERAGE,
        pynvml.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION,
        pynvml.NVML_FI_DEV_POWER_CURRENT_LIMIT,
        pynvml.NVML_FI_DEV_POWER_MIN_LIMIT,
        pynvml.NVML_FI_DEV_POWER_MAX_LIMIT,
        pynvml.NVML_FI_DEV_POWER_DEFAULT_LIMIT,
        pynvml.NVML_FI_DEV_TEMPERATURE_SLOWDOWN_TLIMIT,
        pynvml.NVML_FI_DEV_MEMORY_TEMP,  # no memory sensor on this board
        9999,  # no such field
    ]
    before = time.time() * 1e6
    values = pynvml.nvmlDeviceGetFieldValues(h, ids)
    got = {v.fieldId: v for v in values}
    assert got[pynvml.NVML_FI_DEV_POWER_INSTANT].value.uiVal == 30412
    assert got[pynvml.NVML_FI_DEV_POWER_AVERAGE].value.uiVal == 30412
    assert got[pynvml.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION].value.ullVal == 123_456_789
    assert got[pynvml.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION].valueType == (
        pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG
    )
    assert got[pynvml.NVML_FI_DEV_POWER_CURRENT_LIMIT].value.uiVal == 450_000
    assert got[pynvml.NVML_FI_DEV_POWER_MIN_LIMIT].value.uiVal == 150_000
    assert got[pynvml.NVML_FI_DEV_POWER_MAX_LIMIT].value.uiVal == 600_000
    assert got[pynvml.NVML_FI_DEV_POWER_DEFAULT_LIMIT].value.uiVal == 450_000
    assert got[pynvml.NVML_FI_DEV_TEMPERATURE_SLOWDOWN_TLIMIT].value.siVal == 87 - 89
    assert got[pynvml.NVML_FI_DEV_MEMORY_TEMP].nvmlReturn == pynvml.NVML_ERROR_NOT_SUPPORTED
    assert got[9999].nvmlReturn == pynvml.NVML_ERROR_NOT_SUPPORTED
    for fid in ids[:8]:
        assert got[fid].nvmlReturn == pynvml.NVML_SUCCESS, fid
        assert got[fid].timestamp >= before - 1e6
