"""The physical model of one virtual GPU, as a pure function.

:func:`step` moves one :class:`nvsim.layout.Gpu` forward by ``dt`` seconds of simulated
time.  It reads the static description, the settings (written by the NVML setters) and
the control fields (written by ``nvsim load``/``fault``), writes the dynamic fields, and
returns the events that happened.  It never reads a clock, sleeps or touches a file: the
daemon owns time and I/O, so tests drive this module with a bare ``layout.Gpu()``.

What the model does, in the order of one sub-step:

* **Performance state.**  Any load puts the board in P0; no load drops it to its lowest
  supported state (P8 on GeForce) with idle clocks, PCIe at gen 1 and ``GPU_IDLE``.
* **Clocks.**  Under load the core runs at its stock boost plus the P-state's offset,
  inside the locked-clock range if one is set (a lock below boost reports
  ``APP_CLOCKS``).  The memory runs at the P-state's clock plus its offset.  Then the
  throttles cut the core clock: above the target (acoustic)
  temperature ``SW_THERMAL``, at the slowdown threshold ``HW_SLOWDOWN | HW_THERMAL`` (with
  hysteresis), and where the board would draw more than its power limit ``SW_POWER_CAP``.
* **Power** follows load and clocks and lags a little, like the driver's averaged sensor;
  energy integrates it.
* **Sensor noise.**  With ``sensor_noise_pct`` set, each sub-step adds uniform noise of
  that many percent to the power reading and of ``TEMP_NOISE_C_PER_PCT`` degrees per
  percent to the die temperature, as real sensors jitter around the trend.  The noise comes
  from a xorshift generator whose state lives in the GPU (seeded from ``--seed`` at up), so
  a run is reproducible tick for tick.
* **Temperature** relaxes towards ambient + power x thermal resistance; the resistance
  falls as the fans speed up and rises sharply under ``fault_thermal`` (a cooling failure,
  held back only by the thermal throttles; a board that still reaches its shutdown
  temperature is lost with Xid 79).  Time constants are compressed (seconds, not
  minutes) so tests see changes quickly; ``header.time_scale`` speeds them up further.
* **Fans** follow a temperature curve under the automatic policy, or the manual target,
  with a lag; rpm is proportional to speed.
* **Stability.**  Under load (>= 20 %), offsets above the board's hidden stable limit
  accumulate instability: about one Xid per second of simulated time, and after a few
  seconds Xid 79 and the board is lost until ``nvsim reset``.  A lost board freezes.

Events: ``EVENT_PSTATE`` (data: the new P-state) when the P-state changes,
``EVENT_CLOCK`` (data: the new reasons mask) when the clocks-event reasons change, and
``EVENT_XID_CRITICAL`` (data: the Xid) for every Xid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nvsim import layout
from nvsim.models import AMBIENT_C, base_memory

XID_GRAPHICS_EXCEPTION = 13
XID_MEMORY_PAGE_FAULT = 31
XID_GPU_STOPPED = 43
XID_FALLEN_OFF_BUS = 79

MAX_SUBSTEP_S = 0.1  # longer steps are split so the throttle loops stay stable
THERMAL_TAU_S = 3.0
MEM_THERMAL_TAU_S = 4.0
FAN_TAU_S = 1.5
POWER_TAU_S = 0.4
UTIL_TAU_S = 0.3
CLOCK_POWER_EXPONENT = 1.3  # core power ~ clock^1.3 (offsets raise clock at equal voltage)
MEM_POWER_SHARE = 0.15  # share of the load power that scales with the memory clock
SW_THERMAL_SLOPE = 0.08  # fraction of the core clock given up per degree above target
SW_THERMAL_FLOOR = 0.3
SW_THERMAL_MARGIN_C = 5  # without a target temperature, back off this far below the max
HW_SLOWDOWN_FACTOR = 0.5
HW_SLOWDOWN_HYSTERESIS_C = 3.0
FAULT_THERMAL_FACTOR = 4.0  # thermal resistance multiplier during a cooling failure
DESIGN_MARGIN_C = 22.0  # full stock load settles this far below the slowdown threshold
FAN_CURVE_START_C = 45.0
INSTABILITY_MIN_LOAD_PCT = 20
INSTABILITY_LOST_AT = 4.0  # seconds of over-limit running at the base rate
INSTABILITY_DECAY_PER_S = 0.5
PCIE_RX_KBS_AT_FULL = 250_000
PCIE_TX_KBS_AT_FULL = 60_000
TEMP_NOISE_C_PER_PCT = 0.3  # degrees of temperature noise per percent of sensor noise
_MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class SimEvent:
    type: int  # layout.EVENT_*
    data: int  # Xid code, new P-state or new clocks-event reasons
    time_us: int


def step(gpu: layout.Gpu, dt: float, now_us: int) -> list[SimEvent]:
    """Advance ``gpu`` by ``dt`` simulated seconds; return the events to append."""
    events: list[SimEvent] = []
    if gpu.power_full_mw == 0 or dt <= 0:
        return events  # an unused slot, or no time passed
    remaining = dt
    while remaining > 1e-9 and gpu.lost == layout.LOST_NONE:
        sub = min(remaining, MAX_SUBSTEP_S)
        _substep(gpu, sub, now_us, events)
        remaining -= sub
    return events


# --- helpers the tests and the status view use ---------------------------------------


def fan_curve_pct(gpu: layout.Gpu, temp_c: float) -> float:
    """The automatic policy's fan target for a temperature."""
    lo, hi = float(gpu.fan_min_pct), float(gpu.fan_max_pct)
    top = float(gpu.temp_slowdown or 90)
    if temp_c <= FAN_CURVE_START_C:
        return lo
    frac = min(1.0, (temp_c - FAN_CURVE_START_C) / max(1.0, top - FAN_CURVE_START_C))
    return lo + (hi - lo) * frac


