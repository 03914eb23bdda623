"""Stability observations during a transaction's window or an ``overclock test``.

Owns an NVML event set registered for Xid critical errors on the watched GPUs, and turns
each look at the GPUs into :class:`~nvcontrol.control.transaction.Observation` values
(lost, temperature against its guard, clocks-event reasons, Xids).  It judges nothing:
the transaction state machine does.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Sequence
from typing import Any

import pynvml

from nvcontrol.control.transaction import Observation
from nvcontrol.errors import GpuLost
from nvcontrol.nvml import Gpu
from nvcontrol.readings import reason_names

DEFAULT_GUARD_C = 90.0
GUARD_MARGIN_C = 2.0  # below the driver's slowdown threshold


def _address(handle: Any) -> int | None:
    return ctypes.cast(handle, ctypes.c_void_p).value


def temp_guard(gpu: Gpu, override_c: float | None) -> float:
    """The temperature above which a change is rolled back: the user's, or just below the
    GPU's own slowdown threshold."""
    if override_c is not None:
        return override_c
    slowdown = gpu.static(
        "slowdown_c",
        pynvml.nvmlDeviceGetTemperatureThreshold,
        pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN,
    )
    return float(slowdown) - GUARD_MARGIN_C if slowdown else DEFAULT_GUARD_C


class StabilityMonitor:
    def __init__(self, gpus: Sequence[Gpu], temp_guard_c: float | None = None) -> None:
        self.gpus = list(gpus)
        self.guards = {g.uuid: temp_guard(g, temp_guard_c) for g in self.gpus}
        self.by_handle = {_address(g.handle): g for g in self.gpus}
        self.events_supported: list[str] = []
        self.event_set: Any = None
        self.max_temp: dict[str, float] = {}
        self.reasons_seen: dict[str, set[str]] = {g.uuid: set() for g in self.gpus}
        try:
            self.event_set = pynvml.nvmlEventSetCreate()
        except pynvml.NVMLError:
            return
        for g in self.gpus:
            try:
                pynvml.nvmlDeviceRegisterEvents(
                    g.handle, pynvml.nvmlEventTypeXidCriticalError, self.event_set
                )
                self.events_supported.append(g.uuid)
            except pynvml.NVMLError:
                pass  # no Xid events on this GPU: lost/temperature/throttle checks still run

    def close(self) -> None:
        if self.event_set is not None:
            try:
                pynvml.nvmlEventSetFree(self.event_set)
            except pynvml.NVMLError:
                pass  # the driver is going away: nothing left to free
            self.event_set = None

    def baseline(self) -> dict[str, frozenset[str]]:
        """Reasons already active before the change (they are not "unexpected")."""
        return {o.uuid: o.reasons for o in self._look({})}

    def poll(self, wait_s: float) -> list[Observation]:
        """Wait up to ``wait_s`` for Xid events, then look at every GPU once (blocking:
        call it from a thread in async code)."""
        xids = self._drain_events(wait_s)
        return self._look(xids)

    def _drain_events(self, wait_s: float) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        if self.event_set is None or not self.events_supported:
            if wait_s > 0:
                time.sleep(wait_s)
            return found
        timeout_ms = max(0, int(wait_s * 1000))
        while True:
            try:
                data = pynvml.nvmlEventSetWait_v2(self.event_set, timeout_ms)
            except pynvml.NVMLError:
                return found  # timeout (or the GPU vanished: the reads below will say so)
            gpu = self.by_handle.get(_address(data.device))
            if gpu is not None and data.eventType & pynvml.nvmlEventTypeXidCriticalError:
                found.setdefault(gpu.uuid, []).append(int(data.eventData))
            timeout_ms = 0

    def _look(self, xids: dict[str, list[int]]) -> list[Observation]:
        out = []
        for g in self.gpus:
            try:
                temp = g.get(pynvml.nvmlDeviceGetTemperature, pynvml.NVML_TEMPERATURE_GPU)
                mask = g.get(pynvml.nvmlDeviceGetCurrentClocksEventReasons)
            except GpuLost:
                out.append(
                    Observation(g.uuid, g.label, lost=True, xids=tuple(xids.get(g.uuid, ())))
                )
                continue
            reasons = frozenset(reason_names(mask) or ())
            self.reasons_seen[g.uuid] |= reasons
            if temp is not None:
                self.max_temp[g.uuid] = max(self.max_temp.get(g.uuid, temp), float(temp))
            out.append(
                Observation(
                    g.uuid,
                    g.label,
                    temperature_c=float(temp) if temp is not None else None,
                    temp_guard_c=self.guards[g.uuid],
                    reasons=reasons,
                    xids=tuple(xids.get(g.uuid, ())),
                )
            )
        return out
