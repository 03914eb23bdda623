"""``overclock test`` and ``overclock auto`` on nvsim, whose boards hide a stable limit."""

from __future__ import annotations

import json

import pytest

from tests.conftest import NvsimInstance
from tests.nvcontrol_control.helpers import needs_root, ok_json, settings_of

pytestmark = [pytest.mark.nvsim, pytest.mark.root, needs_root]


@pytest.mark.parametrize("nvsim_gpus", [{"gpus": 1}], indirect=True)
def test_overclock_test_passes_at_stock_and_fails_above_the_limit(
    nvsim_gpus: NvsimInstance,
) -> None:
    stable = ok_json(nvsim_gpus, "overclock", "test", "--duration", "2")
    assert stable["stable"] is True and stable["load"] == "nvsim simulated load"
    assert nvsim_gpus.status()["gpus"][0]["load_pct"] == 0  # load removed afterwards

    limit = nvsim_gpus.status()["gpus"][0]["hidden"]["stable_gpc_offset_mhz"]
    # Idle, the too-high offset commits: nothing stresses it yet.
    ok_json(
        nvsim_gpus,
        "overclock",
        "apply",
        "--gpu-offset",
        str(limit + 200),
        "--no-confirm",
        "--window",
        "0.5",
    )
    done = nvsim_gpus.nvctl("overclock", "test", "--duration", "10", "--json")
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["stable"] is False and "Xid" in result["cause"]
    assert nvsim_gpus.status()["gpus"][0]["load_pct"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("nvsim_gpus", [{"gpus": 1}], indirect=True)
def test_overclock_auto_finds_the_highest_stable_offsets_and_saves_them(
    nvsim_gpus: NvsimInstance,
) -> None:
    hidden = nvsim_gpus.status()["gpus"][0]["hidden"]
    result = ok_json(
        nvsim_gpus, "overclock", "auto", "--gpu-step", "60", "--memory-step", "600",
        "--step-duration", "2.5", "--max-memory-offset", "2400", "--save", "tuned",
    )  # fmt: skip
    found = result["gpus"][0]
    assert (
        hidden["stable_gpc_offset_mhz"] - 75
        < found["graphics_offset_mhz"]
        <= hidden["stable_gpc_offset_mhz"]
    )
    assert (
        hidden["stable_mem_offset_mhz"] - 600
        < found["memory_offset_mhz"]
        <= hidden["stable_mem_offset_mhz"]
    )
    truth = settings_of(nvsim_gpus)[0]["offsets"]["P0"]
    assert truth == {"gpc": found["graphics_offset_mhz"], "mem": found["memory_offset_mhz"]}
    assert ok_json(nvsim_gpus, "snapshot", "diff", "tuned")["differences"] == []
    assert nvsim_gpus.status()["gpus"][0]["lost"] is False
