"""GPU settings as one table of fields: each field knows its value's shape (the snapshot
schema), how to read itself from the driver, how to check a value against the driver's
ranges, and how to write itself.

A GPU's configuration is a flat mapping of dotted *field names* to values — the one
vocabulary shared by snapshots, diffs, transactions and rollbacks:

=============================  ==================================================
``offsets.P0.graphics_mhz``    clock offset per pstate, NVML MHz (int)
``offsets.P0.memory_mhz``      memory offset per pstate, NVML MHz (int)
``locked_clocks.graphics_mhz`` ``[min, max]`` or ``"unlocked"`` (as set: no getter)
``locked_clocks.memory_mhz``   ``[min, max]`` or ``"unlocked"``
``power_limit_w``              float watts
``persistence_mode``           bool
``compute_mode``               "Default" | "Exclusive_Process" | "Prohibited" | ...
``fans.N``                     ``{"policy": "auto"}`` or ``{"policy": "manual", "speed_pct": P}``
``fan_curve``                  ``{"points": "T:P,...", "hysteresis_c": H}`` or ``"none"``
=============================  ==================================================

:func:`check` is the schema (types and sane ranges, no GPU needed): ``snapshot create``
writes only values it accepts, and ``snapshot import``, every snapshot read and the
journal's pre-transaction state go through it.  :func:`validate` adds the driver's own
ranges and raises before anything is touched; :func:`apply` writes one field and returns
an :class:`Outcome` saying whether the driver took the value, snapped it, or ignored it.
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass
from typing import Any

import pynvml

from basis.errors import InvalidInput, Unsupported
from nvcontrol.control import locks
from nvcontrol.control.fancurve import FanCurve
from nvcontrol.control.journal import Journal
from nvcontrol.control.limits import (
    DOMAINS,
    MEMORY_UNITS_NOTE,
    checked,
    clock_range,
    fan_count,
    fan_range,
    offset_api,
    offset_info,
    offset_pstates,
    percent_range,
    power_range_w,
    set_offset,
)
from nvcontrol.control.transaction import Outcome
from nvcontrol.errors import from_nvml_code
from nvcontrol.nvml import Gpu
from nvcontrol.readings import COMPUTE_MODES

__all__ = [
    "DOMAINS",
    "Outcome",
    "apply",
    "check",
    "clock_range",
    "depth",
    "fan_count",
    "fan_range",
    "field_rank",
    "offset_api",
    "offset_info",
    "offset_pstates",
    "power_range_w",
    "read_config",
    "read_fan",
    "read_field",
    "validate",
]

COMPUTE_BY_NAME = {v.lower(): k for k, v in COMPUTE_MODES.items()}
# Sanity bounds of the schema (the driver's own, tighter ranges are checked by validate).
MAX_OFFSET_MHZ = 20_000
MAX_CLOCK_MHZ = 100_000
MAX_POWER_W = 10_000.0
MAX_FANS = 64


@dataclass
class Context:
    """What reading and writing need besides the GPU: the journal (locked clocks have no
    NVML getter) and the declared fan curves."""

    journal: Journal | None
    curves: dict[str, FanCurve] | None = None


def _bad(name: str, what: str, value: Any) -> InvalidInput:
    return InvalidInput(f"{name}: expected {what}, got {value!r}")


def _int(name: str, value: Any, lo: int, hi: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(name, what, value)
    if not lo <= value <= hi:
        raise InvalidInput(f"{name}: {value} is outside {lo}..{hi}")
    return value


class Field(abc.ABC):
    """One kind of setting.  ``pattern`` matches its dotted names; ``depth`` is how many
    dotted parts the name has (a snapshot file nests the parts as TOML tables)."""

    pattern: re.Pattern[str]
    depth = 1
    # "ok" normally; "recorded" where NVML has no getter and the value read back is ours.
    status_if_equal = "ok"

    @abc.abstractmethod
    def names(self, gpu: Gpu, ctx: Context) -> list[str]:
        raise NotImplementedError

    @abc.abstractmethod
    def check(self, name: str, value: Any) -> Any:
        """The schema: the value, normalised, or InvalidInput naming the field."""
        raise NotImplementedError

    @abc.abstractmethod
    def read(self, gpu: Gpu, name: str, ctx: Context) -> Any:
        raise NotImplementedError

    def validate(self, gpu: Gpu, name: str, value: Any) -> None:
        """The driver's ranges (the value already passed :meth:`check`).  A field whose
        :meth:`check` is the whole range keeps this default, which accepts."""
        return

    @abc.abstractmethod
    def write(self, gpu: Gpu, name: str, value: Any, ctx: Context) -> Any:
        """Set the value; returns the value as it should read back."""
        raise NotImplementedError


class Offsets(Field):
    pattern = re.compile(r"offsets\.P([0-9]|1[0-5])\.(graphics|memory)_mhz")
    depth = 3

    def names(self, gpu: Gpu, ctx: Context) -> list[str]:
        return [
            f"offsets.P{p}.{d}_mhz"
            for p in offset_pstates(gpu)
            for d in DOMAINS
            if offset_info(gpu, p, d) is not None
        ]

    def check(self, name: str, value: Any) -> int:
        return _int(name, value, -MAX_OFFSET_MHZ, MAX_OFFSET_MHZ, "an offset in whole MHz")

    @staticmethod
    def _parts(name: str) -> tuple[int, str]:
        m = Offsets.pattern.fullmatch(name)
        assert m is not None
        return int(m.group(1)), m.group(2)

    def read(self, gpu: Gpu, name: str, ctx: Context) -> int | None:
        info = offset_info(gpu, *self._parts(name))
        return info["offset_mhz"] if info else None

    def validate(self, gpu: Gpu, name: str, value: int) -> None:
        pstate, domain = self._parts(name)
        api = offset_api(gpu)
        if api is None:
            raise Unsupported(f"{gpu.label}: this GPU or driver does not support clock offsets")
        info = offset_info(gpu, pstate, domain)
        if info is None:
            where = (
                "the VF-offset API of this driver only offsets P0" if api == "vf_offsets" else ""
            )
            raise Unsupported(
                f"{gpu.label}: no {domain} clock offset at P{pstate}"
                + (f" ({where})" if where else ""),
                hint="use --pstate P0",
            )
        lo, hi = info["min_mhz"], info["max_mhz"]
        if not lo <= value <= hi:
            raise InvalidInput(
                f"{gpu.label}: {domain} offset {value:+d} MHz at P{pstate} is outside the "
                f"driver's range {lo:+d}..{hi:+d} MHz; nothing was changed",
                hint=f"choose a {domain} offset between {lo} and {hi} MHz ({MEMORY_UNITS_NOTE})",
            )

    def write(self, gpu: Gpu, name: str, value: int, ctx: Context) -> int:
        set_offset(gpu, *self._parts(name), value)
        return value


class LockedClocks(Field):
    pattern = re.compile(r"locked_clocks\.(graphics|memory)_mhz")
    depth = 2
    status_if_equal = "recorded"

    def names(self, gpu: Gpu, ctx: Context) -> list[str]:
        return [f"locked_clocks.{d}_mhz" for d in DOMAINS]

    def check(self, name: str, value: Any) -> Any:
        if value == "unlocked":
            return value
        what = '"unlocked" or [MIN, MAX] in MHz'
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise _bad(name, what, value)
        lo, hi = (_int(name, v, 0, MAX_CLOCK_MHZ, what) for v in value)
        if lo > hi:
            raise InvalidInput(f"{name}: MIN {lo} is above MAX {hi}")
        return [lo, hi]

    @staticmethod
    def _domain(name: str) -> str:
        return name.split(".")[1].removesuffix("_mhz")

    def read(self, gpu: Gpu, name: str, ctx: Context) -> Any:
        span = locks.recorded(gpu, ctx.journal).get(self._domain(name))
        return list(span) if span else "unlocked"

    def validate(self, gpu: Gpu, name: str, value: Any) -> None:
        if value == "unlocked":
            return
        domain = self._domain(name)
        lo_req, hi_req = value
        span = clock_range(gpu, domain)
        if span is None:
            raise Unsupported(
                f"{gpu.label}: the driver reports no {domain} clock range to lock within"
            )
        if lo_req < span[0] or hi_req > span[1]:
            raise InvalidInput(
                f"{gpu.label}: locked {domain} clocks {lo_req},{hi_req} MHz fall outside the "
                f"GPU's range {span[0]}..{span[1]} MHz; nothing was changed",
                hint=f"choose MIN,MAX within {span[0]}..{span[1]}",
            )

    def write(self, gpu: Gpu, name: str, value: Any, ctx: Context) -> Any:
        locks.write(gpu, self._domain(name), None if value == "unlocked" else value, ctx.journal)
        return value


class PowerLimit(Field):
    pattern = re.compile(r"power_limit_w")

    def names(self, gpu: Gpu, ctx: Context) -> list[str]:
        return ["power_limit_w"] if self.read(gpu, "power_limit_w", ctx) is not None else []

    def check(self, name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad(name, "a power limit in watts", value)
        from nvcontrol.numbers import check_float

        watts = check_float(float(value), name)
        if not 0 < watts <= MAX_POWER_W:
            raise InvalidInput(f"{name}: {watts:g} W is outside 0..{MAX_POWER_W:g} W")
        return watts

    def read(self, gpu: Gpu, name: str, ctx: Context) -> float | None:
        limit = gpu.get(pynvml.nvmlDeviceGetPowerManagementLimit)
        return None if limit is None else limit / 1000.0

    def validate(self, gpu: Gpu, name: str, value: float) -> None:
        rng = power_range_w(gpu)
        if rng is None:
            raise Unsupported(f"{gpu.label}: this GPU does not report an adjustable power limit")
        lo, hi, default = rng
        if not lo <= value <= hi:
            plo, phi = percent_range(lo, hi, default)
            raise InvalidInput(
                f"{gpu.label}: power limit {value:g} W ({100 * value / default:.0f}% of the "
                f"{default:g} W default) is outside {lo:g}..{hi:g} W "
                f"({plo:g}..{phi:g}%); nothing was changed",
                hint=f"choose --watts between {lo:g} and {hi:g}, or --percent between "
                f"{plo:g} and {phi:g}",
            )

    def write(self, gpu: Gpu, name: str, value: float, ctx: Context) -> float:
        import ctypes

        milliwatts = round(value * 1000)
        power = pynvml.c_nvmlPowerValue_v2_t()
        power.version = pynvml.nvmlPowerValue_v2
        power.powerScope = pynvml.NVML_POWER_SCOPE_GPU
        power.powerValueMw = milliwatts
        code = gpu.try_call("nvmlDeviceSetPowerManagementLimit_v2", ctypes.byref(power))
        if code == pynvml.NVML_ERROR_FUNCTION_NOT_FOUND:
            checked(gpu, pynvml.nvmlDeviceSetPowerManagementLimit, milliwatts)
        elif code != pynvml.NVML_SUCCESS:
            from nvcontrol.nvml import error_text

            raise from_nvml_code(
                "nvmlDeviceSetPowerManagementLimit_v2", code, error_text(code), gpu.label
            )
        return milliwatts / 1000.0


class Persistence(Field):
    pattern = re.compile(r"persistence_mode")

    def names(self, gpu: Gpu, ctx: Context) -> list[str]:
        return ["persistence_mode"] if self.read(gpu, "persistence_mode", ctx) is not None else []

    def check(self, name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise _bad(name, "true or false (not a string)", value)
        return value

    def read(self, gpu: Gpu, name: str, ctx: Context) -> bool | None:
        value = gpu.get(pynvml.nvmlDeviceGetPersistenceMode)
        return None if value is None else bool(value)

    def write(self, gpu: Gpu, name: str, value: bool, ctx: Context) -> bool:
        checked(gpu, pynvml.nvmlDeviceSetPersistenceMode, 1 if value else 0)
        return value


class ComputeMode(Field):
    pattern = re.compile(r"compute_mode")

    def names(self, gpu: Gpu, ctx: Context) -> list[str]:
        return ["compute_mode"] if self.read(gpu, "compute_mode", ctx) is not None else []

    def check(self, name: str, value: Any) -> str:
        if not isinstance(value, str) or value.lower() not in COMPUTE_BY_NAME:
            raise InvalidInput(
                f"{name}: unknown compute mode {value!r}",
                hint="one of: " + ", ".join(COMPUTE_MODES.values()),
            )
        return COMPUTE_MODES[COMPUTE_BY_NAME[value.lower()]]

    def read(self, gpu: Gpu, name: str, ctx: Context) -> str | None:
        value = gpu.get(pynvml.nvmlDeviceGetComputeMode)
        return None if value is None else COMPUTE_MODES.get(value, str(value))

    def write(self, gpu: Gpu, name: str, value: str, ctx: Context) -> str:
        checked(gpu, pynvml.nvmlDeviceSetComputeMode, COMPUTE_BY_NAME[value.lower()])
        return value


class Fans(Field):
    pattern = re.compile(r"fans\.([0-9]{1,2})")
    depth = 2

    def names(self, gpu: Gpu, ctx: Context) -> list[str]:
        return [f"fans.{i}" for i in range(fan_count(gpu)) if read_fan(gpu, i) is not None]

    def check(self, name: str, value: Any) -> dict[str, Any]:
        m = self.pattern.fullmatch(name)
        assert m is not None
        _int(name, int(m.group(1)), 0, MAX_FANS - 1, "a fan index")
        what = '{policy = "auto"} or {policy = "manual", speed_pct = P}'
        if not isinstance(value, dict) or value.get("policy") not in ("auto", "manual"):
            raise _bad(name, what, value)
        if value["policy"] == "auto":
            if set(value) != {"policy"}:
                raise _bad(name, what, value)
            return {"policy": "auto"}
        if set(value) != {"policy", "speed_pct"}:
            raise _bad(name, what, value)
        pct = value["speed_pct"]
        _int(f"{name}.speed_pct", pct, -(10**9), 10**9, "a speed in whole percent")
        if not 0 <= pct <= 100:
            raise InvalidInput(f"{name}.speed_pct: {pct}% is not a percentage (0..100)")
        return {"policy": "manual", "speed_pct": pct}

    def read(self, gpu: Gpu, name: str, ctx: Context) -> dict[str, Any] | None:
        return read_fan(gpu, int(name.split(".")[1]))

    def validate(self, gpu: Gpu, name: str, value: dict[str, Any]) -> None:
        index = int(name.split(".")[1])
        count = fan_count(gpu)
        if count == 0:
            raise Unsupported(f"{gpu.label}: this GPU has no controllable fans")
        if index >= count:
            raise InvalidInput(
                f"{gpu.label}: there is no fan {index}", hint=f"fans are 0..{count - 1}, or 'all'"
            )
        if value["policy"] == "manual":
            lo, hi = fan_range(gpu)
            pct = value["speed_pct"]
            if not lo <= pct <= hi:
                raise InvalidInput(
                    f"{gpu.label}: fan speed {pct}% is outside the fans' range {lo}..{hi}%; "
                    "nothing was changed",
                    hint=f"choose a speed between {lo} and {hi} percent",
                )

    def write(self, gpu: Gpu, name: str, value: dict[str, Any], ctx: Context) -> Any:
        index = int(name.split(".")[1])
        if value["policy"] == "manual":
            checked(gpu, pynvml.nvmlDeviceSetFanSpeed_v2, index, value["speed_pct"])
            return value
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
        return value


class Curve(Field):
    pattern = re.compile(r"fan_curve")

    def names(self, gpu: Gpu, ctx: Context) -> list[str]:
        return ["fan_curve"]

    def check(self, name: str, value: Any) -> Any:
        if value == "none":
            return value
        if not isinstance(value, dict) or set(value) - {"points", "hysteresis_c"}:
            raise _bad(name, '"none" or {points = "T:P,...", hysteresis_c = H}', value)
        try:
            return FanCurve.from_dict(value).to_dict()
        except InvalidInput as err:
            raise InvalidInput(f"{name}: {err.message}", hint=err.hint) from None

    def read(self, gpu: Gpu, name: str, ctx: Context) -> Any:
        if ctx.curves is None:
            from nvcontrol.control.fanstore import load_curves

            ctx.curves = load_curves()
        curve = ctx.curves.get(gpu.uuid)
        return curve.to_dict() if curve else "none"

    def write(self, gpu: Gpu, name: str, value: Any, ctx: Context) -> Any:
        from nvcontrol.control import fanstore

        curve = None if value == "none" else FanCurve.from_dict(value)
        fanstore.save_curve(gpu.uuid, curve)
        if ctx.curves is not None:
            ctx.curves.pop(gpu.uuid, None)
            if curve is not None:
                ctx.curves[gpu.uuid] = curve
        return value


# The order a whole configuration is applied in: modes and power first, clocks next, fans
# last (a restore that fails half-way leaves the safest settings done).
FIELDS: tuple[Field, ...] = (
    Persistence(),
    ComputeMode(),
    PowerLimit(),
    Offsets(),
    LockedClocks(),
    Fans(),
    Curve(),
)
_BY_ROOT = {f.pattern.pattern.split("\\.", 1)[0]: f for f in FIELDS}


def field_of(name: str) -> Field:
    f = _BY_ROOT.get(name.split(".")[0])
    if f is None or not f.pattern.fullmatch(name):
        raise InvalidInput(f"unknown setting {name!r}")
    return f


def field_rank(name: str) -> int:
    root = _BY_ROOT.get(name.split(".")[0])
    return FIELDS.index(root) if root else len(FIELDS)


def depth(root: str) -> int:
    """How many dotted parts a field name under ``root`` has (1 if it is not a field)."""
    f = _BY_ROOT.get(root)
    return f.depth if f else 1


def check(name: str, value: Any) -> Any:
    """The snapshot schema for one field: its value, normalised, or InvalidInput."""
    return field_of(name).check(name, value)


# --------------------------------------------------------------------------- public


def read_config(gpu: Gpu, journal: Journal | None, curves: dict[str, FanCurve]) -> dict[str, Any]:
    """The GPU's configuration as flat fields (only fields this GPU has)."""
    ctx = Context(journal, curves)
    return {name: f.read(gpu, name, ctx) for f in FIELDS for name in f.names(gpu, ctx)}


