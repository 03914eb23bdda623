"""Stability probes: ``overclock test`` (load + watch) and ``overclock auto`` (step + test).

The judging is the transaction state machine's (a probe is a window with nothing to apply);
the load comes from :mod:`nvcontrol.control.load`.  ``auto`` steps one offset at a time,
each step a real transaction under load, so an unstable step is rolled back by the same
path as any other change; the best stable offsets stay applied and are saved as a snapshot.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from basis.errors import Unsupported
from nvcontrol.control import settings
from nvcontrol.control.errors import RolledBack
from nvcontrol.control.journal import Journal
from nvcontrol.control.load import NO_LOAD_HINT, LoadGenerator, pick, running
from nvcontrol.control.manager import GpuManager
from nvcontrol.control.monitor import StabilityMonitor
from nvcontrol.control.runner import TxOptions
from nvcontrol.control.transaction import Commit, Policy, Rollback, Transaction
from nvcontrol.nvml import Gpu

Progress = Callable[[str], None]


def _load_or_explain() -> LoadGenerator:
    load = pick()
    if load is None:
        raise Unsupported("no load generator is available on this machine", hint=NO_LOAD_HINT)
    return load


async def stability_test(
    gpus: Sequence[Gpu],
    duration_s: float,
    temp_guard_c: float | None = None,
    load: LoadGenerator | None = None,
    *,
    journal: Callable[[], Journal],
) -> dict[str, Any]:
    """Load the GPUs for ``duration_s`` and watch them; never changes a setting.  The
    load is taken off however this ends (a SIGKILL: by the next nvctl command)."""
    load = load or _load_or_explain()
    monitor = StabilityMonitor(gpus, temp_guard_c)
    machine = Transaction(Policy(window_s=duration_s), baseline_reasons=monitor.baseline())
    started = time.monotonic()
    cause: str | None = None
    try:
        with running(load, gpus, journal):
            cause = await _watch(machine, monitor, started)
    finally:
        monitor.close()
    return {
        "stable": cause is None,
        "cause": cause,
        "load": load.name,
        "duration_s": round(time.monotonic() - started, 2),
        "gpus": [
            {
                "index": g.index,
                "uuid": g.uuid,
                "max_temperature_c": monitor.max_temp.get(g.uuid),
                "temp_guard_c": monitor.guards[g.uuid],
                "clocks_event_reasons_seen": sorted(monitor.reasons_seen[g.uuid]),
            }
            for g in gpus
        ],
    }


async def _watch(machine: Transaction, monitor: StabilityMonitor, started: float) -> str | None:
    """Watch until the window is over: the cause of instability, or ``None``."""
    machine.begin(started)
    actions = machine.applied(time.monotonic(), [])
    while not any(isinstance(a, Commit | Rollback) for a in actions):
        wait = min(0.1, max(0.0, (machine.next_deadline() or 0) - time.monotonic()))
        observations = await asyncio.to_thread(monitor.poll, wait)
        actions = machine.observe(time.monotonic(), observations)
    return next((a.cause for a in actions if isinstance(a, Rollback)), None)


@dataclass
class AutoResult:
    gpus: list[dict[str, Any]] = field(default_factory=list)
    snapshot: str | None = None
    load: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"load": self.load, "snapshot": self.snapshot, "gpus": self.gpus}


async def auto_tune(
    manager: GpuManager,
    selector: str | None,
    *,
    max_graphics_mhz: int | None,
    max_memory_mhz: int | None,
    step_graphics_mhz: int,
    step_memory_mhz: int,
    step_s: float,
    pstate: str,
    save_as: str,
    progress: Progress,
) -> AutoResult:
    load = _load_or_explain()
    result = AutoResult(load=load.name)
    for gpu in manager.select(selector):
        found: dict[str, Any] = {"index": gpu.index, "uuid": gpu.uuid}
        for domain, ceiling, step in (
            ("graphics", max_graphics_mhz, step_graphics_mhz),
            ("memory", max_memory_mhz, step_memory_mhz),
        ):
            found[f"{domain}_offset_mhz"] = await _climb(
                manager, gpu, domain, ceiling, step, step_s, pstate, load, progress
            )
        result.gpus.append(found)
    snap = await manager.snapshot_create(save_as, selector, overwrite=True)
    result.snapshot = snap.name
    return result


async def _climb(
    manager: GpuManager,
    gpu: Gpu,
    domain: str,
    ceiling: int | None,
    step: int,
    step_s: float,
    pstate: str,
    load: LoadGenerator,
    progress: Progress,
) -> int | None:
    info = settings.offset_info(gpu, int(pstate[1:]), domain)
    if info is None:
        progress(f"{gpu.label}: no {domain} offset at {pstate}; skipped")
        return None
    top = info["max_mhz"] if ceiling is None else min(ceiling, info["max_mhz"])
    best = info["offset_mhz"]
    value = best + step
    while value <= top:
        progress(f"{gpu.label}: trying {domain} {value:+d} MHz under load for {step_s:g} s")
        options = TxOptions(window_s=step_s, confirm=False)
        try:
            with running(load, [gpu], lambda: manager.journal):
                report = await manager.apply_offsets(
                    gpu.uuid,
                    value if domain == "graphics" else None,
                    value if domain == "memory" else None,
                    pstate,
                    options,
                )
        except RolledBack as err:
            progress(f"{gpu.label}: {domain} {value:+d} MHz is unstable ({err.cause}); rolled back")
            break
        best = int(report.outcomes[-1].applied)  # type: ignore[call-overload]
        value = best + step
    progress(f"{gpu.label}: highest stable {domain} offset {best:+d} MHz")
    return best
