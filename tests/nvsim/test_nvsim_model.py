"""The physical model, driven directly: no state file, no daemon, no clock."""

from __future__ import annotations

import pytest

from nvsim import layout, model, models
from tests.nvsim.helpers import make_gpu, run, xids


def test_load_raises_temperature_power_and_utilization_over_time() -> None:
    gpu = make_gpu()
    run(gpu, 10)
    idle_temp, idle_power = gpu.temp_c, gpu.power_mw
    gpu.load_pct = 100
    run(gpu, 1)
    early_temp = gpu.temp_c
    run(gpu, 9)
    assert idle_temp < early_temp < gpu.temp_c
    assert gpu.power_mw > 10 * idle_power
    assert gpu.power_mw == pytest.approx(gpu.power_full_mw, rel=0.02)
    assert gpu.util_gpu == 100 and gpu.util_mem > 0
    assert 55 < gpu.temp_c < gpu.temp_slowdown


def test_half_load_draws_less_and_runs_cooler_than_full_load() -> None:
    half, full = make_gpu(), make_gpu()
    half.load_pct, full.load_pct = 50, 100
    run(half, 20)
    run(full, 20)
    assert half.util_gpu == 50
    assert half.power_mw < full.power_mw and half.temp_c < full.temp_c


def test_idle_drops_to_lowest_pstate_with_idle_clocks_and_pcie_gen1() -> None:
    gpu = make_gpu()
    gpu.load_pct = 100
    events = run(gpu, 2)
    assert gpu.pstate == 0 and gpu.pcie_gen == 4
    assert gpu.gpc_mhz == gpu.boost_gpc_mhz and gpu.mem_mhz == gpu.max_mem_mhz
    assert not gpu.reasons & layout.REASON_GPU_IDLE
    assert (layout.EVENT_PSTATE, 0) in [(e.type, e.data) for e in events]
    gpu.load_pct = 0
    events = run(gpu, 2)
    assert gpu.pstate == 8
    assert gpu.gpc_mhz == gpu.pstates[8].min_gpc_mhz and gpu.mem_mhz == 405
    assert gpu.reasons == layout.REASON_GPU_IDLE
    assert gpu.pcie_gen == 1 and gpu.util_gpu == 0
    assert (layout.EVENT_PSTATE, 8) in [(e.type, e.data) for e in events]


def test_cutting_the_power_limit_throttles_clocks_and_sets_sw_power_cap() -> None:
    gpu = make_gpu()
    gpu.load_pct = 100
    run(gpu, 5)
    stock_clock = gpu.gpc_mhz
    assert not gpu.reasons & layout.REASON_SW_POWER_CAP
    gpu.power_limit_mw = 250_000
    events = run(gpu, 3)
    assert gpu.reasons & layout.REASON_SW_POWER_CAP
    assert gpu.gpc_mhz < stock_clock * 0.8
    assert gpu.power_mw == pytest.approx(250_000, rel=0.02)
    assert (layout.EVENT_CLOCK, gpu.reasons) in [(e.type, e.data) for e in events]
    gpu.power_limit_mw = gpu.power_default_mw
    run(gpu, 3)
    assert gpu.gpc_mhz == stock_clock and not gpu.reasons & layout.REASON_SW_POWER_CAP


def test_offsets_below_the_stable_limit_raise_clocks_and_power_and_stay_stable() -> None:
    stock, tuned = make_gpu(), make_gpu()
    stock.load_pct = tuned.load_pct = 100
    tuned.pstates[0].gpc_offset_mhz = 105  # below every 4090's hidden limit (>= 120)
    tuned.pstates[0].mem_offset_mhz = 700  # below every 4090's hidden limit (>= 800)
    events = run(stock, 20) + run(tuned, 20)
    assert tuned.gpc_mhz == stock.gpc_mhz + 105
    assert tuned.mem_mhz == stock.mem_mhz + 700
    assert tuned.power_mw > stock.power_mw + 10_000
    assert xids(events) == [] and tuned.lost == layout.LOST_NONE


def test_gpc_offset_above_the_stable_limit_under_load_raises_xids_then_loses_the_gpu() -> None:
    gpu = make_gpu()
    gpu.pstates[0].gpc_offset_mhz = gpu.stable_gpc_offset + 30
    gpu.load_pct = 100
    events = run(gpu, 2.0)  # instability grows at 1.3/s this far over: two Xids
    assert xids(events) == [model.XID_GRAPHICS_EXCEPTION, model.XID_GPU_STOPPED]
    assert gpu.lost == layout.LOST_NONE
    events = run(gpu, 3)
    assert xids(events)[-1] == model.XID_FALLEN_OFF_BUS
    assert gpu.lost == layout.LOST_YES
    frozen = (gpu.temp_c, gpu.power_mw, gpu.gpc_mhz, gpu.energy_mj)
    gpu.load_pct = 0
    assert run(gpu, 5) == []
    assert (gpu.temp_c, gpu.power_mw, gpu.gpc_mhz, gpu.energy_mj) == frozen


