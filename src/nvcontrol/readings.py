"""What nvcontrol reads from a GPU: the full ``info`` record and the cheap ``sample``.

Values are plain JSON-ready dicts with units in the key names (``_mhz``, ``_w``, ``_c``,
``_pct``, ``_mib``).  A value the GPU or driver cannot give is ``None`` (N/A), never an
invented number.  Hot sampling batches what it can through field values and caches which
read path works per GPU.
"""

from __future__ import annotations

import ctypes
import time
from typing import Any

import pynvml

from nvcontrol.errors import GpuLost
from nvcontrol.nvml import Gpu, Nvml, _nullable_text

MIB = 1024 * 1024

BRANDS = {
    pynvml.NVML_BRAND_QUADRO: "Quadro",
    pynvml.NVML_BRAND_TESLA: "Tesla",
    pynvml.NVML_BRAND_NVS: "NVS",
    pynvml.NVML_BRAND_GRID: "GRID",
    pynvml.NVML_BRAND_GEFORCE: "GeForce",
    pynvml.NVML_BRAND_TITAN: "Titan",
    pynvml.NVML_BRAND_QUADRO_RTX: "Quadro RTX",
    pynvml.NVML_BRAND_NVIDIA_RTX: "NVIDIA RTX",
    pynvml.NVML_BRAND_NVIDIA: "NVIDIA",
    pynvml.NVML_BRAND_GEFORCE_RTX: "GeForce RTX",
    pynvml.NVML_BRAND_TITAN_RTX: "Titan RTX",
}
ARCHITECTURES = {
    pynvml.NVML_DEVICE_ARCH_KEPLER: "Kepler",
    pynvml.NVML_DEVICE_ARCH_MAXWELL: "Maxwell",
    pynvml.NVML_DEVICE_ARCH_PASCAL: "Pascal",
    pynvml.NVML_DEVICE_ARCH_VOLTA: "Volta",
    pynvml.NVML_DEVICE_ARCH_TURING: "Turing",
    pynvml.NVML_DEVICE_ARCH_AMPERE: "Ampere",
    pynvml.NVML_DEVICE_ARCH_ADA: "Ada Lovelace",
    pynvml.NVML_DEVICE_ARCH_HOPPER: "Hopper",
    pynvml.NVML_DEVICE_ARCH_BLACKWELL: "Blackwell",
}
COMPUTE_MODES = {
    pynvml.NVML_COMPUTEMODE_DEFAULT: "Default",
    pynvml.NVML_COMPUTEMODE_EXCLUSIVE_THREAD: "Exclusive_Thread",
    pynvml.NVML_COMPUTEMODE_PROHIBITED: "Prohibited",
    pynvml.NVML_COMPUTEMODE_EXCLUSIVE_PROCESS: "Exclusive_Process",
}
# Clocks-event (throttle) reasons, in nvidia-smi's order.
REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clocks_setting",
}
FAN_POLICIES = {
    pynvml.NVML_FAN_POLICY_TEMPERATURE_CONTINOUS_SW: "auto",
    pynvml.NVML_FAN_POLICY_MANUAL: "manual",
}
THRESHOLDS = {
    "shutdown_c": pynvml.NVML_TEMPERATURE_THRESHOLD_SHUTDOWN,
    "slowdown_c": pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN,
    "memory_max_c": pynvml.NVML_TEMPERATURE_THRESHOLD_MEM_MAX,
    "gpu_max_c": pynvml.NVML_TEMPERATURE_THRESHOLD_GPU_MAX,
    "acoustic_min_c": pynvml.NVML_TEMPERATURE_THRESHOLD_ACOUSTIC_MIN,
    "acoustic_current_c": pynvml.NVML_TEMPERATURE_THRESHOLD_ACOUSTIC_CURR,
    "acoustic_max_c": pynvml.NVML_TEMPERATURE_THRESHOLD_ACOUSTIC_MAX,
}
CLOCK_TYPES = {
    "graphics_mhz": pynvml.NVML_CLOCK_GRAPHICS,
    "sm_mhz": pynvml.NVML_CLOCK_SM,
    "memory_mhz": pynvml.NVML_CLOCK_MEM,
    "video_mhz": pynvml.NVML_CLOCK_VIDEO,
}