def thermal_resistance(gpu: layout.Gpu, fan_pct: float) -> float:
    """°C per watt between the die and ambient air at this fan speed."""
    design_temp = gpu.temp_slowdown - DESIGN_MARGIN_C
    r_design = (design_temp - AMBIENT_C) / (gpu.power_full_mw / 1000.0)
    if gpu.fan_count == 0:
        return r_design
    design_fan = fan_curve_pct(gpu, design_temp)
    return r_design * _airflow(design_fan) / _airflow(fan_pct)


def lowest_pstate(gpu: layout.Gpu) -> int:
    supported = [i for i in range(layout.MAX_PSTATES) if gpu.pstates[i].supported]
    return supported[-1] if supported else 0


def highest_pstate(gpu: layout.Gpu) -> int:
    supported = [i for i in range(layout.MAX_PSTATES) if gpu.pstates[i].supported]
    return supported[0] if supported else 0


def offsets(gpu: layout.Gpu, pstate: int) -> tuple[int, int]:
    """The (gpc, mem) offsets in force at ``pstate``; zero on boards without offsets."""
    if not gpu.features & layout.FEAT_CLOCK_OFFSETS:
        return 0, 0
    ps = gpu.pstates[pstate]
    return ps.gpc_offset_mhz, ps.mem_offset_mhz


# --- the model ------------------------------------------------------------------------


def _airflow(fan_pct: float) -> float:
    return 0.3 + 0.7 * fan_pct / 100.0


def _smooth(current: float, target: float, dt: float, tau: float) -> float:
    return target + (current - target) * math.exp(-dt / tau)


def _smooth_int(current: int, target: int, dt: float, tau: float) -> int:
    delta = (target - current) * (1.0 - math.exp(-dt / tau))
    return current + int(math.copysign(math.ceil(abs(delta)), delta))


def _power_w(gpu: layout.Gpu, load: float, gpc: float, mem: float) -> float:
    idle = gpu.power_idle_mw / 1000.0
    dynamic = (gpu.power_full_mw - gpu.power_idle_mw) / 1000.0
    core = (gpc / gpu.boost_gpc_mhz) ** CLOCK_POWER_EXPONENT
    memory = mem / max(1, gpu.pstates[highest_pstate(gpu)].max_mem_mhz)
    return idle + dynamic * load * ((1 - MEM_POWER_SHARE) * core + MEM_POWER_SHARE * memory)


def _power_capped_gpc(gpu: layout.Gpu, load: float, mem: float) -> float:
    """The highest core clock at which the board stays inside its power limit."""
    idle = gpu.power_idle_mw / 1000.0
    dynamic = (gpu.power_full_mw - gpu.power_idle_mw) / 1000.0
    memory = mem / max(1, gpu.pstates[highest_pstate(gpu)].max_mem_mhz)
    budget = (gpu.power_limit_mw / 1000.0 - idle) / (dynamic * load) - MEM_POWER_SHARE * memory
    if budget <= 0:
        return 0.0
    return gpu.boost_gpc_mhz * (budget / (1 - MEM_POWER_SHARE)) ** (1 / CLOCK_POWER_EXPONENT)


def _clamp(value: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, value))