def test_memory_offset_above_the_limit_reports_memory_xids() -> None:
    gpu = make_gpu()
    gpu.pstates[0].mem_offset_mhz = gpu.stable_mem_offset + 50
    gpu.load_pct = 60
    events = run(gpu, 2.5)
    assert xids(events) == [model.XID_MEMORY_PAGE_FAULT] * 2


def test_far_over_the_limit_crashes_sooner() -> None:
    near, far = make_gpu(), make_gpu()
    near.pstates[0].gpc_offset_mhz = near.stable_gpc_offset + 15
    far.pstates[0].gpc_offset_mhz = far.stable_gpc_offset + 300
    near.load_pct = far.load_pct = 100
    run(near, 2)
    run(far, 2)
    assert far.lost == layout.LOST_YES and near.lost == layout.LOST_NONE


def test_unstable_offset_is_harmless_at_idle_or_light_load() -> None:
    gpu = make_gpu()
    gpu.pstates[0].gpc_offset_mhz = gpu.stable_gpc_offset + 200
    gpu.load_pct = 10
    assert xids(run(gpu, 10)) == []
    assert gpu.lost == layout.LOST_NONE and gpu.instability == 0


def test_thermal_fault_runs_temperature_up_until_thermal_throttles_hold_it() -> None:
    gpu = make_gpu()
    gpu.load_pct = 100
    run(gpu, 10)
    healthy_temp, stock_clock = gpu.temp_c, gpu.gpc_mhz
    gpu.fault_thermal = 1
    seen = 0
    hottest = 0.0
    for _ in range(300):
        run(gpu, 0.1)
        seen |= gpu.reasons
        hottest = max(hottest, gpu.temp_c)
    assert hottest > healthy_temp + 15
    assert seen & layout.REASON_SW_THERMAL
    assert seen & layout.REASON_HW_THERMAL and seen & layout.REASON_HW_SLOWDOWN
    assert hottest < gpu.temp_shutdown and gpu.lost == layout.LOST_NONE
    assert gpu.gpc_mhz < stock_clock / 2


def test_fans_follow_temperature_in_auto_with_a_lag() -> None:
    gpu = make_gpu()
    run(gpu, 10)
    assert gpu.fans[0].speed_pct == pytest.approx(gpu.fan_min_pct, abs=1)
    gpu.load_pct = 100
    run(gpu, 0.5)
    lagging = gpu.fans[0].speed_pct
    run(gpu, 15)
    assert lagging < gpu.fans[0].speed_pct
    assert gpu.fans[0].target_pct == round(model.fan_curve_pct(gpu, gpu.temp_c))
    assert gpu.fans[0].speed_pct == pytest.approx(gpu.fans[0].target_pct, abs=1)
    assert gpu.fans[0].rpm == pytest.approx(gpu.fans[0].speed_pct / 100 * gpu.fan_max_rpm, abs=1)


def test_manual_fan_goes_to_its_target_and_cools_the_gpu() -> None:
    auto, manual = make_gpu(), make_gpu()
    auto.load_pct = manual.load_pct = 100
    for fan in manual.fans:
        fan.policy = layout.FAN_POLICY_MANUAL
        fan.target_pct = 100
    run(auto, 20)
    run(manual, 20)
    assert manual.fans[0].speed_pct == pytest.approx(100, abs=0.5)
    assert manual.fans[1].rpm == pytest.approx(manual.fan_max_rpm, abs=15)
    assert manual.fans[0].target_pct == 100  # the model does not overwrite a manual target
    assert manual.temp_c < auto.temp_c - 3


def test_locked_clocks_clamp_the_core_and_memory_clocks() -> None:
    gpu = make_gpu()
    gpu.locked_gpc_min, gpu.locked_gpc_max = 1200, 1500
    gpu.locked_mem_min = gpu.locked_mem_max = 5001
    gpu.load_pct = 100
    run(gpu, 3)
    assert gpu.gpc_mhz == 1500 and gpu.mem_mhz == 5001
    assert gpu.reasons == layout.REASON_APP_CLOCKS
    stock = make_gpu()
    stock.load_pct = 100
    run(stock, 3)
    assert gpu.power_mw < stock.power_mw


def test_energy_integrates_power() -> None:
    gpu = make_gpu()
    gpu.load_pct = 100
    run(gpu, 5)
    before = gpu.energy_mj
    run(gpu, 10)
    assert gpu.energy_mj - before == pytest.approx(gpu.power_mw * 10, rel=0.02)


