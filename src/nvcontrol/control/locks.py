"""Locked clocks: NVML can set and reset them but has no getter, so nvctl records what it
set (in the journal) and reads the record back.  A record is void once the driver has
forgotten the lock (a reboot, a driver reload): :func:`recorded` only returns records
that still describe the driver's state."""

from __future__ import annotations

from collections.abc import Sequence

import pynvml

from nvcontrol.control.journal import Journal
from nvcontrol.control.limits import checked
from nvcontrol.nvml import Gpu


def recorded(gpu: Gpu, journal: Journal | None) -> dict[str, tuple[int, int]]:
    """The locks nvctl set on ``gpu`` that the driver still holds, per domain."""
    return journal.locked_clocks(gpu.uuid) if journal else {}


def write(gpu: Gpu, domain: str, span: Sequence[int] | None, journal: Journal | None) -> None:
    """Lock ``domain`` into ``span`` (or unlock with ``None``) and record it."""
    if domain == "graphics":
        set_fn, reset_fn = (
            pynvml.nvmlDeviceSetGpuLockedClocks,
            pynvml.nvmlDeviceResetGpuLockedClocks,
        )
    else:
        set_fn, reset_fn = (
            pynvml.nvmlDeviceSetMemoryLockedClocks,
            pynvml.nvmlDeviceResetMemoryLockedClocks,
        )
    if span is None:
        checked(gpu, reset_fn)
        pair = None
    else:
        pair = (int(span[0]), int(span[1]))
        checked(gpu, set_fn, *pair)
    if journal is not None:
        journal.record_lock(gpu.uuid, domain, pair)
