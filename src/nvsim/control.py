"""What the ``nvsim`` CLI does to a running instance: load, faults, resets.

Each operation takes the mapped :class:`~nvsim.state.StateFile`, checks its input before
changing anything (raising :class:`basis.errors.InvalidInput`), and writes the control
fields under the state lock so the tick daemon never sees half of a change.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from basis.errors import InvalidInput
from nvsim import layout, models
from nvsim.model import XID_FALLEN_OFF_BUS, apply_control
from nvsim.state import StateFile, append_event

MIB = 1024 * 1024
DEFAULT_LOAD_MEMORY_MIB = 300  # roughly what a CUDA context and a small working set take


def gpu_label(gpu: layout.Gpu, index: int) -> str:
    return f"GPU {index} ({gpu.uuid.decode()})"


@dataclass(frozen=True)
class Change:
    """What one operation did to one GPU."""

    index: int
    uuid: str
    what: str

    @classmethod
    def of(cls, gpu: layout.Gpu, index: int, what: str) -> Change:
        return cls(index, gpu.uuid.decode(), what)

    def __str__(self) -> str:
        return f"GPU {self.index} ({self.uuid}): {self.what}"

    def as_dict(self) -> dict[str, object]:
        return {"index": self.index, "uuid": self.uuid, "change": self.what}


def _bus_key(bus_id: str) -> tuple[int, str] | None:
    """``00000000:01:00.0``, ``0000:01:00.0`` and ``01:00.0`` name the same device."""
    parts = bus_id.strip().lower().split(":")
    if len(parts) == 2:
        parts.insert(0, "0")
    if len(parts) != 3:
        return None
    try:
        return int(parts[0], 16), ":".join(parts[1:])
    except ValueError:
        return None


def resolve_gpu(sf: StateFile, ref: str) -> tuple[int, layout.Gpu]:
    """Find a GPU by index, UUID (or a unique UUID prefix) or PCI bus id."""
    gpus = sf.gpus()
    text = ref.strip()
    matches: list[int] = []
    if text.isdigit():
        matches = [int(text)] if int(text) < len(gpus) else []
    elif text:
        wanted, bus = text.lower(), _bus_key(text)
        matches = [
            i
            for i, g in enumerate(gpus)
            if g.uuid.decode().lower().startswith(wanted)
            or (bus is not None and _bus_key(g.pci_bus_id.decode()) == bus)
        ]
    if len(matches) == 1:
        return matches[0], gpus[matches[0]]
    listing = ", ".join(f"{i}={g.uuid.decode()}" for i, g in enumerate(gpus))
    problem = f"{ref!r} matches {len(matches)} GPUs" if matches else f"no GPU {ref!r}"
    raise InvalidInput(
        f"{problem} in the nvsim instance at {sf.path.parent} (GPUs: {listing})",
        hint="name a GPU by index, UUID or PCI bus id",
    )


def set_load(
    sf: StateFile,
    ref: str,
    percent: int,
    *,
    memory_mib: int | None = None,
    pid: int | None = None,
) -> Change:
    """Set a GPU's load and the compute process that holds it.

    With a ``pid`` the load and its memory belong to that process: NVML lists it among the
    GPU's compute processes and reports ``percent`` as its utilization.  Without one (or
    with ``pid=0``) the memory is held by no process NVML can list, as for a process in
    another PID namespace; nvsim's own daemon is never shown as a GPU process.
    ``percent=0`` clears the load and that process.
    """
    if not 0 <= percent <= 100:
        raise InvalidInput(f"load {percent}% is out of range (0..100)")
    if memory_mib is not None and memory_mib < 0:
        raise InvalidInput(f"--memory {memory_mib} MiB must not be negative")
    if pid is not None and pid < 0:
        raise InvalidInput(f"--pid {pid} must not be negative")
    index, gpu = resolve_gpu(sf, ref)
    owner = pid or 0
    mem = DEFAULT_LOAD_MEMORY_MIB if memory_mib is None else memory_mib
    mem_bytes = mem * MIB if percent > 0 else 0
    with sf.lock():
        # Memory held by everything except what this call replaces.
        held = sum(p.used_bytes for p in gpu.procs if p.pid and p.pid != owner)
        if owner != 0:
            held += gpu.load_mem_bytes
        free = gpu.mem_total - gpu.mem_reserved - models.base_memory(gpu) - held
        if mem_bytes > free:
            raise InvalidInput(
                f"{gpu_label(gpu, index)} has {free // MIB} MiB free; cannot hold {mem} MiB"
            )
        if owner == 0:
            gpu.load_mem_bytes = mem_bytes
        else:
            _set_process(gpu, index, owner, mem_bytes, percent)
        gpu.load_pct = percent
        _apply_now(gpu)
    if percent == 0:
        return Change.of(gpu, index, "idle")
    holder = "no listed process" if owner == 0 else f"pid {owner}"
    return Change.of(gpu, index, f"load {percent}%, {mem} MiB held by {holder}")


def _apply_now(gpu: layout.Gpu) -> None:
    """Under the lock: the readings that follow a control change at once (P-state, clocks,
    memory in use) change with it, so a reader right after the command sees them."""
    for event in apply_control(gpu, time.time_ns() // 1000):
        append_event(gpu, event.type, event.data, event.time_us)


def _set_process(gpu: layout.Gpu, index: int, pid: int, used_bytes: int, util: int) -> None:
    slot = next((p for p in gpu.procs if p.pid == pid), None)
    if used_bytes == 0 and util == 0:
        if slot is not None:
            slot.pid, slot.kind, slot.used_bytes, slot.sm_util = 0, 0, 0, 0
        return
    if slot is None:
        slot = next((p for p in gpu.procs if p.pid == 0), None)
        if slot is None:
            raise InvalidInput(
                f"{gpu_label(gpu, index)} already lists {layout.MAX_PROCS} processes",
                hint="clear one with: nvsim load GPU 0 --pid PID",
            )
    slot.kind = layout.PROC_COMPUTE
    slot.used_bytes = used_bytes
    slot.sm_util = util
    slot.pid = pid


FAULT_KINDS = ("xid", "lost", "thermal")


def inject_fault(sf: StateFile, ref: str, kind: str, code: int | None = None) -> Change:
    """``xid CODE``: report an Xid (79 also loses the GPU); ``lost``: the GPU falls off
    the bus; ``thermal``: its cooling fails."""
    if kind not in FAULT_KINDS:
        raise InvalidInput(f"unknown fault {kind!r} (one of: {', '.join(FAULT_KINDS)})")
    if kind == "xid":
        if code is None or not 1 <= code <= 1000:
            raise InvalidInput("fault xid needs an Xid code between 1 and 1000, e.g. 'xid 13'")
    elif code is not None:
        raise InvalidInput(f"fault {kind} takes no code")
    index, gpu = resolve_gpu(sf, ref)
    now_us = time.time_ns() // 1000
    with sf.lock():
        if kind == "thermal":
            gpu.fault_thermal = 1
            return Change.of(gpu, index, "cooling failed")
        xid = XID_FALLEN_OFF_BUS if kind == "lost" else int(code or 0)
        append_event(gpu, layout.EVENT_XID_CRITICAL, xid, now_us)
        gpu.xid_count += 1
        if xid == XID_FALLEN_OFF_BUS:
            gpu.lost = layout.LOST_YES
            return Change.of(gpu, index, "Xid 79, fell off the bus")
    return Change.of(gpu, index, f"Xid {xid}")


def reset(sf: StateFile, refs: Sequence[str] = ()) -> list[Change]:
    """Reset GPUs (all when ``refs`` is empty), as ``nvidia-smi --gpu-reset`` does.

    The board comes back: lost and faults clear, every setting returns to its default
    (offsets 0, default power limit, clocks unlocked, fans automatic, persistence off,
    default compute mode), and its contexts are gone (no load, no processes).
    """
    targets = [resolve_gpu(sf, r) for r in refs] if refs else list(enumerate(sf.gpus()))
    done: list[Change] = []
    with sf.lock():
        for index, gpu in targets:
            model = models.get_model(gpu.model_key.decode())
            models.restore_defaults(gpu, model)
            gpu.load_pct = 0
            gpu.load_mem_bytes = 0
            for proc in gpu.procs:
                proc.pid, proc.kind, proc.used_bytes, proc.sm_util = 0, 0, 0, 0
            gpu.fault_thermal = 0
            gpu.instability = 0.0
            gpu.lost = layout.LOST_NONE
            _apply_now(gpu)
            done.append(Change.of(gpu, index, "reset"))
    return done
