"""What the driver says a GPU can be set to: offset APIs and ranges, clock, power and fan
ranges, and the NVML calls that set offsets.  Read-only questions plus one checked call
helper; :mod:`nvcontrol.control.settings` builds its fields on these."""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable
from typing import Any

import pynvml

from nvcontrol.errors import from_nvml_code
from nvcontrol.nvml import Gpu
from nvcontrol.readings import read_clock_offsets, read_vf_offsets

DOMAINS = ("graphics", "memory")
MEMORY_UNITS_NOTE = (
    "offsets are in NVML MHz; nvidia-settings' GPUMemoryTransferRateOffset numbers are twice "
    "NVML's memory offset"
)


def checked(gpu: Gpu, fn: Callable[..., Any], *args: Any) -> Any:
    """Call an nvidia-ml-py function that raises, turning its error into the user error
    that names the GPU (permission -> exit 4, unsupported -> 3, rejected value -> 2)."""
    try:
        return fn(gpu.handle, *args)
    except pynvml.NVMLError as err:
        raise from_nvml_code(fn.__name__, err.value, str(err), gpu.label) from None


# --------------------------------------------------------------------------- offsets


def offset_api(gpu: Gpu) -> str | None:
    """``clock_offsets`` (R555+), ``vf_offsets`` (older drivers), or ``None``."""

    def detect() -> str | None:
        got = read_clock_offsets(gpu, 0)
        if got is not None:  # the driver has the function; does this GPU answer it?
            return "clock_offsets" if any(got.values()) else None
        vf = read_vf_offsets(gpu)
        return "vf_offsets" if vf["graphics"] or vf["memory"] else None

    if "offset_api" not in gpu._cache:
        gpu._cache["offset_api"] = detect()
    return gpu._cache["offset_api"]  # type: ignore[no-any-return]


def offset_info(gpu: Gpu, pstate: int, domain: str) -> dict[str, int] | None:
    """``{"offset_mhz", "min_mhz", "max_mhz"}`` for one pstate and domain, or ``None``."""
    api = offset_api(gpu)
    if api == "clock_offsets":
        got = read_clock_offsets(gpu, pstate)
        return got.get(domain) if got else None
    if api == "vf_offsets" and pstate == 0:
        return read_vf_offsets(gpu)[domain]
    return None


def offset_pstates(gpu: Gpu) -> list[int]:
    if offset_api(gpu) == "vf_offsets":
        return [0]
    return gpu.get(pynvml.nvmlDeviceGetSupportedPerformanceStates) or []


def set_offset(gpu: Gpu, pstate: int, domain: str, mhz: int) -> None:
    if offset_api(gpu) == "clock_offsets":
        info = pynvml.c_nvmlClockOffset_t()
        info.version = pynvml.nvmlClockOffset_v1
        info.type = pynvml.NVML_CLOCK_GRAPHICS if domain == "graphics" else pynvml.NVML_CLOCK_MEM
        info.pstate = pstate
        info.clockOffsetMHz = mhz
        gpu.call("nvmlDeviceSetClockOffsets", ctypes.byref(info))
    elif domain == "graphics":
        checked(gpu, pynvml.nvmlDeviceSetGpcClkVfOffset, mhz)
    else:
        checked(gpu, pynvml.nvmlDeviceSetMemClkVfOffset, mhz)


# --------------------------------------------------------------------------- ranges


def clock_range(gpu: Gpu, domain: str) -> tuple[int, int] | None:
    """The clocks a lock may ask for: lowest pstate minimum .. the GPU's maximum clock."""
    ctype = pynvml.NVML_CLOCK_GRAPHICS if domain == "graphics" else pynvml.NVML_CLOCK_MEM
    top = gpu.get(pynvml.nvmlDeviceGetMaxClockInfo, ctype)
    lows = []
    for p in gpu.get(pynvml.nvmlDeviceGetSupportedPerformanceStates) or []:
        got = gpu.get(pynvml.nvmlDeviceGetMinMaxClockOfPState, ctype, p)
        if got:
            lows.append(got[0])
    if top is None:
        return None
    return (min(lows) if lows else 0, top)


def power_range_w(gpu: Gpu) -> tuple[float, float, float] | None:
    """(min, max, default) power limit in watts, or ``None`` when not adjustable."""
    cons = gpu.get(pynvml.nvmlDeviceGetPowerManagementLimitConstraints)
    default = gpu.get(pynvml.nvmlDeviceGetPowerManagementDefaultLimit)
    if not cons or default is None:
        return None
    return cons[0] / 1000.0, cons[1] / 1000.0, default / 1000.0


def percent_range(lo_w: float, hi_w: float, default_w: float) -> tuple[float, float]:
    """The percents of the default limit (to 0.1 %) whose watts fall inside lo..hi: what
    ``--percent`` accepts, so a hint never offers a percent that is then refused."""
    lo = math.ceil(round(1000 * lo_w / default_w, 6)) / 10
    hi = math.floor(round(1000 * hi_w / default_w, 6)) / 10
    return lo, hi


def fan_count(gpu: Gpu) -> int:
    return gpu.get(pynvml.nvmlDeviceGetNumFans) or 0


def fan_range(gpu: Gpu) -> tuple[int, int]:
    """The speeds the fans accept, in percent: the one range every fan message uses."""
    got = gpu.get(pynvml.nvmlDeviceGetMinMaxFanSpeed)
    return (int(got[0]), int(got[1])) if got else (0, 100)
