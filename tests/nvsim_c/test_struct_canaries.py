"""Every entry point that fills a caller's struct writes exactly that struct's size.

Each call gets a buffer of the size its ABI version declares, followed by canary bytes;
after the call the canary must be intact.  A versioned or legacy entry point that copies a
newer, larger struct (as ``nvmlDeviceGetPciInfo_v2`` once copied the 68-byte v3 struct
into a 52-byte v2 one, crashing py3nvml) corrupts the canary.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from nvsim import layout
from tests.nvsim_c.fakestate import DATACENTER, GEFORCE, FakeState

CANARY = 0xA5
TAIL = 64


def versioned(size: int, version: int) -> int:
    """NVML_STRUCT_VERSION: the struct size in the low 24 bits, the version above."""
    return size | (version << 24)


@dataclass(frozen=True)
class Case:
    symbol: str
    size: int  # bytes the ABI version of this entry point declares
    call: Callable[[ctypes.CDLL, ctypes.c_void_p, ctypes.Array[ctypes.c_ubyte]], int]
    version: int | None = None  # written at offset 0 first (versioned structs)
    inputs: tuple[tuple[int, int], ...] = ()  # (offset, uint32) input fields of the struct


def plain(symbol: str, size: int, **kw: object) -> Case:
    return Case(symbol, size, lambda lib, h, buf: getattr(lib, symbol)(h, buf), **kw)  # type: ignore[arg-type]


def with_arg(symbol: str, size: int, arg: int, **kw: object) -> Case:
    return Case(symbol, size, lambda lib, h, buf: getattr(lib, symbol)(h, arg, buf), **kw)  # type: ignore[arg-type]


def process_list(symbol: str, elem: int) -> Case:
    def run(lib: ctypes.CDLL, h: ctypes.c_void_p, buf: ctypes.Array[ctypes.c_ubyte]) -> int:
        count = ctypes.c_uint(2)
        return int(getattr(lib, symbol)(h, ctypes.byref(count), buf))

    return Case(symbol, 2 * elem, run)


def fan_rpm(lib: ctypes.CDLL, h: ctypes.c_void_p, buf: ctypes.Array[ctypes.c_ubyte]) -> int:
    return int(lib.nvmlDeviceGetFanSpeedRPM(h, buf))


def field_values(lib: ctypes.CDLL, h: ctypes.c_void_p, buf: ctypes.Array[ctypes.c_ubyte]) -> int:
    ids = (1, 2)  # NVML_FI_DEV_ECC_CURRENT, NVML_FI_DEV_ECC_PENDING
    for i, fid in enumerate(ids):
        ctypes.c_uint.from_buffer(buf, i * 40).value = fid
    return int(lib.nvmlDeviceGetFieldValues(h, len(ids), buf))


CASES = [
    plain("nvmlDeviceGetPciInfo", 52),  # v1
    plain("nvmlDeviceGetPciInfo_v2", 52),
    plain("nvmlDeviceGetPciInfo_v3", 68),
    plain("nvmlDeviceGetPciInfoExt", 64, version=versioned(64, 1)),
    plain("nvmlDeviceGetMemoryInfo", 24),
    plain("nvmlDeviceGetMemoryInfo_v2", 40, version=versioned(40, 2)),
    plain("nvmlDeviceGetBAR1MemoryInfo", 24),
    plain("nvmlDeviceGetUtilizationRates", 8),
    plain("nvmlDeviceGetTemperatureV", 12, version=versioned(12, 1), inputs=((4, 0),)),
    plain("nvmlDeviceGetClockOffsets", 24, version=versioned(24, 1), inputs=((4, 0), (8, 0))),
    Case("nvmlDeviceGetFanSpeedRPM", 12, fan_rpm, version=versioned(12, 1), inputs=((4, 0),)),
    Case("nvmlDeviceGetFieldValues", 80, field_values),
    plain("nvmlDeviceGetEncoderStats", 12),  # three unsigned ints through three pointers
    plain("nvmlDeviceGetFBCStats", 12),
    with_arg("nvmlDeviceGetEccMode", 4, 0),
    process_list("nvmlDeviceGetComputeRunningProcesses", 16),  # v1
    process_list("nvmlDeviceGetComputeRunningProcesses_v2", 24),
    process_list("nvmlDeviceGetComputeRunningProcesses_v3", 24),
    process_list("nvmlDeviceGetGraphicsRunningProcesses", 16),
    process_list("nvmlDeviceGetGraphicsRunningProcesses_v2", 24),
    process_list("nvmlDeviceGetGraphicsRunningProcesses_v3", 24),
]


def _call_into(libnvml: ctypes.CDLL, case: Case, index: int) -> tuple[int, bytes]:
    handle = ctypes.c_void_p()
    assert libnvml.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(handle)) == 0
    buf = (ctypes.c_ubyte * (case.size + TAIL))(*([CANARY] * (case.size + TAIL)))
    if case.version is not None:
        ctypes.c_uint.from_buffer(buf).value = case.version
    for offset, value in case.inputs:
        ctypes.c_uint.from_buffer(buf, offset).value = value
    if case.symbol == "nvmlDeviceGetEncoderStats":
        # (device, *sessionCount, *averageFps, *averageLatency): point all three into buf.
        ptrs = [ctypes.byref(buf, off) for off in (0, 4, 8)]
        rc = int(libnvml.nvmlDeviceGetEncoderStats(handle, *ptrs))
    elif case.symbol == "nvmlDeviceGetEccMode":
        rc = int(libnvml.nvmlDeviceGetEccMode(handle, ctypes.byref(buf, 0), ctypes.byref(buf, 4)))
        return rc, bytes(buf[8:])
    else:
        rc = int(case.call(libnvml, handle, buf))
    return rc, bytes(buf[case.size :])


@pytest.fixture
def both_kinds(libnvml: ctypes.CDLL, fake: FakeState) -> FakeState:
    """A GeForce (0) and, replacing the second GeForce, a datacenter board (1), each with
    two compute processes so that process lists fill their buffers."""
    from tests.nvsim_c.fakestate import _FILL

    _FILL[DATACENTER](fake.gpu(1), 1)
    for g in (fake.gpu(0), fake.gpu(1)):
        for slot, pid in enumerate((4242, 4343)):
            p = g.procs[slot]
            p.pid, p.kind, p.used_bytes = pid, layout.PROC_COMPUTE | layout.PROC_GRAPHICS, 1 << 20
    assert GEFORCE  # the first GPU keeps the GeForce fill from `fake`
    return fake


@pytest.mark.parametrize("case", CASES, ids=[c.symbol for c in CASES])
@pytest.mark.parametrize("index", [0, 1], ids=["geforce", "datacenter"])
def test_entry_point_writes_only_its_struct(
    libnvml: ctypes.CDLL, both_kinds: FakeState, case: Case, index: int
) -> None:
    assert libnvml.nvmlInit_v2() == 0
    try:
        rc, tail = _call_into(libnvml, case, index)
    finally:
        libnvml.nvmlShutdown()
    assert tail == bytes([CANARY]) * len(tail), f"{case.symbol} wrote past its {case.size} bytes"
    # The call must also have done something: a canary test of a call that always fails
    # proves nothing.  NOT_SUPPORTED (3) is a real answer for some boards.
    assert rc in (0, 3), f"{case.symbol} returned {rc}"


def test_event_wait_v1_writes_only_the_v1_struct(
    libnvml: ctypes.CDLL, both_kinds: FakeState
) -> None:
    assert libnvml.nvmlInit_v2() == 0
    try:
        handle = ctypes.c_void_p()
        assert libnvml.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(handle)) == 0
        events = ctypes.c_void_p()
        assert libnvml.nvmlEventSetCreate(ctypes.byref(events)) == 0
        assert libnvml.nvmlDeviceRegisterEvents(handle, layout.EVENT_XID_CRITICAL, events) == 0
        for symbol, size in (("nvmlEventSetWait", 24), ("nvmlEventSetWait_v2", 32)):
            both_kinds.append_event(0, layout.EVENT_XID_CRITICAL, 13)
            buf = (ctypes.c_ubyte * (size + TAIL))(*([CANARY] * (size + TAIL)))
            assert getattr(libnvml, symbol)(events, buf, 100) == 0
            assert bytes(buf[size:]) == bytes([CANARY]) * TAIL, symbol
            assert ctypes.c_ulonglong.from_buffer(buf, 16).value == 13
        assert libnvml.nvmlEventSetFree(events) == 0
    finally:
        libnvml.nvmlShutdown()
