"""The simulator's own view of an instance, as plain data for ``nvsim status``.

This shows everything, including what NVML never reveals (the hidden stable offsets,
accumulated instability, injected faults), because it is the simulator's view.
"""

from __future__ import annotations

from typing import Any

from nvsim import layout, model
from nvsim.instance import LOG_FILE, daemon_running, device_node_specs
from nvsim.state import StateFile

MIB = 1024 * 1024

REASON_NAMES = {
    layout.REASON_GPU_IDLE: "gpu_idle",
    layout.REASON_APP_CLOCKS: "applications_clocks",
    layout.REASON_SW_POWER_CAP: "sw_power_cap",
    layout.REASON_HW_SLOWDOWN: "hw_slowdown",
    layout.REASON_SYNC_BOOST: "sync_boost",
    layout.REASON_SW_THERMAL: "sw_thermal_slowdown",
    layout.REASON_HW_THERMAL: "hw_thermal_slowdown",
    layout.REASON_HW_POWER_BRAKE: "hw_power_brake",
    layout.REASON_DISPLAY_CLOCKS: "display_clocks",
}


def reason_names(mask: int) -> list[str]:
    return [name for bit, name in REASON_NAMES.items() if mask & bit]


def snapshot(sf: StateFile) -> dict[str, Any]:
    h = sf.header
    state_dir = sf.path.parent
    nodes = [
        str(state_dir / "dev" / name)
        for name, _, _ in device_node_specs(h.gpu_count)
        if (state_dir / "dev" / name).exists()
    ]
    return {
        "state_dir": str(state_dir),
        "daemon": {
            "pid": h.daemon_pid,
            "alive": daemon_running(h),
            "log": str(state_dir / LOG_FILE),
            "tick_us": h.tick_us,
            "ticks": h.seq,
        },
        "driver_version": h.driver_version.decode(),
        "nvml_version": h.nvml_version.decode(),
        "cuda_version": f"{h.cuda_version // 1000}.{h.cuda_version % 1000 // 10}",
        "driver_fault": h.driver_fault,
        "time_scale": h.time_scale,
        "library": str(state_dir / "lib" / "libnvidia-ml.so.1"),
        "device_nodes": nodes,
        "gpus": [gpu_view(i, g) for i, g in enumerate(sf.gpus())],
    }


def gpu_view(index: int, g: layout.Gpu) -> dict[str, Any]:
    supported = [p for p in range(layout.MAX_PSTATES) if g.pstates[p].supported]
    has_offsets = bool(g.features & layout.FEAT_CLOCK_OFFSETS)
    locked = None
    if g.locked_gpc_max or g.locked_mem_max:
        locked = {
            "gpc_mhz": [g.locked_gpc_min, g.locked_gpc_max] if g.locked_gpc_max else None,
            "mem_mhz": [g.locked_mem_min, g.locked_mem_max] if g.locked_mem_max else None,
        }
    return {
        "index": index,
        "uuid": g.uuid.decode(),
        "name": g.name.decode(),
        "model": g.model_key.decode(),
        "pci_bus_id": g.pci_bus_id.decode(),
        "serial": g.serial.decode(),
        "load_pct": g.load_pct,
        "utilization": {"gpu_pct": g.util_gpu, "memory_pct": g.util_mem},
        "memory": {"total_mib": g.mem_total // MIB, "used_mib": g.mem_used // MIB},
        "temperature_c": round(g.temp_c, 1),
        "memory_temperature_c": round(g.mem_temp_c, 1)
        if g.features & layout.FEAT_MEM_TEMP
        else None,
        "power_w": round(g.power_mw / 1000, 1),
        "power_limit_w": g.power_limit_mw / 1000,
        "power_default_w": g.power_default_mw / 1000,
        "energy_j": round(g.energy_mj / 1000, 1),
        "pstate": f"P{g.pstate}",
        "clocks_mhz": {
            "graphics": g.gpc_mhz,
            "sm": g.sm_mhz,
            "memory": g.mem_mhz,
            "video": g.video_mhz,
        },
        "clocks_event_reasons": reason_names(g.reasons),
        "offsets_mhz": {
            f"P{p}": {"gpc": g.pstates[p].gpc_offset_mhz, "mem": g.pstates[p].mem_offset_mhz}
            for p in supported
        }
        if has_offsets
        else None,
        "locked_clocks": locked,
        "fans": [
            {
                "policy": "manual" if g.fans[i].policy == layout.FAN_POLICY_MANUAL else "auto",
                "target_pct": g.fans[i].target_pct,
                "speed_pct": round(g.fans[i].speed_pct, 1),
                "rpm": g.fans[i].rpm,
            }
            for i in range(min(g.fan_count, layout.MAX_FANS))
        ],
        "pcie": {"gen": g.pcie_gen, "width": g.pcie_width},
        "persistence": bool(g.persistence),
        "compute_mode": g.compute_mode,
        "processes": [{"pid": p.pid, "used_mib": p.used_bytes // MIB} for p in g.procs if p.pid],
        "lost": g.lost == layout.LOST_YES,
        "fault_thermal": bool(g.fault_thermal),
        "xid_count": g.xid_count,
        "instability": round(g.instability, 2),
        "hidden": {
            "stable_gpc_offset_mhz": g.stable_gpc_offset if has_offsets else None,
            "stable_mem_offset_mhz": g.stable_mem_offset if has_offsets else None,
            "instability_lost_at": model.INSTABILITY_LOST_AT,
        },
    }
