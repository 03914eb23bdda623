"""A lost GPU (fallen off the bus) never hides the healthy ones.

Commands that read several GPUs read each through :func:`each_gpu`: a GPU that is lost
gives a ``{"lost": true}`` row with its identity instead of stopping the command, and
:func:`raise_if_lost` ends the command with exit code 6 (``GPU_LOST``) after the healthy
GPUs were shown — so scripts notice, and people still see the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from basis.errors import ExitCode
from nvcontrol.errors import GpuLost, NvctlError
from nvcontrol.nvml import Gpu

LOST_HINT = "the GPU needs a reset (on nvsim: `nvsim reset`; on hardware: a reboot)"


class SomeGpusLost(NvctlError):
    """One or more GPUs are lost; the healthy ones were shown."""

    exit_code = ExitCode.GPU_LOST


def lost_row(gpu: Gpu) -> dict[str, Any]:
    return {
        "index": gpu.index,
        "uuid": gpu.uuid,
        "name": gpu.name,
        "pci_bus_id": gpu.pci_bus_id,
        "lost": True,
    }


def each_gpu(gpus: Iterable[Gpu], read: Callable[[Gpu], dict[str, Any]]) -> list[dict[str, Any]]:
    """``read(gpu)`` for every GPU, a lost GPU giving :func:`lost_row` instead."""
    rows = []
    for g in gpus:
        try:
            rows.append({**read(g), "lost": False})
        except GpuLost:
            rows.append(lost_row(g))
    return rows


def lost_line(row: dict[str, Any]) -> str:
    return f"GPU {row['index']} ({row['uuid']}): LOST — it has fallen off the bus"


def raise_if_lost(rows: Sequence[dict[str, Any]], what: str = "shown") -> None:
    lost = [r for r in rows if r.get("lost")]
    if lost:
        names = ", ".join(f"GPU {r['index']} ({r['uuid']})" for r in lost)
        healthy = len(rows) - len(lost)
        raise SomeGpusLost(
            f"{names} {'is' if len(lost) == 1 else 'are'} lost (fallen off the bus); "
            f"the {healthy} other GPU(s) were {what}",
            hint=LOST_HINT,
        )
