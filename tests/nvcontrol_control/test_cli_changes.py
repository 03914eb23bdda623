"""Every control command changes what nvsim reports, and its --json says the same."""

from __future__ import annotations

import pytest

from tests.conftest import NvsimInstance
from tests.nvcontrol_control.helpers import needs_root, ok_json, settings_of

pytestmark = [pytest.mark.nvsim, pytest.mark.root, needs_root]
FAST = ("--no-confirm", "--window", "0.3")


def test_overclock_apply_reports_snapped_values_and_reset_clears_them(
    nvsim_gpus: NvsimInstance,
) -> None:
    doc = ok_json(
        nvsim_gpus,
        "overclock",
        "apply",
        "-i",
        "0",
        "--gpu-offset",
        "100",
        "--memory-offset",
        "400",
        *FAST,
    )
    assert doc["result"] == "committed"
    by_field = {c["field"]: c for c in doc["changes"]}
    graphics = by_field["offsets.P0.graphics_mhz"]
    assert (graphics["requested"], graphics["status"]) == (100, "snapped")
    assert graphics["applied"] % 15 == 0 and abs(graphics["applied"] - 100) < 15
    assert by_field["offsets.P0.memory_mhz"]["applied"] == 400
    truth = settings_of(nvsim_gpus)
    assert truth[0]["offsets"]["P0"] == {"gpc": graphics["applied"], "mem": 400}
    assert truth[1]["offsets"]["P0"] == {"gpc": 0, "mem": 0}  # only GPU 0 was selected

    status = ok_json(nvsim_gpus, "overclock", "status", "-i", "0")["gpus"][0]
    assert status["pstates"]["P0"]["graphics"]["offset_mhz"] == graphics["applied"]
    assert status["pstates"]["P0"]["memory"]["offset_mhz"] == 400
    assert status["api"] == "clock_offsets"

    ok_json(nvsim_gpus, "overclock", "reset", "-i", "0")
    assert settings_of(nvsim_gpus)[0]["offsets"]["P0"] == {"gpc": 0, "mem": 0}


def test_overclock_on_a_pstate_other_than_p0(nvsim_gpus: NvsimInstance) -> None:
    ok_json(nvsim_gpus, "overclock", "apply", "--pstate", "P2", "--memory-offset", "200", *FAST)
    assert all(g["offsets"]["P2"]["mem"] == 200 for g in settings_of(nvsim_gpus))


def test_clocks_lock_is_recorded_and_reset(nvsim_gpus: NvsimInstance) -> None:
    doc = ok_json(
        nvsim_gpus,
        "clocks",
        "lock",
        "-i",
        "1",
        "--gpu",
        "1000,2000",
        "--memory",
        "5000,10000",
        *FAST,
    )
    assert {c["status"] for c in doc["changes"]} == {"recorded"}
    truth = settings_of(nvsim_gpus)
    assert truth[1]["locked_clocks"] == {"gpc_mhz": [1000, 2000], "mem_mhz": [5000, 10000]}
    assert truth[0]["locked_clocks"] is None
    ok_json(nvsim_gpus, "clocks", "reset", "-i", "1")
    assert settings_of(nvsim_gpus)[1]["locked_clocks"] is None


def test_power_limit_in_percent_and_watts_shows_both_units(nvsim_gpus: NvsimInstance) -> None:
    doc = ok_json(nvsim_gpus, "power", "limit", "-i", "0", "--percent", "80", *FAST)
    assert doc["changes"][0]["applied"] == 360.0  # 80 % of the 450 W default
    assert settings_of(nvsim_gpus)[0]["power_limit_w"] == 360.0
    status = ok_json(nvsim_gpus, "power", "status", "-i", "0")["gpus"][0]
    assert (status["limit_w"], status["limit_pct_of_default"], status["default_limit_w"]) == (
        360.0,
        80.0,
        450.0,
    )
    text = nvsim_gpus.nvctl("power", "status", "-i", "0").stdout
    assert "360 W" in text and "80 %" in text

    ok_json(nvsim_gpus, "power", "limit", "--watts", "400", *FAST)
    assert [g["power_limit_w"] for g in settings_of(nvsim_gpus)] == [400.0, 400.0]
    ok_json(nvsim_gpus, "power", "reset")
    assert [g["power_limit_w"] for g in settings_of(nvsim_gpus)] == [450.0, 450.0]


