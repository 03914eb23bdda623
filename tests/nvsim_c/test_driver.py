"""Driver-level behaviour: finding the state, init refcounting, driver-version gating and
GPUs that fell off the bus."""

from __future__ import annotations

import ctypes
import os
import subprocess
from pathlib import Path

import pynvml
import pytest

from basis.errors import InvalidInput
from nvsim import build, gating, instance, layout
from tests.nvsim_c import fakestate
from tests.nvsim_c.conftest import call
from tests.nvsim_c.fakestate import FakeState


def test_no_state_file_means_no_driver(
    libnvml: ctypes.CDLL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NVSIM_STATE", str(tmp_path / "absent"))
    with pytest.raises(pynvml.NVMLError_DriverNotLoaded):
        pynvml.nvmlInit()


def test_a_file_that_is_not_an_nvsim_state_means_no_driver(
    libnvml: ctypes.CDLL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    st = fakestate.create(tmp_path / "nvsim")
    st.header.layout_version = layout.LAYOUT_VERSION + 1
    monkeypatch.setenv("NVSIM_STATE", str(st.directory))
    with pytest.raises(pynvml.NVMLError_DriverNotLoaded):
        pynvml.nvmlInit()
    st.header.layout_version = layout.LAYOUT_VERSION
    ctypes.memset(ctypes.addressof(st.header), ord("X"), 1)
    with pytest.raises(pynvml.NVMLError_DriverNotLoaded):
        pynvml.nvmlInit()
    st.close()
    (st.directory / "state").write_bytes(b"too short")
    with pytest.raises(pynvml.NVMLError_DriverNotLoaded):
        pynvml.nvmlInit()


def test_calls_before_init_are_uninitialized(libnvml: ctypes.CDLL, fake: FakeState) -> None:
    count = ctypes.c_uint()
    assert libnvml.nvmlDeviceGetCount_v2(ctypes.byref(count)) == pynvml.NVML_ERROR_UNINITIALIZED
    assert libnvml.nvmlShutdown() == pynvml.NVML_ERROR_UNINITIALIZED


def test_init_is_refcounted_and_each_first_init_rereads_the_location(
    libnvml: ctypes.CDLL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = fakestate.create(tmp_path / "one", (fakestate.GEFORCE,))
    three = fakestate.create(tmp_path / "three", (fakestate.GEFORCE,) * 3)
    monkeypatch.setenv("NVSIM_STATE", str(one.directory))
    count = ctypes.c_uint()
    assert libnvml.nvmlInit_v2() == pynvml.NVML_SUCCESS
    assert libnvml.nvmlInitWithFlags(0) == pynvml.NVML_SUCCESS
    monkeypatch.setenv("NVSIM_STATE", str(three.directory))
    assert libnvml.nvmlShutdown() == pynvml.NVML_SUCCESS
    assert libnvml.nvmlDeviceGetCount_v2(ctypes.byref(count)) == pynvml.NVML_SUCCESS
    assert count.value == 1  # still the first instance: one reference is left
    assert libnvml.nvmlShutdown() == pynvml.NVML_SUCCESS
    assert libnvml.nvmlInit_v2() == pynvml.NVML_SUCCESS
    assert libnvml.nvmlDeviceGetCount_v2(ctypes.byref(count)) == pynvml.NVML_SUCCESS
    assert count.value == 3
    assert libnvml.nvmlShutdown() == pynvml.NVML_SUCCESS
    one.close()
    three.close()


def check(code: int) -> None:
    """Raise what pynvml raises for a code (for setters and getters that ignore it)."""
    if code != pynvml.NVML_SUCCESS:
        raise pynvml.NVMLError(code)


@pytest.mark.parametrize(
    ("driver", "missing"),
    [
        ("535.183.01", ["nvmlDeviceGetClockOffsets", "nvmlDeviceGetFanSpeedRPM"]),
        (
            "530.41.03",
            ["nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceSetPowerManagementLimit_v2"],
        ),
        ("525.147.05", ["nvmlDeviceGetCurrentClocksEventReasons"]),
        ("470.256.02", ["nvmlDeviceGetMemoryInfo_v2", "nvmlDeviceGetTargetFanSpeed"]),
    ],
)
def test_functions_newer_than_the_driver_are_not_found(
    nvml: FakeState, driver: str, missing: list[str]
) -> None:
    fakestate.set_driver(nvml, driver)
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    offsets = pynvml.c_nvmlClockOffset_t()
    offsets.version = pynvml.nvmlClockOffset_v1
    power = pynvml.c_nvmlPowerValue_v2_t()
    power.version, power.powerScope, power.powerValueMw = pynvml.nvmlPowerValue_v2, 0, 300_000
    calls = {
        "nvmlDeviceGetClockOffsets": lambda: check(
            call("nvmlDeviceGetClockOffsets", h, ctypes.byref(offsets))
        ),
        "nvmlDeviceGetFanSpeedRPM": lambda: pynvml.nvmlDeviceGetFanSpeedRPM(h),
        "nvmlDeviceGetCurrentClocksEventReasons": lambda: (
            pynvml.nvmlDeviceGetCurrentClocksEventReasons(h)
        ),
        "nvmlDeviceGetMemoryInfo_v2": lambda: pynvml.nvmlDeviceGetMemoryInfo(
            h, version=pynvml.nvmlMemory_v2
        ),
        "nvmlDeviceGetTargetFanSpeed": lambda: pynvml.nvmlDeviceGetTargetFanSpeed(h, 0),
        "nvmlDeviceSetPowerManagementLimit_v2": lambda: check(
            call("nvmlDeviceSetPowerManagementLimit_v2", h, ctypes.byref(power))
        ),
    }
    for name in missing:
        with pytest.raises(pynvml.NVMLError_FunctionNotFound):
            calls[name]()
    # What that driver already had keeps working, under its older name too.
    assert pynvml.nvmlDeviceGetCurrentClocksThrottleReasons(h) == layout.REASON_GPU_IDLE
    assert pynvml.nvmlDeviceGetMemoryInfo(h).total == nvml.gpu(0).mem_total
    assert pynvml.nvmlSystemGetDriverVersion() == driver
    assert nvml.gpu(0).power_limit_mw == 450_000


def test_a_setter_newer_than_the_driver_changes_nothing(nvml: FakeState) -> None:
    fakestate.set_driver(nvml, "550.127.05")
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    info = pynvml.c_nvmlClockOffset_t()
    info.version, info.type, info.pstate = pynvml.nvmlClockOffset_v1, 0, 0
    info.clockOffsetMHz = 150
    assert call("nvmlDeviceSetClockOffsets", h, ctypes.byref(info)) == (
        pynvml.NVML_ERROR_FUNCTION_NOT_FOUND
    )
    assert nvml.gpu(0).pstates[0].gpc_offset_mhz == 0
    # The R470-era VF-offset API is how that driver sets the same offset.
    pynvml.nvmlDeviceSetGpcClkVfOffset(h, 150)
    assert nvml.gpu(0).pstates[0].gpc_offset_mhz == 150
    assert nvml.gpu(0).settings_seq == 1


def test_new_driver_has_every_gated_function(nvml: FakeState) -> None:
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    fakestate.set_driver(nvml, "570.172.08")
    assert pynvml.nvmlDeviceGetFanSpeedRPM(h) == 1068
    info = pynvml.c_nvmlClockOffset_t()
    info.version, info.type, info.pstate = pynvml.nvmlClockOffset_v1, 0, 0
    assert call("nvmlDeviceGetClockOffsets", h, ctypes.byref(info)) == pynvml.NVML_SUCCESS


def test_a_lost_gpu_answers_gpu_is_lost_except_for_identity(nvml: FakeState) -> None:
    nvml.gpu(1).lost = layout.LOST_YES
    lost = pynvml.nvmlDeviceGetHandleByIndex(1)
    assert pynvml.nvmlDeviceGetIndex(lost) == 1
    assert pynvml.nvmlDeviceGetUUID(lost) == nvml.gpu(1).uuid.decode()
    assert pynvml.nvmlDeviceGetPciInfo(lost).bus == 0x41
    for query in (
        pynvml.nvmlDeviceGetName,
        pynvml.nvmlDeviceGetMemoryInfo,
        pynvml.nvmlDeviceGetPowerUsage,
        pynvml.nvmlDeviceGetUtilizationRates,
        pynvml.nvmlDeviceGetComputeRunningProcesses,
    ):
        with pytest.raises(pynvml.NVMLError_GpuIsLost):
            query(lost)
    with pytest.raises(pynvml.NVMLError_GpuIsLost):
        pynvml.nvmlDeviceSetPowerManagementLimit(lost, 300_000)
    assert nvml.gpu(1).power_limit_mw == 450_000
    # The other GPU is unaffected.
    assert pynvml.nvmlDeviceGetPowerUsage(pynvml.nvmlDeviceGetHandleByIndex(0)) == 30412


def test_invalid_handles_and_null_pointers_are_invalid_arguments(nvml: FakeState) -> None:
    bogus = ctypes.c_void_p(0x1000)
    power = ctypes.c_uint()
    assert call("nvmlDeviceGetPowerUsage", bogus, ctypes.byref(power)) == (
        pynvml.NVML_ERROR_INVALID_ARGUMENT
    )
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    assert call("nvmlDeviceGetPowerUsage", h, None) == pynvml.NVML_ERROR_INVALID_ARGUMENT


def test_library_compiles_without_warnings(tmp_path: Path) -> None:
    """The same flags as the build, with every warning shown instead of only errors."""
    build.write_generated(tmp_path)
    sources = sorted(str(p) for p in build.NATIVE_DIR.glob("*.c"))
    proc = subprocess.run(
        [
            "gcc",
            "-shared",
            "-fPIC",
            "-O2",
            "-std=gnu11",
            "-Wall",
            "-Wextra",
            "-Wno-unused-parameter",
            "-Wno-deprecated-declarations",
            f"-I{tmp_path}",
            f"-I{build.fetch_nvml_header().parent}",
            f"-I{build.NATIVE_DIR}",
            "-o",
            os.devnull,
            *sources,
            "-lpthread",
            "-lm",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def _exported(lib: Path) -> set[str]:
    out = subprocess.run(
        ["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True, check=True
    ).stdout
    return {line.split()[-1] for line in out.splitlines() if " T " in line}


def test_each_branch_variant_exports_only_what_that_driver_has() -> None:
    build.build()
    newest = _exported(build.library_path())
    assert set(gating.GATES) <= newest
    for branch in gating.variant_branches():
        exported = _exported(build.library_path(branch))
        hidden = {name for name, first in gating.GATES.items() if first > branch}
        assert exported == newest - hidden, branch
    r535 = _exported(build.library_path(535))
    assert "nvmlDeviceGetTemperatureV" not in r535 and "nvmlDeviceGetTemperature" in r535
    assert "nvmlDeviceGetCurrentClocksEventReasons" in r535
    assert build.library_path(535) == build.library_path(549)  # no gate between them
    assert build.library_path(580) == build.library_path()


def test_the_minimum_branch_and_the_gating_table_agree() -> None:
    assert all(first > gating.MIN_BRANCH for first in gating.GATES.values())
    assert instance.parse_driver("470.256.02").major == 470
    assert instance.parse_driver(f"{gating.MIN_BRANCH}.51.06").cuda_version == 11000
    with pytest.raises(InvalidInput, match="older than R450"):
        instance.parse_driver("440.100")


def test_nvidia_smi_compiles_without_warnings(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["gcc", "-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter",
         "-Wno-deprecated-declarations", f"-I{build.write_generated(tmp_path)}",
         f"-I{build.fetch_nvml_header().parent}", f"-I{build.SMI_DIR}", "-o", os.devnull,
         *sorted(str(p) for p in build.SMI_DIR.glob("*.c")), "-ldl"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
