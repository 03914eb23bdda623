"""Locked clocks: NVML can set and reset them but has no getter, so nvctl records what it
set (in the journal) and reads the record back.

A record is void once the driver has forgotten the lock.  A reboot does that (records
carry the boot id), and so does a driver reload within one boot: each record carries the
*driver instance* it was made under — on a real driver the identity of the loaded
``nvidia`` kernel module (its sysfs directory is recreated, with a new inode, at every
load), on nvsim the start time of the running instance.  :func:`recorded` returns only
records of the current instance; :func:`stale` names the others, so that ``snapshot
diff`` and ``restore`` say the truth: after a reload the clocks are unlocked.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pynvml

from nvcontrol.control.journal import Journal
from nvcontrol.control.limits import checked
from nvcontrol.nvml import Gpu

_NVIDIA_MODULE = Path("/sys/module/nvidia")


def driver_instance() -> str | None:
    """What changes whenever the driver is loaded again; ``None`` when it cannot be told
    (then only a reboot voids a record)."""
    from nvcontrol.control.load import nvsim_state

    state = nvsim_state()
    if state is not None:
        from nvsim.layout import Header  # the header layout only: no nvsim code runs

        try:
            with open(Path(state) / "state", "rb") as f:
                head = f.read(Header.start_us.offset + Header.start_us.size)
        except OSError:
            return None
        start = int.from_bytes(head[Header.start_us.offset :], "little")
        return f"nvsim:{start}"
    try:
        return f"nvidia-module:{os.stat(_NVIDIA_MODULE).st_ino}"
    except OSError:
        return None


def recorded(gpu: Gpu, journal: Journal | None) -> dict[str, tuple[int, int]]:
    """The locks nvctl set on ``gpu`` that the driver still holds, per domain."""
    return journal.locked_clocks(gpu.uuid, driver_instance() or None) if journal else {}


def stale(gpu: Gpu, journal: Journal | None) -> list[str]:
    """Sentences about lock records the driver has forgotten since (a driver reload)."""
    if journal is None:
        return []
    now = driver_instance()
    return [
        f"{gpu.label}: the {domain} clocks were locked to {span[0]}-{span[1]} MHz before the "
        "driver was reloaded, which unlocked them; they read as unlocked"
        for domain, span, by in journal.lock_records(gpu.uuid)
        if now is not None and by is not None and by != now
    ]


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
        journal.record_lock(gpu.uuid, domain, pair, driver_instance())
