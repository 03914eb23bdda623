"""Events from the shared ring, process lists with NVML's size protocol, process names."""

from __future__ import annotations

import ctypes
import os
import threading
import time

import pynvml
import pytest

from nvsim import layout
from tests.nvsim_c.conftest import call
from tests.nvsim_c.fakestate import MIB, FakeState

XID = pynvml.nvmlEventTypeXidCriticalError


def test_xid_appended_after_registration_is_delivered_once(nvml: FakeState) -> None:
    nvml.append_event(0, layout.EVENT_XID_CRITICAL, 13)  # before registration: not seen
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    assert pynvml.nvmlDeviceGetSupportedEventTypes(h) == layout.SUPPORTED_EVENTS
    events = pynvml.nvmlEventSetCreate()
    try:
        pynvml.nvmlDeviceRegisterEvents(h, XID, events)
        with pytest.raises(pynvml.NVMLError_Timeout):
            pynvml.nvmlEventSetWait_v2(events, 20)
        nvml.append_event(0, layout.EVENT_PSTATE)  # not registered for: skipped
        nvml.append_event(0, layout.EVENT_XID_CRITICAL, 79)
        nvml.append_event(0, layout.EVENT_XID_CRITICAL, 48)
        first = pynvml.nvmlEventSetWait_v2(events, 100)
        second = pynvml.nvmlEventSetWait_v2(events, 100)
        assert (first.eventType, first.eventData) == (XID, 79)
        assert (second.eventType, second.eventData) == (XID, 48)
        assert pynvml.nvmlDeviceGetIndex(first.device) == 0
        assert first.gpuInstanceId == 0xFFFFFFFF
        with pytest.raises(pynvml.NVMLError_Timeout):
            pynvml.nvmlEventSetWait_v2(events, 0)
    finally:
        pynvml.nvmlEventSetFree(events)


def test_wait_wakes_up_when_an_event_arrives(nvml: FakeState) -> None:
    h1 = pynvml.nvmlDeviceGetHandleByIndex(1)
    events = pynvml.nvmlEventSetCreate()
    try:
        pynvml.nvmlDeviceRegisterEvents(h1, XID | pynvml.nvmlEventTypePState, events)
        timer = threading.Timer(0.1, nvml.append_event, (1, layout.EVENT_XID_CRITICAL, 31))
        start = time.monotonic()
        timer.start()
        got = pynvml.nvmlEventSetWait_v2(events, 5000)
        waited = time.monotonic() - start
        timer.join()
        assert pynvml.nvmlDeviceGetIndex(got.device) == 1 and got.eventData == 31
        assert 0.09 <= waited < 1.0
        # The old entry point delivers the same stream.
        nvml.append_event(1, layout.EVENT_PSTATE, 5)
        data = pynvml.c_nvmlEventData_t()
        assert call("nvmlEventSetWait", events, ctypes.byref(data), 100) == pynvml.NVML_SUCCESS
        assert (data.eventType, data.eventData) == (pynvml.nvmlEventTypePState, 0)
    finally:
        pynvml.nvmlEventSetFree(events)


def test_a_reader_that_falls_behind_the_ring_resumes_at_the_oldest_event(nvml: FakeState) -> None:
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    events = pynvml.nvmlEventSetCreate()
    try:
        pynvml.nvmlDeviceRegisterEvents(h, XID, events)
        for code in range(layout.EVENT_RING + 10):
            nvml.append_event(0, layout.EVENT_XID_CRITICAL, code)
        assert pynvml.nvmlEventSetWait_v2(events, 100).eventData == 10
    finally:
        pynvml.nvmlEventSetFree(events)


def test_unsupported_event_types_cannot_be_registered(nvml: FakeState) -> None:
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    events = pynvml.nvmlEventSetCreate()
    try:
        with pytest.raises(pynvml.NVMLError_NotSupported):
            pynvml.nvmlDeviceRegisterEvents(h, pynvml.nvmlEventTypeSingleBitEccError, events)
    finally:
        pynvml.nvmlEventSetFree(events)


class ProcessInfoV1(ctypes.Structure):
    _fields_ = [("pid", ctypes.c_uint), ("usedGpuMemory", ctypes.c_ulonglong)]


def _add_process(st: FakeState, gpu: int, slot: int, pid: int, kind: int, mib: int) -> None:
    p = st.gpu(gpu).procs[slot]
    p.pid, p.kind, p.used_bytes = pid, kind, mib * MIB


def test_process_lists_follow_the_size_protocol(nvml: FakeState) -> None:
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    assert pynvml.nvmlDeviceGetComputeRunningProcesses(h) == []
    _add_process(nvml, 0, 0, 4242, layout.PROC_COMPUTE, 1000)
    _add_process(nvml, 0, 3, 4343, layout.PROC_COMPUTE | layout.PROC_GRAPHICS, 2000)
    _add_process(nvml, 0, 5, 4444, layout.PROC_GRAPHICS, 300)

    count = ctypes.c_uint(0)
    name = "nvmlDeviceGetComputeRunningProcesses_v3"
    assert call(name, h, ctypes.byref(count), None) == pynvml.NVML_ERROR_INSUFFICIENT_SIZE
    assert count.value == 2
    one = (pynvml.c_nvmlProcessInfo_v3_t * 1)()
    count.value = 1
    assert call(name, h, ctypes.byref(count), one) == pynvml.NVML_ERROR_INSUFFICIENT_SIZE
    assert count.value == 2 and one[0].pid == 0
    assert call(name, h, None, one) == pynvml.NVML_ERROR_INVALID_ARGUMENT

    compute = pynvml.nvmlDeviceGetComputeRunningProcesses(h)
    assert [(p.pid, p.usedGpuMemory) for p in compute] == [(4242, 1000 * MIB), (4343, 2000 * MIB)]
    graphics = pynvml.nvmlDeviceGetGraphicsRunningProcesses(h)
    assert sorted(p.pid for p in graphics) == [4343, 4444]
    assert [p.pid for p in pynvml.nvmlDeviceGetComputeRunningProcesses_v2(h)] == [4242, 4343]
    assert pynvml.nvmlDeviceGetMPSComputeRunningProcesses(h) == []

    # Version 1 entries are 16 bytes: pid and memory only.
    v1 = (ProcessInfoV1 * 4)()
    count.value = 4
    assert call("nvmlDeviceGetComputeRunningProcesses", h, ctypes.byref(count), v1) == 0
    assert count.value == 2 and (v1[1].pid, v1[1].usedGpuMemory) == (4343, 2000 * MIB)


def test_process_name_comes_from_proc(nvml: FakeState) -> None:
    name = pynvml.nvmlSystemGetProcessName(os.getpid())
    assert "python" in (name.decode() if isinstance(name, bytes) else name)
    with pytest.raises(pynvml.NVMLError_NotFound):
        pynvml.nvmlSystemGetProcessName(0x7FFFFFF0)


def test_process_utilization_has_no_samples(nvml: FakeState) -> None:
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    with pytest.raises(pynvml.NVMLError_NotFound):
        pynvml.nvmlDeviceGetProcessUtilization(h, 0)
