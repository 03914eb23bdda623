"""``nvctl fan curve run``: follows the curve, and the fans are automatic again after it
stops — by signal, or (after SIGKILL) at the next nvctl command."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from tests.conftest import NvsimInstance, tool
from tests.nvcontrol_control.helpers import fails, needs_root, ok_json, settings_of

pytestmark = [pytest.mark.nvsim, pytest.mark.root, needs_root]


def start_controller(inst: NvsimInstance) -> subprocess.Popen[str]:
    ok_json(inst, "fan", "curve", "set", "20:45,90:100", "--hysteresis", "2", "-i", "0")
    proc = subprocess.Popen(
        [tool("nvctl"), "fan", "curve", "run", "-i", "0", "--interval", "0.2"],
        env=inst.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    end = time.monotonic() + 10
    while time.monotonic() < end:
        fans = settings_of(inst)[0]["fans"]
        if all(policy == "manual" for policy, _ in fans):
            return proc
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"the controller never took the fans: {proc.communicate()}")


def test_controller_follows_the_curve_and_reports_itself(nvsim_gpus: NvsimInstance) -> None:
    proc = start_controller(nvsim_gpus)
    try:
        status = ok_json(nvsim_gpus, "fan", "status", "-i", "0")["gpus"][0]
        temp = status["temperature_c"]
        expected = round(45 + (100 - 45) * (temp - 20) / 70)
        assert all(abs(f["target_pct"] - expected) <= 2 for f in status["fans"])
        assert status["curve_controller_pid"] == proc.pid
        assert status["curve"] == {"points": "20:45,90:100", "hysteresis_c": 2}
        assert settings_of(nvsim_gpus)[1]["fans"] == [("auto", None), ("auto", None)]
        # Manual changes to the fans it drives are refused while it runs.
        busy = fails(nvsim_gpus, 2, "fan", "set", "all", "50", "-i", "0", "--no-confirm")
        assert f"controller (process {proc.pid})" in busy.stderr
        ok_json(nvsim_gpus, "fan", "set", "all", "50", "-i", "1", "--no-confirm", "--window", "0")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert settings_of(nvsim_gpus)[0]["fans"] == [("auto", None), ("auto", None)]


def test_sigkilled_controller_gives_fans_back_at_the_next_command(
    nvsim_gpus: NvsimInstance,
) -> None:
    proc = start_controller(nvsim_gpus)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert settings_of(nvsim_gpus)[0]["fans"][0][0] == "manual"  # left behind
    done = nvsim_gpus.nvctl("power", "status")
    assert done.returncode == 0
    assert "fan-curve controller" in done.stderr and "automatic control" in done.stderr
    assert settings_of(nvsim_gpus)[0]["fans"] == [("auto", None), ("auto", None)]


def test_running_without_a_curve_says_how_to_set_one(nvsim_gpus: NvsimInstance) -> None:
    done = fails(nvsim_gpus, 1, "fan", "curve", "run", "-i", "1")
    assert "no fan curve set for GPU 1" in done.stderr and "fan curve set" in done.stderr