def read_fan(gpu: Gpu, i: int) -> dict[str, Any] | None:
    policy = gpu.get(pynvml.nvmlDeviceGetFanControlPolicy_v2, i)
    if policy is None:
        return None
    if policy == pynvml.NVML_FAN_POLICY_MANUAL:
        target = gpu.get(pynvml.nvmlDeviceGetTargetFanSpeed, i)
        if target is None:
            target = gpu.get(pynvml.nvmlDeviceGetFanSpeed_v2, i)
        return {"policy": "manual", "speed_pct": target}
    return {"policy": "auto"}


def read_field(gpu: Gpu, name: str, journal: Journal | None) -> Any:
    """Read one field back from the driver (or the record, for locked clocks)."""
    return field_of(name).read(gpu, name, Context(journal))


def validate(gpu: Gpu, name: str, value: Any) -> None:
    """Raise a user error naming the GPU, the limit and the fix if ``value`` cannot be set
    (the schema first, then the driver's ranges)."""
    f = field_of(name)
    try:
        value = f.check(name, value)
    except InvalidInput as err:
        raise InvalidInput(f"{gpu.label}: {err.message}", hint=err.hint) from None
    f.validate(gpu, name, value)


def judge(requested: Any, before: Any, applied: Any) -> str:
    if applied == requested:
        return "ok"
    if applied != before and applied is not None:
        return "snapped"
    return "ignored"


def apply(gpu: Gpu, name: str, value: Any, journal: Journal | None, before: Any) -> Outcome:
    """Write one field, read it back, and say what happened.  NVML errors propagate as
    user errors (the caller decides whether that means "nothing changed" or a rollback)."""
    f = field_of(name)
    ctx = Context(journal)
    value = f.write(gpu, name, f.check(name, value), ctx)
    applied = f.read(gpu, name, ctx)
    status = judge(value, before, applied)
    return Outcome(
        gpu.uuid,
        gpu.label,
        name,
        value,
        before,
        applied,
        f.status_if_equal if status == "ok" else status,
    )