# Hot-path field ids (one nvmlDeviceGetFieldValues call per GPU per sample).
FI_POWER = pynvml.NVML_FI_DEV_POWER_INSTANT
FI_ENERGY = pynvml.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION
FI_MEM_TEMP = pynvml.NVML_FI_DEV_MEMORY_TEMP
FI_POWER_LIMIT = pynvml.NVML_FI_DEV_POWER_CURRENT_LIMIT
SAMPLE_FIELDS = (FI_POWER, FI_ENERGY, FI_MEM_TEMP, FI_POWER_LIMIT)


def reason_names(mask: int | None) -> list[str] | None:
    if mask is None:
        return None
    return [name for bit, name in REASONS.items() if mask & bit]


def watts(milliwatts: float | int | None) -> float | None:
    return None if milliwatts is None else round(milliwatts / 1000.0, 2)


def _mib(value: int | None) -> int | None:
    return None if value is None else value // MIB


def _joules(millijoules: float | int | None) -> float | None:
    return None if millijoules is None else round(millijoules / 1000.0, 3)


def pstate_name(value: int | None) -> str | None:
    if value is None or value == pynvml.NVML_PSTATE_UNKNOWN:
        return None
    return f"P{value}"


# ----------------------------------------------------------------------------- offsets


def read_clock_offsets(gpu: Gpu, pstate: int) -> dict[str, dict[str, int] | None] | None:
    """Graphics and memory offsets (MHz, NVML units) with their ranges for one pstate,
    through nvmlDeviceGetClockOffsets; ``None`` when the driver lacks that function."""
    out: dict[str, dict[str, int] | None] = {}
    for key, ctype in (("graphics", pynvml.NVML_CLOCK_GRAPHICS), ("memory", pynvml.NVML_CLOCK_MEM)):
        info = pynvml.c_nvmlClockOffset_t()
        info.version = pynvml.nvmlClockOffset_v1
        info.type = ctype
        info.pstate = pstate
        code = gpu.try_call("nvmlDeviceGetClockOffsets", ctypes.byref(info))
        if code == pynvml.NVML_ERROR_GPU_IS_LOST:
            raise GpuLost(f"{gpu.label} has fallen off the bus")
        if code == pynvml.NVML_ERROR_FUNCTION_NOT_FOUND:
            return None
        out[key] = (
            {
                "offset_mhz": info.clockOffsetMHz,
                "min_mhz": info.minClockOffsetMHz,
                "max_mhz": info.maxClockOffsetMHz,
            }
            if code == pynvml.NVML_SUCCESS
            else None
        )
    return out


def read_vf_offsets(gpu: Gpu) -> dict[str, dict[str, int] | None]:
    """The deprecated GPC/memory VF offsets (one value each, applied at P0)."""
    out: dict[str, dict[str, int] | None] = {}
    for key, get, rng in (
        ("graphics", pynvml.nvmlDeviceGetGpcClkVfOffset, pynvml.nvmlDeviceGetGpcClkMinMaxVfOffset),
        ("memory", pynvml.nvmlDeviceGetMemClkVfOffset, pynvml.nvmlDeviceGetMemClkMinMaxVfOffset),
    ):
        value = gpu.get(get)
        limits = gpu.get(rng)
        out[key] = (
            None
            if value is None or limits is None
            else {"offset_mhz": value, "min_mhz": limits[0], "max_mhz": limits[1]}
        )
    return out


def read_offsets(gpu: Gpu, pstates: list[int]) -> dict[str, Any]:
    """Offsets per supported pstate, naming the API that gave them."""
    per: dict[str, Any] = {}
    api: str | None = "clock_offsets"
    for p in pstates:
        got = read_clock_offsets(gpu, p)
        if got is None:
            api = None
            break
        if got["graphics"] is not None or got["memory"] is not None:
            per[f"P{p}"] = got
    if api is None:
        vf = read_vf_offsets(gpu)
        if vf["graphics"] is not None or vf["memory"] is not None:
            api, per = "vf_offsets", {"P0": vf}
    if not per:
        api = None
    return {"api": api, "pstates": per}


