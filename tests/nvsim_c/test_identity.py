"""Enumeration and identity: what pynvml sees of each GPU is what the state file holds."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pynvml
import pytest

from tests.nvsim_c import fakestate
from tests.nvsim_c.conftest import call
from tests.nvsim_c.fakestate import FakeState


def test_count_and_handles_by_index_match_the_state(nvml: FakeState) -> None:
    assert pynvml.nvmlDeviceGetCount() == 2
    h0 = pynvml.nvmlDeviceGetHandleByIndex(0)
    h1 = pynvml.nvmlDeviceGetHandleByIndex(1)
    assert pynvml.nvmlDeviceGetIndex(h0) == 0
    assert pynvml.nvmlDeviceGetIndex(h1) == 1
    # Handles are stable pointers: asking twice gives the same one.
    assert (
        ctypes.cast(h0, ctypes.c_void_p).value
        == ctypes.cast(pynvml.nvmlDeviceGetHandleByIndex(0), ctypes.c_void_p).value
    )
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceGetHandleByIndex(2)


def test_lookup_by_uuid_serial_and_every_pci_bus_id_form(nvml: FakeState) -> None:
    g1 = nvml.gpu(1)
    uuid = g1.uuid.decode()
    assert pynvml.nvmlDeviceGetIndex(pynvml.nvmlDeviceGetHandleByUUID(uuid)) == 1
    # A GeForce board reports no serial number, so no GeForce is found by one.
    with pytest.raises(pynvml.NVMLError_NotFound):
        pynvml.nvmlDeviceGetHandleBySerial(g1.serial.decode())
    for bus_id in ("00000000:41:00.0", "0000:41:00.0", "41:00.0", "0000:41:00.0".lower()):
        handle = pynvml.nvmlDeviceGetHandleByPciBusId(bus_id)
        assert pynvml.nvmlDeviceGetIndex(handle) == 1, bus_id
    assert pynvml.nvmlDeviceGetIndex(pynvml.nvmlDeviceGetHandleByPciBusId("0000:01:00.0")) == 0
    with pytest.raises(pynvml.NVMLError_NotFound):
        pynvml.nvmlDeviceGetHandleByUUID("GPU-00000000-0000-0000-0000-000000000000")
    with pytest.raises(pynvml.NVMLError_NotFound):
        pynvml.nvmlDeviceGetHandleByPciBusId("0000:02:00.0")
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceGetHandleByPciBusId("not a bus id")


def test_static_identity_fields(nvml: FakeState) -> None:
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    g = nvml.gpu(0)
    assert pynvml.nvmlDeviceGetName(h) == "NVIDIA GeForce RTX 4090"
    assert pynvml.nvmlDeviceGetUUID(h) == g.uuid.decode()
    with pytest.raises(pynvml.NVMLError_NotSupported):  # as on a real GeForce board
        pynvml.nvmlDeviceGetSerial(h)
    assert pynvml.nvmlDeviceGetVbiosVersion(h) == "95.02.18.80.5F"
    assert pynvml.nvmlDeviceGetBoardPartNumber(h) == "900-1G136-2530-000"
    assert pynvml.nvmlDeviceGetBrand(h) == pynvml.NVML_BRAND_GEFORCE
    assert pynvml.nvmlDeviceGetArchitecture(h) == pynvml.NVML_DEVICE_ARCH_ADA
    assert pynvml.nvmlDeviceGetMinorNumber(h) == 0
    assert pynvml.nvmlDeviceGetBoardId(h) == 0x100
    assert pynvml.nvmlDeviceGetCudaComputeCapability(h) == (8, 9)


def test_system_versions(nvml: FakeState) -> None:
    assert pynvml.nvmlSystemGetDriverVersion() == "575.64.03"
    assert pynvml.nvmlSystemGetNVMLVersion() == "12.575.64.03"
    assert pynvml.nvmlSystemGetCudaDriverVersion() == 12090
    assert pynvml.nvmlSystemGetCudaDriverVersion_v2() == 12090


def test_short_buffer_is_insufficient_size(nvml: FakeState) -> None:
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    buf = ctypes.create_string_buffer(8)
    assert (
        call("nvmlDeviceGetName", h, buf, ctypes.c_uint(8)) == pynvml.NVML_ERROR_INSUFFICIENT_SIZE
    )
    assert (
        call("nvmlDeviceGetName", h, None, ctypes.c_uint(96)) == pynvml.NVML_ERROR_INVALID_ARGUMENT
    )


def test_pci_info_in_every_version(nvml: FakeState) -> None:
    h = pynvml.nvmlDeviceGetHandleByIndex(1)
    info = pynvml.nvmlDeviceGetPciInfo(h)  # _v3
    assert info.busId == "00000000:41:00.0"
    assert info.busIdLegacy == "0000:41:00.0"
    assert (info.domain, info.bus, info.device) == (0, 0x41, 0)
    assert info.pciDeviceId == 0x268410DE
    assert info.pciSubSystemId == 0x167C10DE

    # Versions 1 and 2 are 52 bytes long, with a 16-byte bus id in the legacy form; the
    # library must not write past them (test_struct_canaries checks every entry point).
    for symbol in ("nvmlDeviceGetPciInfo", "nvmlDeviceGetPciInfo_v2"):
        raw = (ctypes.c_ubyte * 80)(*([0xEE] * 80))
        assert call(symbol, h, raw) == pynvml.NVML_SUCCESS
        assert bytes(raw[:13]) == b"0000:41:00.0\0", symbol
        assert int.from_bytes(bytes(raw[20:24]), "little") == 0x41
        assert int.from_bytes(bytes(raw[28:32]), "little") == 0x268410DE
        assert bytes(raw[52:]) == b"\xee" * 28

    ext = pynvml.nvmlPciInfoExt_v1_t()
    ext.version = pynvml.nvmlPciInfoExt_v1
    pynvml.nvmlDeviceGetPciInfoExt(h, ctypes.byref(ext))  # pynvml passes it as given
    assert ext.busId == "00000000:41:00.0"
    assert ext.baseClass == 0x03


def test_datacenter_board_has_a_serial_to_find_it_by(
    libnvml: ctypes.CDLL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    st = fakestate.create(tmp_path / "dc", (fakestate.GEFORCE, fakestate.DATACENTER))
    monkeypatch.setenv("NVSIM_STATE", str(st.directory))
    pynvml.nvmlInit()
    try:
        h = pynvml.nvmlDeviceGetHandleByIndex(1)
        serial = pynvml.nvmlDeviceGetSerial(h)
        assert serial == st.gpu(1).serial.decode()
        assert pynvml.nvmlDeviceGetIndex(pynvml.nvmlDeviceGetHandleBySerial(serial)) == 1
    finally:
        pynvml.nvmlShutdown()
        st.close()


def test_legacy_entry_points_are_exported(nvml: FakeState) -> None:
    count = ctypes.c_uint()
    assert call("nvmlDeviceGetCount", ctypes.byref(count)) == pynvml.NVML_SUCCESS
    assert count.value == 2
    handle = pynvml.c_nvmlDevice_t()
    assert call("nvmlDeviceGetHandleByIndex", 1, ctypes.byref(handle)) == pynvml.NVML_SUCCESS
    assert pynvml.nvmlDeviceGetIndex(handle) == 1
    assert (
        call("nvmlDeviceGetHandleByPciBusId", b"01:00.0", ctypes.byref(handle))
        == pynvml.NVML_SUCCESS
    )
    assert pynvml.nvmlDeviceGetIndex(handle) == 0
    # nvmlInit (v1) takes a reference like nvmlInit_v2.
    assert call("nvmlInit") == pynvml.NVML_SUCCESS
    assert call("nvmlShutdown") == pynvml.NVML_SUCCESS
    assert pynvml.nvmlDeviceGetCount() == 2


def test_error_strings_cover_every_code(nvml: FakeState) -> None:
    codes = [
        v for k, v in vars(pynvml).items() if k.startswith("NVML_ERROR_") and isinstance(v, int)
    ]
    assert len(codes) > 25
    for code in [*codes, pynvml.NVML_SUCCESS]:
        if code != pynvml.NVML_ERROR_UNKNOWN:
            assert pynvml.nvmlErrorString(code) not in ("", "Unknown Error"), code
    assert pynvml.nvmlErrorString(pynvml.NVML_ERROR_UNKNOWN) == "Unknown Error"
