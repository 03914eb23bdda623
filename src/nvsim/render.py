"""Human rendering of ``nvsim status`` (a Rich table); the data comes from nvsim.status."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table


def _offsets(gpu: dict[str, Any]) -> str:
    offsets = gpu["offsets_mhz"]
    if offsets is None:
        return "n/a"
    p0 = offsets.get("P0", {"gpc": 0, "mem": 0})
    return f"{p0['gpc']:+d}/{p0['mem']:+d}"


def _fans(gpu: dict[str, Any]) -> str:
    if not gpu["fans"]:
        return "none"
    return " ".join(
        f"{f['speed_pct']:.0f}%{'m' if f['policy'] == 'manual' else ''}" for f in gpu["fans"]
    )


def _flags(gpu: dict[str, Any]) -> str:
    flags = []
    if gpu["lost"]:
        flags.append("[bold red]LOST[/]")
    if gpu["fault_thermal"]:
        flags.append("[red]cooling fault[/]")
    if gpu["instability"] > 0:
        flags.append(f"[yellow]unstable {gpu['instability']:.1f}[/]")
    if gpu["xid_count"]:
        flags.append(f"xid x{gpu['xid_count']}")
    return " ".join(flags) or "ok"


SHORT_REASONS = {
    "gpu_idle": "idle",
    "sw_power_cap": "power",
    "sw_thermal_slowdown": "sw-therm",
    "hw_thermal_slowdown": "hw-therm",
    "hw_slowdown": "hw-slow",
    "hw_power_brake": "brake",
    "applications_clocks": "app",
    "sync_boost": "sync",
    "display_clocks": "display",
}


def print_status(view: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    daemon = view["daemon"]
    alive = "[green]running[/]" if daemon["alive"] else "[red]not running[/]"
    console.print(
        f"nvsim at {view['state_dir']}: driver {view['driver_version']}, "
        f"CUDA {view['cuda_version']}, time x{view['time_scale']:g}, "
        f"daemon {daemon['pid']} {alive}"
    )
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("GPU", "load", "temp", "power W", "P", "gpc/mem MHz", "offset", "fans", "reasons"):
        table.add_column(col, no_wrap=col != "reasons")
    for g in view["gpus"]:
        table.add_row(
            str(g["index"]),
            f"{g['load_pct']}%",
            f"{g['temperature_c']:.0f}°C",
            f"{g['power_w']:.0f}/{g['power_limit_w']:.0f}",
            g["pstate"],
            f"{g['clocks_mhz']['graphics']}/{g['clocks_mhz']['memory']}",
            _offsets(g),
            _fans(g),
            " ".join(SHORT_REASONS.get(r, r) for r in g["clocks_event_reasons"]) or "-",
        )
    console.print(table)
    for g in view["gpus"]:
        hidden = g["hidden"]
        stable = (
            f"stable +{hidden['stable_gpc_offset_mhz']}/+{hidden['stable_mem_offset_mhz']}"
            if hidden["stable_gpc_offset_mhz"] is not None
            else "no offsets"
        )
        console.print(
            f"{g['index']}: {g['name']}  {g['uuid']}  {g['pci_bus_id']}  {stable}  {_flags(g)}",
            highlight=False,
        )
