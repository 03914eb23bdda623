"""Read and write single GPU settings, each write read back and judged.

A GPU's configuration is a flat mapping of dotted *fields* to values — the one vocabulary
shared by snapshots, diffs, transactions and rollbacks:

=============================  ==================================================
``offsets.P0.graphics_mhz``    clock offset per pstate, NVML MHz (int)
``offsets.P0.memory_mhz``      memory offset per pstate, NVML MHz (int)
``locked_clocks.graphics_mhz`` ``[min, max]`` or ``"unlocked"`` (as set: no getter)
``locked_clocks.memory_mhz``   ``[min, max]`` or ``"unlocked"``
``power_limit_w``              float watts
``persistence_mode``           bool
``compute_mode``               "Default" | "Exclusive_Process" | "Prohibited" | ...
``fans.N``                     ``{"policy": "auto"}`` or ``{"policy": "manual", "speed_pct": P}``
``fan_curve``                  ``{"points": [[T, P], ...], "hysteresis_c": H}`` or ``"none"``
=============================  ==================================================

Validation (:func:`validate`) uses the driver's own ranges and raises before anything is
touched; :func:`apply` writes one field and returns an :class:`Outcome` saying whether the
driver took the value, snapped it, or ignored it.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import pynvml

from basis.errors import InvalidInput, Unsupported
from nvcontrol.control.fancurve import FanCurve
from nvcontrol.control.journal import Journal
from nvcontrol.control.transaction import Outcome
from nvcontrol.errors import from_nvml_code
from nvcontrol.nvml import Gpu
from nvcontrol.readings import COMPUTE_MODES, read_clock_offsets, read_vf_offsets

DOMAINS = ("graphics", "memory")
COMPUTE_BY_NAME = {v.lower(): k for k, v in COMPUTE_MODES.items()}
MEMORY_UNITS_NOTE = (
    "offsets are in NVML MHz; nvidia-settings' GPUMemoryTransferRateOffset numbers are twice "
    "NVML's memory offset"
)
# The order a whole configuration is applied in: power and modes first, clocks next,
# fans last (a restore that fails half-way leaves the safest settings done).
FIELD_ORDER = ("persistence_mode", "compute_mode", "power_limit_w", "offsets", "locked", "fan")


def field_rank(name: str) -> int:
    for i, prefix in enumerate(FIELD_ORDER):
        if name.startswith(prefix):
            return i
    return len(FIELD_ORDER)


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


def _set_offset(gpu: Gpu, pstate: int, domain: str, mhz: int) -> None:
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


def fan_count(gpu: Gpu) -> int:
    return gpu.get(pynvml.nvmlDeviceGetNumFans) or 0


def fan_range(gpu: Gpu) -> tuple[int, int]:
    got = gpu.get(pynvml.nvmlDeviceGetMinMaxFanSpeed)
    return (int(got[0]), int(got[1])) if got else (0, 100)


# --------------------------------------------------------------------------- read


def read_config(gpu: Gpu, journal: Journal | None, curves: dict[str, FanCurve]) -> dict[str, Any]:
    """The GPU's configuration as flat fields (only fields this GPU has)."""
    cfg: dict[str, Any] = {}
    for p in offset_pstates(gpu):
        for domain in DOMAINS:
            info = offset_info(gpu, p, domain)
            if info is not None:
                cfg[f"offsets.P{p}.{domain}_mhz"] = info["offset_mhz"]
    locks = journal.locked_clocks(gpu.uuid) if journal else {}
    for domain in DOMAINS:
        span = locks.get(domain)
        cfg[f"locked_clocks.{domain}_mhz"] = list(span) if span else "unlocked"
    limit = gpu.get(pynvml.nvmlDeviceGetPowerManagementLimit)
    if limit is not None:
        cfg["power_limit_w"] = limit / 1000.0
    persistence = gpu.get(pynvml.nvmlDeviceGetPersistenceMode)
    if persistence is not None:
        cfg["persistence_mode"] = bool(persistence)
    compute = gpu.get(pynvml.nvmlDeviceGetComputeMode)
    if compute is not None:
        cfg["compute_mode"] = COMPUTE_MODES.get(compute, str(compute))
    for i in range(fan_count(gpu)):
        fan = read_fan(gpu, i)
        if fan is not None:
            cfg[f"fans.{i}"] = fan
    curve = curves.get(gpu.uuid)
    cfg["fan_curve"] = curve.to_dict() if curve else "none"
    return cfg


def read_fan(gpu: Gpu, i: int) -> dict[str, Any] | None:
    policy = gpu.get(pynvml.nvmlDeviceGetFanControlPolicy_v2, i)
    if policy is None:
        return None
    if policy == pynvml.NVML_FAN_POLICY_MANUAL:
        return {"policy": "manual", "speed_pct": gpu.get(pynvml.nvmlDeviceGetTargetFanSpeed, i)}
    return {"policy": "auto"}


