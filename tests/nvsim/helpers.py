"""Building and running bare model GPUs for tests (no state file, no daemon)."""

from __future__ import annotations

import time
from collections.abc import Callable

from nvsim import layout, model, models
from nvsim.model import SimEvent


def make_gpu(
    gpu_model: models.GpuModel = models.RTX4090, index: int = 0, seed: int = 0
) -> layout.Gpu:
    gpu = layout.Gpu()
    models.init_gpu(gpu, gpu_model, index, seed)
    return gpu


def run(gpu: layout.Gpu, seconds: float, dt: float = 0.1) -> list[SimEvent]:
    """Advance ``gpu`` by ``seconds`` of simulated time in daemon-sized steps."""
    events: list[SimEvent] = []
    for i in range(round(seconds / dt)):
        events += model.step(gpu, dt, now_us=i * int(dt * 1e6))
    return events


def xids(events: list[SimEvent]) -> list[int]:
    return [e.data for e in events if e.type == layout.EVENT_XID_CRITICAL]


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; return the last result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
