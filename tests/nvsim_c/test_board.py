"""The common getters a real driver answers (board facts, ECC, codecs, accounting, MIG,
NVLink), per-process utilization, and what a client sees when the state changes under it:
an instance going down, a corrupt GPU count."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from pathlib import Path

import pynvml
import pytest

from nvsim import layout
from tests.nvsim_c import fakestate
from tests.nvsim_c.conftest import call
from tests.nvsim_c.fakestate import MIB, FakeState


@pytest.fixture
def boards(
    libnvml: ctypes.CDLL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FakeState, pynvml.c_nvmlDevice_t, pynvml.c_nvmlDevice_t]]:
    """A GeForce (RTX 4090-like) and a datacenter (H100-like) board."""
    st = fakestate.create(tmp_path / "nvsim", (fakestate.GEFORCE, fakestate.DATACENTER))
    st.gpu(0).irq, st.gpu(1).irq = 130, 131
    monkeypatch.setenv("NVSIM_STATE", str(st.directory))
    pynvml.nvmlInit()
    try:
        yield st, pynvml.nvmlDeviceGetHandleByIndex(0), pynvml.nvmlDeviceGetHandleByIndex(1)
    finally:
        pynvml.nvmlShutdown()
        st.close()


def test_board_facts(
    boards: tuple[FakeState, pynvml.c_nvmlDevice_t, pynvml.c_nvmlDevice_t],
) -> None:
    _, geforce, h100 = boards
    bar1 = pynvml.nvmlDeviceGetBAR1MemoryInfo(h100)
    assert bar1.bar1Total == 131072 * MIB and bar1.bar1Used + bar1.bar1Free == bar1.bar1Total
    assert pynvml.nvmlDeviceGetMemoryBusWidth(geforce) == 384
    assert pynvml.nvmlDeviceGetMemoryBusWidth(h100) == 5120
    assert pynvml.nvmlDeviceGetNumGpuCores(geforce) == 16384
    assert pynvml.nvmlDeviceGetIrqNum(h100) == 131
    assert (
        pynvml.nvmlDeviceGetPcieLinkMaxSpeed(geforce) == pynvml.NVML_PCIE_LINK_MAX_SPEED_16000MBPS
    )
    assert pynvml.nvmlDeviceGetPcieLinkMaxSpeed(h100) == pynvml.NVML_PCIE_LINK_MAX_SPEED_32000MBPS
    assert pynvml.nvmlDeviceGetMultiGpuBoard(geforce) == 0
    assert pynvml.nvmlDeviceGetInforomImageVersion(geforce) == "G002.0000.00.03"
    assert pynvml.nvmlDeviceGetInforomVersion(h100, pynvml.NVML_INFOROM_ECC) == "7.16"
    with pytest.raises(pynvml.NVMLError_NotSupported):
        pynvml.nvmlDeviceGetInforomVersion(geforce, pynvml.NVML_INFOROM_POWER)
    checksum = pynvml.nvmlDeviceGetInforomConfigurationChecksum(geforce)
    assert checksum == pynvml.nvmlDeviceGetInforomConfigurationChecksum(geforce) != 0
    for probe in (
        pynvml.nvmlDeviceGetCurrentGpuOperationMode,
        pynvml.nvmlDeviceGetRetiredPagesPendingStatus,
    ):
        with pytest.raises(pynvml.NVMLError_NotSupported):
            probe(h100)
    with pytest.raises(pynvml.NVMLError_NotSupported):
        pynvml.nvmlDeviceGetAutoBoostedClocksEnabled(geforce)
    assert pynvml.nvmlDeviceGetAccountingMode(geforce) == pynvml.NVML_FEATURE_DISABLED
    assert pynvml.nvmlDeviceGetAccountingBufferSize(geforce) == 4000
    assert pynvml.nvmlDeviceGetBusType(h100) == pynvml.NVML_BUS_TYPE_PCIE
    assert pynvml.nvmlDeviceGetHostVgpuMode(h100) == pynvml.NVML_HOST_VGPU_MODE_NON_SRIOV


def test_ecc_as_each_board_answers(
    boards: tuple[FakeState, pynvml.c_nvmlDevice_t, pynvml.c_nvmlDevice_t],
) -> None:
    st, geforce, h100 = boards
    on, off = pynvml.NVML_FEATURE_ENABLED, pynvml.NVML_FEATURE_DISABLED
    assert pynvml.nvmlDeviceGetEccMode(h100) == [on, on]
    assert pynvml.nvmlDeviceGetDefaultEccMode(h100) == [on]  # pynvml returns a list
    assert pynvml.nvmlDeviceGetEccMode(geforce) == [off, off]  # ECC memory, ECC off
    unc, volatile = pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, pynvml.NVML_VOLATILE_ECC
    assert pynvml.nvmlDeviceGetTotalEccErrors(h100, unc, volatile) == 0
    assert pynvml.nvmlDeviceGetMemoryErrorCounter(h100, unc, volatile, 0) == 0
    assert pynvml.nvmlDeviceGetRemappedRows(h100) == (0, 0, 0, 0)
    assert pynvml.nvmlDeviceGetRowRemapperHistogram(h100).max > 0
    with pytest.raises(pynvml.NVMLError_NotSupported):
        pynvml.nvmlDeviceGetTotalEccErrors(geforce, unc, volatile)
    with pytest.raises(pynvml.NVMLError_NotSupported):
        pynvml.nvmlDeviceGetRemappedRows(geforce)
    st.gpu(0).ecc_mode = layout.ECC_MODE_NONE  # an RTX 3060: no ECC memory at all
    with pytest.raises(pynvml.NVMLError_NotSupported):
        pynvml.nvmlDeviceGetEccMode(geforce)


def test_codecs_mig_and_nvlink(
    boards: tuple[FakeState, pynvml.c_nvmlDevice_t, pynvml.c_nvmlDevice_t],
) -> None:
    st, geforce, h100 = boards
    st.gpu(1).util_dec = 12
    assert pynvml.nvmlDeviceGetDecoderUtilization(h100) == [12, 167000]  # NVDEC on H100
    with pytest.raises(pynvml.NVMLError_NotSupported):
        pynvml.nvmlDeviceGetEncoderUtilization(h100)  # no NVENC on H100
    assert pynvml.nvmlDeviceGetJpgUtilization(h100)[0] == 0
    with pytest.raises(pynvml.NVMLError_NotSupported):
        pynvml.nvmlDeviceGetJpgUtilization(geforce)
    assert pynvml.nvmlDeviceGetOfaUtilization(geforce)[0] == 0
    assert pynvml.nvmlDeviceGetEncoderStats(geforce) == (0, 0, 0)
    assert pynvml.nvmlDeviceGetEncoderSessions(geforce) == []
    assert pynvml.nvmlDeviceGetFBCStats(geforce).sessionsCount == 0
    assert pynvml.nvmlDeviceGetMigMode(h100) == [pynvml.NVML_DEVICE_MIG_DISABLE] * 2
    assert pynvml.nvmlDeviceGetMaxMigDeviceCount(h100) == 7
    with pytest.raises(pynvml.NVMLError_NotSupported):
        pynvml.nvmlDeviceGetMigMode(geforce)
    links = [pynvml.nvmlDeviceGetNvLinkState(h100, link) for link in range(18)]
    assert links == [pynvml.NVML_FEATURE_ENABLED] * 18
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceGetNvLinkState(h100, 18)
    count = pynvml.nvmlDeviceGetFieldValues(h100, [pynvml.NVML_FI_DEV_NVLINK_LINK_COUNT])[0]
    assert (count.nvmlReturn, count.value.uiVal) == (0, 18)
    with pytest.raises(pynvml.NVMLError_NotSupported):
        pynvml.nvmlDeviceGetNvLinkState(geforce, 0)


def test_process_utilization_follows_each_process_load(
    boards: tuple[FakeState, pynvml.c_nvmlDevice_t, pynvml.c_nvmlDevice_t],
) -> None:
    st, geforce, _ = boards
    g = st.gpu(0)
    st.header.tick_us = 5_000_000
    with pytest.raises(pynvml.NVMLError_NotFound):  # nothing holds load yet
        pynvml.nvmlDeviceGetProcessUtilization(geforce, 0)
    for slot, (pid, util) in enumerate(((4242, 70), (4343, 20), (4444, 0))):
        p = g.procs[slot]
        p.pid, p.kind, p.used_bytes, p.sm_util = pid, layout.PROC_COMPUTE, MIB, util
    samples = pynvml.nvmlDeviceGetProcessUtilization(geforce, 0)
    assert [(s.pid, s.smUtil, s.memUtil, s.timeStamp) for s in samples] == [
        (4242, 70, 42, 5_000_000),
        (4343, 20, 12, 5_000_000),
    ]
    with pytest.raises(pynvml.NVMLError_NotFound):  # no sample newer than the last seen
        pynvml.nvmlDeviceGetProcessUtilization(geforce, 5_000_000)


def test_a_client_attached_when_the_instance_goes_down_gets_errors(
    boards: tuple[FakeState, pynvml.c_nvmlDevice_t, pynvml.c_nvmlDevice_t],
) -> None:
    st, geforce, _ = boards
    assert pynvml.nvmlDeviceGetTemperature(geforce, 0) == 42
    st.header.down = 1  # what `nvsim down` does before it removes the file
    with pytest.raises(pynvml.NVMLError_GpuIsLost):
        pynvml.nvmlDeviceGetTemperature(geforce, 0)
    with pytest.raises(pynvml.NVMLError_GpuIsLost):
        pynvml.nvmlDeviceGetName(geforce)
    # A new session finds no driver, as after a real driver unload.
    pynvml.nvmlShutdown()
    with pytest.raises(pynvml.NVMLError_DriverNotLoaded):
        pynvml.nvmlInit()
    st.header.down = 0
    pynvml.nvmlInit()  # for the fixture's shutdown


def test_a_corrupt_gpu_count_is_clamped_at_every_read(
    boards: tuple[FakeState, pynvml.c_nvmlDevice_t, pynvml.c_nvmlDevice_t],
) -> None:
    """No read ever uses an unclamped or stale index, whatever gpu_count says and when.

    Enumeration is fixed at init, as the real driver's is (it also decides there which
    GPUs this process sees, by their device nodes).  So a gpu_count corrupted upwards
    after init adds no GPU: the count stays what init found, and lookups by index, UUID or
    bus id walk only that list.  A gpu_count corrupted upwards before init is clamped to
    the handle table there.  One that shrinks after init is honoured at once (it is what
    every getter checks a handle against): the GPUs past it leave the count, their index,
    UUID and bus id no longer find them, and their handles are refused rather than read.
    """
    st, geforce, h100 = boards
    h100_uuid = pynvml.nvmlDeviceGetUUID(h100)
    h100_bus = pynvml.nvmlDeviceGetPciInfo(h100).busId

    st.header.gpu_count = 4_000_000_000  # grown after init: enumeration stays as init found it
    assert pynvml.nvmlDeviceGetCount() == 2
    assert pynvml.nvmlDeviceGetIndex(pynvml.nvmlDeviceGetHandleByIndex(1)) == 1
    for index in (2, layout.MAX_GPUS - 1, layout.MAX_GPUS, 2**32 - 1):
        with pytest.raises(pynvml.NVMLError_InvalidArgument):
            pynvml.nvmlDeviceGetHandleByIndex(index)
    with pytest.raises(pynvml.NVMLError_NotFound):
        pynvml.nvmlDeviceGetHandleByUUID("GPU-none")
    assert pynvml.nvmlDeviceGetName(h100) == pynvml.nvmlDeviceGetName(h100)  # still readable

    pynvml.nvmlShutdown()  # corrupt before init: the enumeration itself is clamped
    pynvml.nvmlInit()
    assert pynvml.nvmlDeviceGetCount() == layout.MAX_GPUS
    last = pynvml.nvmlDeviceGetHandleByIndex(layout.MAX_GPUS - 1)
    assert pynvml.nvmlDeviceGetIndex(last) == layout.MAX_GPUS - 1
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceGetHandleByIndex(layout.MAX_GPUS)
    with pytest.raises(pynvml.NVMLError_NotFound):
        pynvml.nvmlDeviceGetHandleByUUID("GPU-none")

    st.header.gpu_count = 1  # shrunk after init: GPU 1 and beyond are gone at once
    assert pynvml.nvmlDeviceGetCount() == 1
    assert pynvml.nvmlDeviceGetIndex(pynvml.nvmlDeviceGetHandleByIndex(0)) == 0
    assert pynvml.nvmlDeviceGetTemperature(geforce, 0) == 42
    for index in (1, layout.MAX_GPUS - 1):
        with pytest.raises(pynvml.NVMLError_InvalidArgument):
            pynvml.nvmlDeviceGetHandleByIndex(index)
    for handle in (h100, last):
        with pytest.raises(pynvml.NVMLError_InvalidArgument):
            pynvml.nvmlDeviceGetIndex(handle)
        with pytest.raises(pynvml.NVMLError_InvalidArgument):
            pynvml.nvmlDeviceGetTemperature(handle, 0)
    with pytest.raises(pynvml.NVMLError_NotFound):
        pynvml.nvmlDeviceGetHandleByUUID(h100_uuid)
    with pytest.raises(pynvml.NVMLError_NotFound):
        pynvml.nvmlDeviceGetHandleByPciBusId(h100_bus)

    st.header.gpu_count = 0
    assert pynvml.nvmlDeviceGetCount() == 0
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceGetHandleByIndex(0)
    st.header.gpu_count = 2


def test_a_thread_still_reading_after_shutdown_reads_valid_memory(
    libnvml: ctypes.CDLL, fake: FakeState
) -> None:
    """The mapping outlives nvmlShutdown: a handle used after it answers UNINITIALIZED."""
    assert libnvml.nvmlInit_v2() == 0
    handle = ctypes.c_void_p()
    assert libnvml.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(handle)) == 0
    assert libnvml.nvmlShutdown() == 0
    temp = ctypes.c_uint()
    assert call("nvmlDeviceGetTemperature", handle, 0, ctypes.byref(temp)) == (
        pynvml.NVML_ERROR_UNINITIALIZED
    )