# ----------------------------------------------------------------------------- info


def _fans(gpu: Gpu) -> list[dict[str, Any]]:
    count = gpu.get(pynvml.nvmlDeviceGetNumFans)
    fans = []
    for i in range(count or 0):
        policy = gpu.get(pynvml.nvmlDeviceGetFanControlPolicy_v2, i)
        rpm_info = pynvml.c_nvmlFanSpeedInfo_t()
        rpm_info.version = pynvml.nvmlFanSpeedInfo_v1
        rpm_info.fan = i
        rpm_ok = gpu.try_call("nvmlDeviceGetFanSpeedRPM", ctypes.byref(rpm_info)) == 0
        rpm = rpm_info.speed if rpm_ok else None
        fans.append(
            {
                "index": i,
                "speed_pct": gpu.get(pynvml.nvmlDeviceGetFanSpeed_v2, i),
                "target_pct": gpu.get(pynvml.nvmlDeviceGetTargetFanSpeed, i),
                "rpm": rpm,
                "policy": FAN_POLICIES.get(policy) if policy is not None else None,
            }
        )
    return fans


def _processes(gpu: Gpu) -> list[dict[str, Any]]:
    procs: dict[int, dict[str, Any]] = {}
    for kind, fn in (
        ("compute", pynvml.nvmlDeviceGetComputeRunningProcesses),
        ("graphics", pynvml.nvmlDeviceGetGraphicsRunningProcesses),
    ):
        for p in gpu.get(fn) or []:
            entry = procs.setdefault(
                p.pid,
                {"pid": p.pid, "name": _process_name(p.pid), "used_memory_mib": None, "type": kind},
            )
            if entry["type"] != kind:
                entry["type"] = "compute+graphics"
            used = p.usedGpuMemory
            if used is not None:
                entry["used_memory_mib"] = used // MIB
    return sorted(procs.values(), key=lambda e: e["pid"])


def _process_name(pid: int) -> str | None:
    try:
        return _nullable_text(pynvml.nvmlSystemGetProcessName(pid))
    except pynvml.NVMLError:
        return None


