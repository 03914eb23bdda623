"""The agent's periodic reading of every GPU, for live charts and ``/metrics``: one worker
call per interval, the last few minutes kept in memory (bounded)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Any

from nvcontrol.agent.service import Service
from nvcontrol.control.manager import GpuManager

HISTORY = 300  # samples kept (5 minutes at 1 s)
OFFSETS_EVERY = 5  # offsets change only through us: read them every few samples


class Sampler:
    def __init__(self, service: Service, interval_s: float, connections: Callable[[], int]) -> None:
        self.service = service
        self.interval_s = interval_s
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.latest: dict[str, Any] = {}
        self.names: dict[str, tuple[str, str]] = {}  # uuid -> (model name, PCI bus id)
        self.offsets: dict[str, dict[str, dict[str, int]]] = {}
        self.last_xid: dict[str, int] = {}
        self.connections = connections
        self._task: asyncio.Task[None] | None = None
        self._monitor: Any = None
        self.on_sample: list[Callable[[dict[str, Any]], None]] = []  # live streams

    @property
    def outcomes(self) -> dict[str, int]:
        return self.service.outcomes

    def live_count(self) -> int:
        return len(self.service.live)

    async def start(self) -> None:
        listed = await self.service.worker.run(lambda m: m.gpu_list(None))
        self.names = {g["uuid"]: (g["name"], g["pci_bus_id"]) for g in listed["gpus"]}
        await self.tick(0)
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._monitor is not None:
            monitor, self._monitor = self._monitor, None
            await self.service.worker.run(lambda _m: monitor.close())

    async def _run(self) -> None:
        n = 1
        while True:
            await asyncio.sleep(self.interval_s)
            with contextlib.suppress(Exception):  # a failed reading shows as a gap, not a crash
                await self.tick(n)
            n += 1

    async def tick(self, n: int) -> None:
        def read(m: GpuManager) -> tuple[dict[str, Any], dict[str, int], Any]:
            from nvcontrol.readings import sample_all

            sample = sample_all(m.nvml.gpus)
            xids = self._xids(m)
            offsets = None
            if n % OFFSETS_EVERY == 0:
                from nvcontrol.readings import read_offsets

                offsets = {}
                for g in m.nvml.gpus:
                    with contextlib.suppress(Exception):
                        offsets[g.uuid] = read_offsets(g, [0])
            return sample, xids, offsets

        sample, xids, offsets = await self.service.worker.run(read)
        self.latest = sample
        self.history.append(sample)
        for fn in list(self.on_sample):
            fn(sample)
        self.last_xid.update(xids)
        if offsets is not None:
            self.offsets = _flat_offsets(offsets)

    def _xids(self, m: GpuManager) -> dict[str, int]:
        """The last Xid of each GPU since the previous tick (runs on the worker)."""
        from nvcontrol.control.monitor import StabilityMonitor

        if self._monitor is None:
            self._monitor = StabilityMonitor(m.nvml.gpus, None)
        found: dict[str, int] = {}
        for obs in self._monitor.poll(0.0):
            if obs.xids:
                found[obs.uuid] = obs.xids[-1]
        return found


def _flat_offsets(raw: dict[str, Any]) -> dict[str, dict[str, dict[str, int]]]:
    """{uuid: {"P0": {"graphics": mhz, "memory": mhz}}} from ``read_offsets`` output."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for uuid, doc in raw.items():
        per: dict[str, dict[str, int]] = {}
        pstates = (doc or {}).get("pstates") or {}
        for pstate, domains in pstates.items():
            vals = {}
            for d, info in (domains or {}).items():
                if isinstance(info, dict) and isinstance(info.get("offset_mhz"), int):
                    vals[d.removesuffix("_mhz")] = info["offset_mhz"]
            if vals:
                per[pstate] = vals
        out[uuid] = per
    return out