def test_persistence_mode_on_and_off(nvsim_gpus: NvsimInstance) -> None:
    doc = ok_json(nvsim_gpus, "power", "persistence", "on", "-i", "0")
    assert doc["changes"][0]["applied"] is True
    assert [g["persistence"] for g in settings_of(nvsim_gpus)] == [True, False]
    assert ok_json(nvsim_gpus, "power", "status", "-i", "0")["gpus"][0]["persistence_mode"] is True
    ok_json(nvsim_gpus, "power", "persistence", "off", "-i", "0")
    assert settings_of(nvsim_gpus)[0]["persistence"] is False


def test_fan_set_one_fan_then_all_then_auto(nvsim_gpus: NvsimInstance) -> None:
    ok_json(nvsim_gpus, "fan", "set", "1", "70", "-i", "0", *FAST)
    assert settings_of(nvsim_gpus)[0]["fans"] == [("auto", None), ("manual", 70)]
    ok_json(nvsim_gpus, "fan", "set", "all", "55", "-i", "0", *FAST)
    assert settings_of(nvsim_gpus)[0]["fans"] == [("manual", 55), ("manual", 55)]
    fans = ok_json(nvsim_gpus, "fan", "status", "-i", "0")["gpus"][0]["fans"]
    assert [(f["policy"], f["target_pct"]) for f in fans] == [("manual", 55), ("manual", 55)]
    ok_json(nvsim_gpus, "fan", "auto", "-i", "0")
    assert settings_of(nvsim_gpus)[0]["fans"] == [("auto", None), ("auto", None)]


@pytest.mark.parametrize(
    "nvsim_gpus", [{"gpus": 1, "args": ["--driver", "550.54.14"]}], indirect=True
)
def test_drivers_before_r555_use_the_vf_offset_functions(nvsim_gpus: NvsimInstance) -> None:
    status = ok_json(nvsim_gpus, "overclock", "status")["gpus"][0]
    assert status["api"] == "vf_offsets"
    assert list(status["pstates"]) == ["P0"]
    ok_json(nvsim_gpus, "overclock", "apply", "--gpu-offset", "60", "--memory-offset", "300", *FAST)
    assert settings_of(nvsim_gpus)[0]["offsets"]["P0"] == {"gpc": 60, "mem": 300}


@pytest.mark.parametrize("nvsim_gpus", [{"gpus": 1, "model": "h100"}], indirect=True)
def test_a_gpu_without_fans_or_offsets_says_unsupported_and_changes_nothing(
    nvsim_gpus: NvsimInstance,
) -> None:
    before = settings_of(nvsim_gpus)
    for args in (("fan", "set", "all", "50"), ("overclock", "apply", "--gpu-offset", "30")):
        done = nvsim_gpus.nvctl(*args, "--no-confirm")
        assert done.returncode == 3, done.stderr
        assert "GPU 0 (GPU-" in done.stderr
        assert (
            "does not support clock offsets" in done.stderr or "no controllable fans" in done.stderr
        )
    assert settings_of(nvsim_gpus) == before
    assert ok_json(nvsim_gpus, "overclock", "status")["gpus"][0]["api"] is None
    # What the GPU does have still works: power in W and % of its 700 W default.
    ok_json(nvsim_gpus, "power", "limit", "--percent", "90", *FAST)
    assert settings_of(nvsim_gpus)[0]["power_limit_w"] == 630.0