def _clocks(gpu: layout.Gpu, load: float, pstate: int) -> tuple[int, int, int]:
    """(core MHz, memory MHz, clocks-event reasons) for this sub-step."""
    ps = gpu.pstates[pstate]
    gpc_off, mem_off = offsets(gpu, pstate)
    reasons = 0
    mem = float(ps.max_mem_mhz + mem_off)
    if gpu.locked_mem_max:
        mem = _clamp(mem, gpu.locked_mem_min, gpu.locked_mem_max)
    mem = max(1.0, mem)
    gpc = float(gpu.boost_gpc_mhz + gpc_off) if load > 0 else float(ps.min_gpc_mhz)
    if gpu.locked_gpc_max:
        if load > 0 and gpc > gpu.locked_gpc_max:
            reasons |= layout.REASON_APP_CLOCKS  # the driver reports locked clocks this way
        gpc = _clamp(gpc, gpu.locked_gpc_min, gpu.locked_gpc_max)
    gpc = _clamp(gpc, ps.min_gpc_mhz, max(ps.min_gpc_mhz, ps.max_gpc_mhz + gpc_off))
    if load == 0:
        reasons |= layout.REASON_GPU_IDLE
    # Thermal throttles.
    temp = gpu.temp_c
    sw_start = gpu.temp_acoustic_cur or max(0, gpu.temp_gpu_max - SW_THERMAL_MARGIN_C)
    if sw_start and temp > sw_start:
        gpc *= max(SW_THERMAL_FLOOR, 1.0 - SW_THERMAL_SLOPE * (temp - sw_start))
        reasons |= layout.REASON_SW_THERMAL
    hw_was_on = bool(gpu.reasons & layout.REASON_HW_THERMAL)
    hw_on_at = gpu.temp_slowdown - (HW_SLOWDOWN_HYSTERESIS_C if hw_was_on else 0.0)
    if gpu.temp_slowdown and temp >= hw_on_at:
        gpc *= HW_SLOWDOWN_FACTOR
        reasons |= layout.REASON_HW_SLOWDOWN | layout.REASON_HW_THERMAL
    # Power limit.
    if load > 0:
        cap = _power_capped_gpc(gpu, load, mem)
        if gpc > cap:
            gpc = cap
            reasons |= layout.REASON_SW_POWER_CAP
    gpc = max(float(ps.min_gpc_mhz), gpc)
    return round(gpc), round(mem), reasons


def apply_control(gpu: layout.Gpu, now_us: int) -> list[SimEvent]:
    """Apply at once what a control change (load, processes, reset) changes at once on a
    real board, and return the events that happened: the P-state, clocks and reasons
    (the driver switches when work arrives or leaves), the memory in use (an allocation
    shows in NVML as soon as it is made) and the PCIe link.  Power, temperature, fans and
    utilization keep following in :func:`step`, as the averaged sensors lag.  Without this
    a reader right after ``nvsim load`` returned saw the readings of before the load until
    the daemon's next tick.  A lost board stays frozen."""
    events: list[SimEvent] = []
    if gpu.power_full_mw != 0 and gpu.lost == layout.LOST_NONE:
        _instant(gpu, now_us, events)
    return events


def _instant(gpu: layout.Gpu, now_us: int, events: list[SimEvent]) -> tuple[int, int, int, int]:
    """The part of a sub-step that takes no time; returns (load %, P-state, core MHz,
    memory MHz)."""
    load_pct = min(100, gpu.load_pct)
    load = load_pct / 100.0
    pstate = highest_pstate(gpu) if load > 0 else lowest_pstate(gpu)
    gpc, mem, reasons = _clocks(gpu, load, pstate)

    if pstate != gpu.pstate:
        events.append(SimEvent(layout.EVENT_PSTATE, pstate, now_us))
    if reasons != gpu.reasons:
        events.append(SimEvent(layout.EVENT_CLOCK, reasons, now_us))
    gpu.pstate = pstate
    gpu.reasons = reasons
    gpu.gpc_mhz = gpu.sm_mhz = gpc
    gpu.mem_mhz = mem
    gpu.video_mhz = gpc * gpu.max_video_mhz // max(1, gpu.max_gpc_mhz)
    gpu.mem_used = min(gpu.mem_total - gpu.mem_reserved, _memory_used(gpu))
    gpu.pcie_gen = gpu.pcie_max_gen if load > 0 else 1
    gpu.pcie_width = gpu.pcie_max_width
    gpu.pcie_rx_kbs = round(PCIE_RX_KBS_AT_FULL * load)
    gpu.pcie_tx_kbs = round(PCIE_TX_KBS_AT_FULL * load)
    return load_pct, pstate, gpc, mem