def test_memory_used_counts_base_load_memory_and_processes() -> None:
    gpu = make_gpu()
    gpu.load_mem_bytes = 1024 * models.MIB
    gpu.procs[0].pid, gpu.procs[0].used_bytes = 4242, 512 * models.MIB
    gpu.procs[3].pid, gpu.procs[3].used_bytes = 4343, 256 * models.MIB
    run(gpu, 0.1)
    assert gpu.mem_used == models.base_memory(gpu) + (1024 + 512 + 256) * models.MIB


def test_h100_has_no_fans_or_offsets_but_heats_and_throttles() -> None:
    gpu = make_gpu(models.H100)
    gpu.pstates[0].gpc_offset_mhz = 500  # ignored: the board has no offset support
    gpu.load_pct = 100
    events = run(gpu, 10)
    assert gpu.pstate == 0 and gpu.gpc_mhz == 1980 and xids(events) == []
    assert gpu.temp_c > 55
    gpu.power_limit_mw = 300_000
    run(gpu, 2)
    assert gpu.reasons & layout.REASON_SW_POWER_CAP and gpu.gpc_mhz < 1980
    gpu.load_pct = 0
    run(gpu, 2)
    assert gpu.pstate == 0 and gpu.gpc_mhz == 345  # P0 is its lowest state too


def test_time_scale_sized_steps_match_fine_steps() -> None:
    fine, coarse = make_gpu(), make_gpu()
    fine.load_pct = coarse.load_pct = 100
    run(fine, 12, dt=0.1)
    run(coarse, 12, dt=6.0)  # what a daemon at --time-scale 60 passes per tick
    assert coarse.temp_c == pytest.approx(fine.temp_c, abs=0.5)
    assert coarse.gpc_mhz == fine.gpc_mhz


def test_an_unused_slot_is_left_alone() -> None:
    gpu = layout.Gpu()
    assert model.step(gpu, 1.0, 0) == []
    assert gpu.temp_c == 0


def _loaded(seed: int, noise: float) -> layout.Gpu:
    gpu = layout.Gpu()
    models.init_gpu(gpu, models.RTX4090, 0, seed, sensor_noise_pct=noise)
    gpu.load_pct = 80
    return gpu


def test_sensor_noise_is_seeded_bounded_and_around_the_trend() -> None:
    exact, noisy, again, other = _loaded(0, 0), _loaded(0, 1.0), _loaded(0, 1.0), _loaded(7, 1.0)
    power, temps = [], []
    for i in range(100):
        for gpu in (exact, noisy, again, other):
            model.step(gpu, 0.1, now_us=i * 100_000)
        assert (noisy.power_mw, noisy.temp_c) == (again.power_mw, again.temp_c)  # seeded
        power.append(noisy.power_mw / exact.power_mw - 1)
        temps.append(noisy.temp_c - exact.temp_c)
    assert other.power_mw != noisy.power_mw  # another seed, another sequence
    # It jitters (many distinct readings) within its amplitude, around the noiseless value.
    assert len({round(p, 4) for p in power}) > 50
    assert max(abs(p) for p in power[20:]) < 0.03
    assert max(abs(t) for t in temps) < 2.0
    assert abs(sum(temps) / len(temps)) < 0.5


def test_readings_lag_a_load_step() -> None:
    gpu = _loaded(0, 0)
    gpu.load_pct = 0
    run(gpu, 5)
    idle_power, idle_temp = gpu.power_mw, gpu.temp_c
    gpu.load_pct = 100
    model.step(gpu, 0.1, now_us=0)
    # The averaged power sensor and the die's heat capacity: neither jumps to its target.
    assert idle_power < gpu.power_mw < 0.5 * gpu.power_full_mw
    assert gpu.temp_c - idle_temp < 2.0
    run(gpu, 5)
    assert gpu.power_mw > 0.8 * gpu.power_full_mw and gpu.temp_c > idle_temp + 10


def test_a_control_change_moves_pstate_clocks_and_memory_at_once_but_not_the_sensors() -> None:
    gpu = _loaded(0, 0)
    gpu.load_pct = 0
    run(gpu, 5)
    idle = (gpu.power_mw, gpu.temp_c, gpu.util_gpu, gpu.mem_used)
    assert gpu.pstate == model.lowest_pstate(gpu) != 0
    gpu.load_pct, gpu.load_mem_bytes = 50, 1024 * 2**20
    events = model.apply_control(gpu, now_us=7)
    assert gpu.pstate == 0 and gpu.gpc_mhz > gpu.pstates[0].min_gpc_mhz
    assert gpu.mem_used == idle[3] + 1024 * 2**20 and gpu.pcie_gen == gpu.pcie_max_gen
    assert (layout.EVENT_PSTATE, 0, 7) in [(e.type, e.data, e.time_us) for e in events]
    assert (gpu.power_mw, gpu.temp_c, gpu.util_gpu) == idle[:3]  # the lagging readings wait
    gpu.lost = layout.LOST_YES
    gpu.load_pct = 0
    assert model.apply_control(gpu, now_us=8) == [] and gpu.pstate == 0  # a lost board freezes