def read_field(gpu: Gpu, name: str, journal: Journal | None) -> Any:
    """Read one field back from the driver (or the record, for locked clocks)."""
    parts = name.split(".")
    if parts[0] == "offsets":
        info = offset_info(gpu, int(parts[1][1:]), parts[2].removesuffix("_mhz"))
        return info["offset_mhz"] if info else None
    if parts[0] == "locked_clocks":
        span = (journal.locked_clocks(gpu.uuid) if journal else {}).get(
            parts[1].removesuffix("_mhz")
        )
        return list(span) if span else "unlocked"
    if parts[0] == "fans":
        return read_fan(gpu, int(parts[1]))
    if name == "power_limit_w":
        limit = gpu.get(pynvml.nvmlDeviceGetPowerManagementLimit)
        return None if limit is None else limit / 1000.0
    if name == "persistence_mode":
        value = gpu.get(pynvml.nvmlDeviceGetPersistenceMode)
        return None if value is None else bool(value)
    if name == "compute_mode":
        value = gpu.get(pynvml.nvmlDeviceGetComputeMode)
        return None if value is None else COMPUTE_MODES.get(value, str(value))
    raise ValueError(f"unknown setting {name!r}")


# --------------------------------------------------------------------------- validate


def validate(gpu: Gpu, name: str, value: Any) -> None:
    """Raise a user error naming the GPU, the limit and the fix if ``value`` cannot be set."""
    parts = name.split(".")
    if parts[0] == "offsets":
        _validate_offset(gpu, parts[1], parts[2].removesuffix("_mhz"), value)
    elif parts[0] == "locked_clocks":
        _validate_lock(gpu, parts[1].removesuffix("_mhz"), value)
    elif parts[0] == "fans":
        _validate_fan(gpu, int(parts[1]), value)
    elif name == "power_limit_w":
        _validate_power(gpu, float(value))
    elif name == "compute_mode":
        if str(value).lower() not in COMPUTE_BY_NAME:
            raise InvalidInput(
                f"{gpu.label}: unknown compute mode {value!r}",
                hint="one of: " + ", ".join(COMPUTE_MODES.values()),
            )
    elif name not in ("persistence_mode", "fan_curve"):
        raise InvalidInput(f"unknown setting {name!r}")


def _validate_offset(gpu: Gpu, pstate_name: str, domain: str, value: int) -> None:
    api = offset_api(gpu)
    if api is None:
        raise Unsupported(f"{gpu.label}: this GPU or driver does not support clock offsets")
    pstate = int(pstate_name[1:])
    info = offset_info(gpu, pstate, domain)
    if info is None:
        where = "the VF-offset API of this driver only offsets P0" if api == "vf_offsets" else ""
        raise Unsupported(
            f"{gpu.label}: no {domain} clock offset at {pstate_name}"
            + (f" ({where})" if where else ""),
            hint="use --pstate P0",
        )
    lo, hi = info["min_mhz"], info["max_mhz"]
    if not lo <= value <= hi:
        raise InvalidInput(
            f"{gpu.label}: {domain} offset {value:+d} MHz at {pstate_name} is outside the "
            f"driver's range {lo:+d}..{hi:+d} MHz; nothing was changed",
            hint=f"choose a {domain} offset between {lo} and {hi} MHz ({MEMORY_UNITS_NOTE})",
        )


def _validate_lock(gpu: Gpu, domain: str, value: Any) -> None:
    if value == "unlocked":
        return
    lo_req, hi_req = int(value[0]), int(value[1])
    if lo_req > hi_req:
        raise InvalidInput(f"{gpu.label}: locked {domain} clock MIN {lo_req} is above MAX {hi_req}")
    span = clock_range(gpu, domain)
    if span is None:
        raise Unsupported(f"{gpu.label}: the driver reports no {domain} clock range to lock within")
    if lo_req < span[0] or hi_req > span[1]:
        raise InvalidInput(
            f"{gpu.label}: locked {domain} clocks {lo_req},{hi_req} MHz fall outside the "
            f"GPU's range {span[0]}..{span[1]} MHz; nothing was changed",
            hint=f"choose MIN,MAX within {span[0]}..{span[1]}",
        )


def _validate_fan(gpu: Gpu, index: int, value: dict[str, Any]) -> None:
    count = fan_count(gpu)
    if count == 0:
        raise Unsupported(f"{gpu.label}: this GPU has no controllable fans")
    if index >= count:
        raise InvalidInput(
            f"{gpu.label}: there is no fan {index}", hint=f"fans are 0..{count - 1}, or 'all'"
        )
    if value.get("policy") == "manual":
        lo, hi = fan_range(gpu)
        pct = int(value["speed_pct"])
        if not lo <= pct <= hi:
            raise InvalidInput(
                f"{gpu.label}: fan speed {pct}% is outside the fans' range {lo}..{hi}%; "
                "nothing was changed",
                hint=f"choose a speed between {lo} and {hi} percent",
            )