def read_info(nvml: Nvml, gpu: Gpu) -> dict[str, Any]:
    """Everything the backend can read about one GPU."""
    get = gpu.get
    cc = get(pynvml.nvmlDeviceGetCudaComputeCapability)
    mem = get(pynvml.nvmlDeviceGetMemoryInfo, pynvml.nvmlMemory_v2) or get(
        pynvml.nvmlDeviceGetMemoryInfo
    )
    util = get(pynvml.nvmlDeviceGetUtilizationRates)
    enc = get(pynvml.nvmlDeviceGetEncoderUtilization)
    dec = get(pynvml.nvmlDeviceGetDecoderUtilization)
    pstates = get(pynvml.nvmlDeviceGetSupportedPerformanceStates) or []
    constraints = get(pynvml.nvmlDeviceGetPowerManagementLimitConstraints)
    default_limit = get(pynvml.nvmlDeviceGetPowerManagementDefaultLimit)
    limit = get(pynvml.nvmlDeviceGetPowerManagementLimit)
    energy = get(pynvml.nvmlDeviceGetTotalEnergyConsumption)
    persistence = get(pynvml.nvmlDeviceGetPersistenceMode)
    compute = get(pynvml.nvmlDeviceGetComputeMode)
    fan_range = get(pynvml.nvmlDeviceGetMinMaxFanSpeed)
    pci = get(pynvml.nvmlDeviceGetPciInfo)
    arch = get(pynvml.nvmlDeviceGetArchitecture)
    brand = get(pynvml.nvmlDeviceGetBrand)
    tx = get(pynvml.nvmlDeviceGetPcieThroughput, pynvml.NVML_PCIE_UTIL_TX_BYTES)
    rx = get(pynvml.nvmlDeviceGetPcieThroughput, pynvml.NVML_PCIE_UTIL_RX_BYTES)
    mem_temp = gpu.fields([FI_MEM_TEMP])[FI_MEM_TEMP]
    return {
        "index": gpu.index,
        "uuid": gpu.uuid,
        "name": gpu.name,
        "serial": gpu.serial,
        "pci_bus_id": gpu.pci_bus_id,
        "pci_device_id": f"0x{pci.pciDeviceId:08X}" if pci is not None else None,
        "brand": BRANDS.get(brand) if brand is not None else None,
        "architecture": ARCHITECTURES.get(arch) if arch is not None else None,
        "minor_number": get(pynvml.nvmlDeviceGetMinorNumber),
        "vbios_version": _nullable_text(get(pynvml.nvmlDeviceGetVbiosVersion)),
        "board_part_number": _nullable_text(get(pynvml.nvmlDeviceGetBoardPartNumber)),
        "compute_capability": f"{cc[0]}.{cc[1]}" if cc else None,
        "driver": nvml.system(),
        "memory": {
            "total_mib": mem.total // MIB if mem else None,
            "used_mib": mem.used // MIB if mem else None,
            "free_mib": mem.free // MIB if mem else None,
            "reserved_mib": _mib(getattr(mem, "reserved", None)),
            "total_bytes": mem.total if mem else None,
            "used_bytes": mem.used if mem else None,
        },
        "utilization": {
            "gpu_pct": util.gpu if util else None,
            "memory_pct": util.memory if util else None,
            "encoder_pct": enc[0] if enc else None,
            "decoder_pct": dec[0] if dec else None,
        },
        "temperature": {
            "gpu_c": get(pynvml.nvmlDeviceGetTemperature, pynvml.NVML_TEMPERATURE_GPU),
            "memory_c": mem_temp,
            "thresholds": {
                k: get(pynvml.nvmlDeviceGetTemperatureThreshold, v) for k, v in THRESHOLDS.items()
            },
        },
        "power": {
            "usage_w": watts(get(pynvml.nvmlDeviceGetPowerUsage)),
            "limit_w": watts(limit),
            "default_limit_w": watts(default_limit),
            "enforced_limit_w": watts(get(pynvml.nvmlDeviceGetEnforcedPowerLimit)),
            "min_limit_w": watts(constraints[0]) if constraints else None,
            "max_limit_w": watts(constraints[1]) if constraints else None,
            "limit_pct_of_default": round(100.0 * limit / default_limit, 1)
            if limit and default_limit
            else None,
            "energy_j": _joules(energy),
        },
        "clocks": {
            "current": {k: get(pynvml.nvmlDeviceGetClockInfo, t) for k, t in CLOCK_TYPES.items()},
            "max": {k: get(pynvml.nvmlDeviceGetMaxClockInfo, t) for k, t in CLOCK_TYPES.items()},
            "applications": {
                "graphics_mhz": get(
                    pynvml.nvmlDeviceGetApplicationsClock, pynvml.NVML_CLOCK_GRAPHICS
                ),
                "memory_mhz": get(pynvml.nvmlDeviceGetApplicationsClock, pynvml.NVML_CLOCK_MEM),
            },
        },
        "pstate": pstate_name(get(pynvml.nvmlDeviceGetPerformanceState)),
        "pstates": {
            f"P{p}": {
                "graphics_mhz": _minmax(gpu, pynvml.NVML_CLOCK_GRAPHICS, p),
                "memory_mhz": _minmax(gpu, pynvml.NVML_CLOCK_MEM, p),
            }
            for p in pstates
        },
        "offsets": read_offsets(gpu, pstates),
        "fans": _fans(gpu),
        "fan_speed_range_pct": list(fan_range) if fan_range else None,
        "persistence_mode": bool(persistence) if persistence is not None else None,
        "compute_mode": COMPUTE_MODES.get(compute) if compute is not None else None,
        "clocks_event_reasons": {
            "active": reason_names(_current_reasons(gpu)),
            "supported": reason_names(
                get(pynvml.nvmlDeviceGetSupportedClocksEventReasons)
                if gpu.static("reasons_api", _has_event_reasons, gpu)
                else get(pynvml.nvmlDeviceGetSupportedClocksThrottleReasons)
            ),
        },
        "pcie": {
            "generation": get(pynvml.nvmlDeviceGetCurrPcieLinkGeneration),
            "max_generation": get(pynvml.nvmlDeviceGetMaxPcieLinkGeneration),
            "width": get(pynvml.nvmlDeviceGetCurrPcieLinkWidth),
            "max_width": get(pynvml.nvmlDeviceGetMaxPcieLinkWidth),
            "tx_kbs": tx,
            "rx_kbs": rx,
        },
        "processes": _processes(gpu),
    }


