"""``fan curve run``: a controller that makes fans follow their curves.

It registers itself in the journal, sets each fan from the curve (with hysteresis) at a
fixed interval, and gives the fans back to automatic control when it stops — normally,
on SIGTERM/SIGINT, or on any error.  If it is killed with SIGKILL, the registration it
leaves lets the next ``nvctl`` command do the same (:mod:`nvcontrol.control.recovery`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pynvml

from basis.errors import Unsupported
from nvcontrol.control import settings
from nvcontrol.control.fancurve import CurveFollower, FanCurve
from nvcontrol.control.journal import Journal
from nvcontrol.control.runner import require_root
from nvcontrol.errors import NvctlError
from nvcontrol.nvml import Gpu


async def run_curves(
    gpus: Sequence[Gpu],
    curves: dict[str, FanCurve],
    journal: Journal,
    *,
    interval_s: float = 1.0,
    stop: asyncio.Event | None = None,
    report: Callable[[Gpu, float, int], None] | None = None,
) -> None:
    missing = [g.label for g in gpus if g.uuid not in curves]
    if missing:
        raise NvctlError(
            "no fan curve set for " + ", ".join(missing),
            hint='set one first: nvctl fan curve set "40:30,60:50,80:100" -i GPU',
        )
    for g in gpus:
        if settings.fan_count(g) == 0:
            raise Unsupported(f"{g.label}: this GPU has no controllable fans")
    require_root(gpus)
    followers = {g.uuid: CurveFollower(curves[g.uuid]) for g in gpus}
    controller = journal.register_fan_controller([g.uuid for g in gpus])
    stop = stop or asyncio.Event()
    try:
        while not stop.is_set():
            for g in gpus:
                temp = g.get(pynvml.nvmlDeviceGetTemperature, pynvml.NVML_TEMPERATURE_GPU)
                if temp is None:
                    continue
                pct = followers[g.uuid].step(float(temp))
                if pct is None:
                    continue
                for i in range(settings.fan_count(g)):
                    settings.apply(
                        g, f"fans.{i}", {"policy": "manual", "speed_pct": pct}, journal, None
                    )
                if report is not None:
                    report(g, float(temp), pct)
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
            except TimeoutError:
                pass
    finally:
        for g in gpus:
            for i in range(settings.fan_count(g)):
                settings.apply(g, f"fans.{i}", {"policy": "auto"}, journal, None)
        journal.remove_fan_controller(controller)
