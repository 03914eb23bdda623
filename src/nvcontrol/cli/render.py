"""Human-readable rendering of readings (Rich), kept apart so --json never imports Rich."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

NA = "N/A"


def fmt(value: Any, unit: str = "", digits: int = 0) -> str:
    if value is None:
        return NA
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        value = round(value, digits) if digits else round(value)
    return f"{value}{unit}"


def console() -> Console:
    """A console that never truncates columns when output goes to a pipe or a file."""
    out = Console(highlight=False, soft_wrap=False)
    if not out.is_terminal:
        out = Console(highlight=False, soft_wrap=False, width=max(out.width, 200))
    return out


def gpu_list_table(system: dict[str, Any], gpus: list[dict[str, Any]]) -> Table:
    table = Table(
        title=f"driver {fmt(system['driver_version'])} · NVML {fmt(system['nvml_version'])} · "
        f"CUDA {fmt(system['cuda_driver_version'])}",
        box=box.SIMPLE_HEAVY,
    )
    for col in ("#", "Name", "UUID", "PCI bus id", "Memory"):
        table.add_column(col, justify="right" if col in ("#", "Memory") else "left")
    for g in gpus:
        table.add_row(
            str(g["index"]),
            "[red]GPU LOST[/red] (fallen off the bus)" if g.get("lost") else g["name"],
            g["uuid"],
            g["pci_bus_id"],
            fmt(g.get("memory_total_mib"), " MiB"),
        )
    return table


def watch_table(sample: dict[str, Any], names: dict[str, str]) -> Table:
    table = Table(box=box.SIMPLE_HEAVY)
    for col in (
        "#",
        "Name",
        "Util",
        "Mem",
        "Temp",
        "Power",
        "GPU clk",
        "Mem clk",
        "Fan",
        "P",
        "Throttle",
    ):
        table.add_column(col, justify="left" if col in ("Name", "Throttle") else "right")
    for s in sample["gpus"]:
        if s.get("lost"):
            table.add_row(
                str(s["index"]), names.get(s["uuid"], ""), "[red]GPU LOST[/red]", *[""] * 8
            )
            continue
        power = f"{fmt(s['power_w'], 'W')}/{fmt(s['power_limit_w'], 'W')}"
        mem = f"{fmt(s['memory_used_mib'])}/{fmt(s['memory_total_mib'], ' MiB')}"
        reasons = ", ".join(r for r in (s["clocks_event_reasons"] or []) if r != "gpu_idle") or "-"
        table.add_row(
            str(s["index"]),
            names.get(s["uuid"], ""),
            fmt(s["gpu_util_pct"], "%"),
            mem,
            fmt(s["temperature_c"], "°C"),
            power,
            fmt(s["graphics_mhz"], " MHz"),
            fmt(s["memory_mhz"], " MHz"),
            fmt(s["fan_pct"], "%"),
            fmt(s["pstate"]),
            reasons,
        )
    return table


def _kv(table: Table, key: str, value: str) -> None:
    table.add_row(f"[bold]{key}[/bold]", value)


def info_table(info: dict[str, Any]) -> Table:
    t = Table(box=box.ROUNDED, show_header=False, title=f"GPU {info['index']}: {info['name']}")
    t.add_column(style="cyan", no_wrap=True)
    t.add_column()
    _kv(t, "UUID", info["uuid"])
    _kv(
        t,
        "Serial / PCI",
        f"{fmt(info['serial'])} · {info['pci_bus_id']} · {fmt(info['pci_device_id'])}",
    )
    _kv(
        t,
        "Brand / arch",
        f"{fmt(info['brand'])} · {fmt(info['architecture'])} · CC {fmt(info['compute_capability'])}",
    )
    _kv(t, "VBIOS / board", f"{fmt(info['vbios_version'])} · {fmt(info['board_part_number'])}")
    d = info["driver"]
    _kv(
        t,
        "Driver",
        f"{fmt(d['driver_version'])} (NVML {fmt(d['nvml_version'])}, CUDA {fmt(d['cuda_driver_version'])})",
    )
    m = info["memory"]
    _kv(
        t,
        "Memory",
        f"{fmt(m['used_mib'])} / {fmt(m['total_mib'])} MiB used (reserved {fmt(m['reserved_mib'], ' MiB')})",
    )
    u = info["utilization"]
    _kv(
        t,
        "Utilization",
        f"gpu {fmt(u['gpu_pct'], '%')} · memory {fmt(u['memory_pct'], '%')} · enc {fmt(u['encoder_pct'], '%')} · dec {fmt(u['decoder_pct'], '%')}",
    )
    temp = info["temperature"]
    th = temp["thresholds"]
    _kv(t, "Temperature", f"gpu {fmt(temp['gpu_c'], '°C')} · memory {fmt(temp['memory_c'], '°C')}")
    _kv(
        t, "Thresholds", " · ".join(f"{k.removesuffix('_c')} {fmt(v, '°C')}" for k, v in th.items())
    )
    p = info["power"]
    _kv(
        t,
        "Power",
        f"{fmt(p['usage_w'], ' W', 1)} of {fmt(p['limit_w'], ' W')} limit ({fmt(p['limit_pct_of_default'], '%', 1)} of default {fmt(p['default_limit_w'], ' W')}); enforced {fmt(p['enforced_limit_w'], ' W')}",
    )
    _kv(
        t,
        "Power range",
        f"{fmt(p['min_limit_w'], ' W')} … {fmt(p['max_limit_w'], ' W')} · energy {fmt(p['energy_j'], ' J', 1)}",
    )
    c = info["clocks"]
    _kv(
        t,
        "Clocks",
        " · ".join(
            f"{k.removesuffix('_mhz')} {fmt(v, ' MHz')} (max {fmt(c['max'][k], '')})"
            for k, v in c["current"].items()
        ),
    )
    _kv(t, "Pstate", f"{fmt(info['pstate'])} of " + (", ".join(info["pstates"]) or NA))
    for name, ranges in info["pstates"].items():
        g, mm = ranges["graphics_mhz"], ranges["memory_mhz"]
        _kv(t, f"  {name} range", f"graphics {_range(g)} MHz · memory {_range(mm)} MHz")
    off = info["offsets"]
    if off["api"] is None:
        _kv(t, "Clock offsets", NA)
    for name, o in off["pstates"].items():
        _kv(
            t,
            f"Offsets {name}",
            " · ".join(
                f"{k} {fmt(v['offset_mhz'], ' MHz')} [{v['min_mhz']} … {v['max_mhz']}]"
                if v
                else f"{k} {NA}"
                for k, v in o.items()
            )
            + f"  ({off['api']}, NVML units)",
        )
    fans = info["fans"]
    _kv(
        t,
        "Fans",
        " · ".join(
            f"#{f['index']} {fmt(f['speed_pct'], '%')} (target {fmt(f['target_pct'], '%')}, {fmt(f['rpm'], ' rpm')}, {fmt(f['policy'])})"
            for f in fans
        )
        or NA,
    )
    _kv(
        t,
        "Modes",
        f"persistence {fmt(info['persistence_mode'])} · compute {fmt(info['compute_mode'])}",
    )
    r = info["clocks_event_reasons"]
    _kv(
        t,
        "Throttle reasons",
        ", ".join(r["active"]) if r["active"] else ("none" if r["active"] is not None else NA),
    )
    pc = info["pcie"]
    _kv(
        t,
        "PCIe",
        f"gen {fmt(pc['generation'])}/{fmt(pc['max_generation'])} · x{fmt(pc['width'])}/x{fmt(pc['max_width'])} · tx {fmt(pc['tx_kbs'], ' KB/s')} · rx {fmt(pc['rx_kbs'], ' KB/s')}",
    )
    procs = info["processes"]
    _kv(
        t,
        "Processes",
        "\n".join(
            f"{pr['pid']} {fmt(pr['name'])} ({pr['type']}, {fmt(pr['used_memory_mib'], ' MiB')})"
            for pr in procs
        )
        or "none",
    )
    return t


def _range(pair: list[int] | None) -> str:
    return NA if not pair else f"{pair[0]}-{pair[1]}"