def _validate_power(gpu: Gpu, watts: float) -> None:
    rng = power_range_w(gpu)
    if rng is None:
        raise Unsupported(f"{gpu.label}: this GPU does not report an adjustable power limit")
    lo, hi, default = rng
    if not lo <= watts <= hi:
        raise InvalidInput(
            f"{gpu.label}: power limit {watts:g} W ({100 * watts / default:.0f}% of the "
            f"{default:g} W default) is outside {lo:g}..{hi:g} W "
            f"({100 * lo / default:.0f}..{100 * hi / default:.0f}%); nothing was changed",
            hint=f"choose --watts between {lo:g} and {hi:g}, or --percent between "
            f"{100 * lo / default:.0f} and {100 * hi / default:.0f}",
        )


# --------------------------------------------------------------------------- write


def judge(requested: Any, before: Any, applied: Any) -> str:
    if applied == requested:
        return "ok"
    if applied != before and applied is not None:
        return "snapped"
    return "ignored"


def apply(gpu: Gpu, name: str, value: Any, journal: Journal | None, before: Any) -> Outcome:
    """Write one field, read it back, and say what happened.  NVML errors propagate as
    user errors (the caller decides whether that means "nothing changed" or a rollback)."""
    parts = name.split(".")
    status_if_equal = "ok"
    if parts[0] == "offsets":
        _set_offset(gpu, int(parts[1][1:]), parts[2].removesuffix("_mhz"), int(value))
    elif parts[0] == "locked_clocks":
        _set_lock(gpu, parts[1].removesuffix("_mhz"), value, journal)
        status_if_equal = "recorded"
    elif parts[0] == "fans":
        _set_fan(gpu, int(parts[1]), value)
    elif name == "power_limit_w":
        _set_power(gpu, round(float(value) * 1000))
        value = round(float(value) * 1000) / 1000.0
    elif name == "persistence_mode":
        checked(gpu, pynvml.nvmlDeviceSetPersistenceMode, 1 if value else 0)
    elif name == "compute_mode":
        checked(gpu, pynvml.nvmlDeviceSetComputeMode, COMPUTE_BY_NAME[str(value).lower()])
    elif name == "fan_curve":
        from nvcontrol.control import fanstore

        fanstore.save_curve(gpu.uuid, None if value == "none" else FanCurve.from_dict(value))
        return Outcome(gpu.uuid, gpu.label, name, value, before, value, "ok")
    applied = read_field(gpu, name, journal)
    status = judge(value, before, applied)
    return Outcome(
        gpu.uuid,
        gpu.label,
        name,
        value,
        before,
        applied,
        status_if_equal if status == "ok" else status,
    )


def _set_lock(gpu: Gpu, domain: str, value: Any, journal: Journal | None) -> None:
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
    if value == "unlocked":
        checked(gpu, reset_fn)
        span = None
    else:
        span = (int(value[0]), int(value[1]))
        checked(gpu, set_fn, *span)
    if journal is not None:
        journal.record_lock(gpu.uuid, domain, span)


def _set_fan(gpu: Gpu, index: int, value: dict[str, Any]) -> None:
    if value.get("policy") == "manual":
        checked(gpu, pynvml.nvmlDeviceSetFanSpeed_v2, index, int(value["speed_pct"]))
        return
    checked(gpu, pynvml.nvmlDeviceSetDefaultFanSpeed_v2, index)
    try:
        pynvml.nvmlDeviceSetFanControlPolicy(
            gpu.handle, index, pynvml.NVML_FAN_POLICY_TEMPERATURE_CONTINOUS_SW
        )
    except pynvml.NVMLError as err:
        if err.value != pynvml.NVML_ERROR_NOT_SUPPORTED:
            raise from_nvml_code(
                "nvmlDeviceSetFanControlPolicy", err.value, str(err), gpu.label
            ) from None


def _set_power(gpu: Gpu, milliwatts: int) -> None:
    value = pynvml.c_nvmlPowerValue_v2_t()
    value.version = pynvml.nvmlPowerValue_v2
    value.powerScope = pynvml.NVML_POWER_SCOPE_GPU
    value.powerValueMw = milliwatts
    code = gpu.try_call("nvmlDeviceSetPowerManagementLimit_v2", ctypes.byref(value))
    if code == pynvml.NVML_ERROR_FUNCTION_NOT_FOUND:
        checked(gpu, pynvml.nvmlDeviceSetPowerManagementLimit, milliwatts)
    elif code != pynvml.NVML_SUCCESS:
        from nvcontrol.nvml import error_text

        raise from_nvml_code(
            "nvmlDeviceSetPowerManagementLimit_v2", code, error_text(code), gpu.label
        )