def _has_event_reasons(_handle: Any, gpu: Gpu) -> bool:
    """Drivers before R535 only know the "throttle reasons" names of the same calls."""
    try:
        pynvml.nvmlDeviceGetCurrentClocksEventReasons(gpu.handle)
    except pynvml.NVMLError as err:
        return bool(err.value != pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
    return True


def _current_reasons(gpu: Gpu) -> int | None:
    if gpu.static("reasons_api", _has_event_reasons, gpu):
        return gpu.get(pynvml.nvmlDeviceGetCurrentClocksEventReasons)
    return gpu.get(pynvml.nvmlDeviceGetCurrentClocksThrottleReasons)


def _minmax(gpu: Gpu, clock: int, pstate: int) -> list[int] | None:
    got = gpu.get(pynvml.nvmlDeviceGetMinMaxClockOfPState, clock, pstate)
    return list(got) if got else None


# ----------------------------------------------------------------------------- sample


def read_sample(gpu: Gpu) -> dict[str, Any]:
    """The cheap per-interval reading used by ``gpu watch`` and metrics."""
    try:
        f = gpu.fields(SAMPLE_FIELDS)
        power = f[FI_POWER]
        if power is None:
            power = gpu.get(pynvml.nvmlDeviceGetPowerUsage)
        limit = f[FI_POWER_LIMIT]
        if limit is None:
            limit = gpu.static("power_limit", pynvml.nvmlDeviceGetEnforcedPowerLimit)
        util = gpu.get(pynvml.nvmlDeviceGetUtilizationRates)
        mem = gpu.get(pynvml.nvmlDeviceGetMemoryInfo)
        fans = gpu.static("fan_count", pynvml.nvmlDeviceGetNumFans) or 0
        fan = gpu.get(pynvml.nvmlDeviceGetFanSpeed_v2, 0) if fans else None
        reasons = _current_reasons(gpu)
        return {
            "index": gpu.index,
            "uuid": gpu.uuid,
            "lost": False,
            "gpu_util_pct": util.gpu if util else None,
            "memory_util_pct": util.memory if util else None,
            "temperature_c": gpu.get(pynvml.nvmlDeviceGetTemperature, pynvml.NVML_TEMPERATURE_GPU),
            "memory_temperature_c": f[FI_MEM_TEMP],
            "power_w": watts(power),
            "power_limit_w": watts(limit),
            "energy_j": _joules(f[FI_ENERGY]),
            "graphics_mhz": gpu.get(pynvml.nvmlDeviceGetClockInfo, pynvml.NVML_CLOCK_GRAPHICS),
            "sm_mhz": gpu.get(pynvml.nvmlDeviceGetClockInfo, pynvml.NVML_CLOCK_SM),
            "memory_mhz": gpu.get(pynvml.nvmlDeviceGetClockInfo, pynvml.NVML_CLOCK_MEM),
            "fan_pct": fan,
            "memory_used_mib": mem.used // MIB if mem else None,
            "memory_total_mib": mem.total // MIB if mem else None,
            "pstate": pstate_name(gpu.get(pynvml.nvmlDeviceGetPerformanceState)),
            "clocks_event_reasons": reason_names(reasons),
        }
    except GpuLost:
        return {"index": gpu.index, "uuid": gpu.uuid, "lost": True}


def sample_all(gpus: list[Gpu]) -> dict[str, Any]:
    return {"time": round(time.time(), 3), "gpus": [read_sample(g) for g in gpus]}