def _substep(gpu: layout.Gpu, dt: float, now_us: int, events: list[SimEvent]) -> None:
    load_pct, pstate, gpc, mem = _instant(gpu, now_us, events)
    load = load_pct / 100.0

    power_w = _power_w(gpu, load, gpc, mem)
    gpu.power_mw = _smooth(gpu.power_mw, power_w * 1000.0, dt, POWER_TAU_S)
    if gpu.sensor_noise_pct > 0:
        gpu.power_mw = max(0.0, gpu.power_mw * (1.0 + _noise(gpu) * gpu.sensor_noise_pct / 100))
    gpu.energy_mj += gpu.power_mw * dt

    fan_pct = _fan_mean(gpu)
    resistance = thermal_resistance(gpu, fan_pct)
    if gpu.fault_thermal:
        resistance *= FAULT_THERMAL_FACTOR
    # The die heats with the power it draws now; only the reported reading is averaged.
    temp_eq = AMBIENT_C + power_w * resistance
    gpu.temp_c = _smooth(gpu.temp_c, temp_eq, dt, THERMAL_TAU_S)
    if gpu.sensor_noise_pct > 0:
        gpu.temp_c += _noise(gpu) * gpu.sensor_noise_pct * TEMP_NOISE_C_PER_PCT
    gpu.mem_temp_c = _smooth(gpu.mem_temp_c, gpu.temp_c + 4.0 + 10.0 * load, dt, MEM_THERMAL_TAU_S)
    _fans(gpu, dt)

    gpu.util_gpu = _smooth_int(gpu.util_gpu, load_pct, dt, UTIL_TAU_S)
    gpu.util_mem = _smooth_int(gpu.util_mem, round(load_pct * 0.6), dt, UTIL_TAU_S)

    _stability(gpu, dt, now_us, load_pct, pstate, events)
    if gpu.temp_shutdown and gpu.temp_c >= gpu.temp_shutdown and not gpu.lost:
        _lose(gpu, now_us, events)


def _noise(gpu: layout.Gpu) -> float:
    """The next value in [-1, 1) of the GPU's noise generator (xorshift64)."""
    x = gpu.noise_state or 1
    x ^= (x << 13) & _MASK64
    x ^= x >> 7
    x ^= (x << 17) & _MASK64
    gpu.noise_state = x
    return (x >> 11) / float(1 << 52) - 1.0


def _fan_mean(gpu: layout.Gpu) -> float:
    count = min(gpu.fan_count, layout.MAX_FANS)
    if count == 0:
        return 0.0
    return sum(gpu.fans[i].speed_pct for i in range(count)) / count


def _fans(gpu: layout.Gpu, dt: float) -> None:
    auto_target = round(fan_curve_pct(gpu, gpu.temp_c))
    for i in range(min(gpu.fan_count, layout.MAX_FANS)):
        fan = gpu.fans[i]
        if fan.policy == layout.FAN_POLICY_MANUAL:
            target = _clamp(fan.target_pct, gpu.fan_min_pct, gpu.fan_max_pct)
        else:
            target = auto_target
            # Re-read the policy right before writing, so a manual target an NVML setter
            # is storing now is not overwritten by the automatic one.
            if fan.policy == layout.FAN_POLICY_AUTO and fan.target_pct != auto_target:
                fan.target_pct = auto_target
        fan.speed_pct = _smooth(fan.speed_pct, target, dt, FAN_TAU_S)
        fan.rpm = round(fan.speed_pct / 100.0 * gpu.fan_max_rpm)


def _memory_used(gpu: layout.Gpu) -> int:
    procs = sum(p.used_bytes for p in gpu.procs if p.pid)
    return base_memory(gpu) + gpu.load_mem_bytes + procs


def _stability(
    gpu: layout.Gpu, dt: float, now_us: int, load_pct: int, pstate: int, events: list[SimEvent]
) -> None:
    gpc_off, mem_off = offsets(gpu, pstate)
    over_gpc = gpc_off - gpu.stable_gpc_offset
    over_mem = mem_off - gpu.stable_mem_offset
    unstable = load_pct >= INSTABILITY_MIN_LOAD_PCT and (over_gpc > 0 or over_mem > 0)
    if not unstable:
        gpu.instability = max(0.0, gpu.instability - INSTABILITY_DECAY_PER_S * dt)
        return
    rate = 1.0 + min(2.0, max(over_gpc / 100.0, over_mem / 500.0, 0.0))
    before = gpu.instability
    gpu.instability = before + rate * dt
    for crossed in range(math.floor(before) + 1, math.floor(gpu.instability) + 1):
        if crossed >= INSTABILITY_LOST_AT:
            _lose(gpu, now_us, events)
            return
        if over_gpc > 0:
            code = XID_GRAPHICS_EXCEPTION if crossed % 2 else XID_GPU_STOPPED
        else:
            code = XID_MEMORY_PAGE_FAULT
        events.append(SimEvent(layout.EVENT_XID_CRITICAL, code, now_us))
        gpu.xid_count += 1


def _lose(gpu: layout.Gpu, now_us: int, events: list[SimEvent]) -> None:
    events.append(SimEvent(layout.EVENT_XID_CRITICAL, XID_FALLEN_OFF_BUS, now_us))
    gpu.xid_count += 1
    gpu.lost = layout.LOST_YES
