"""`overclock test` killed with SIGTERM or SIGKILL leaves no load running: SIGTERM takes it
off before exiting, and after SIGKILL the next nvctl command does."""

from __future__ import annotations

import signal
import time

import pytest

from tests.conftest import NvsimInstance
from tests.nvcontrol_control.helpers import needs_root
from tests.nvcontrol_control.test_cli_safety import background

pytestmark = [pytest.mark.nvsim, pytest.mark.root, needs_root]


def loads(inst: NvsimInstance) -> list[int]:
    return [g["load_pct"] for g in inst.status()["gpus"]]


def wait_for_load(inst: NvsimInstance, timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if loads(inst) == [100, 100]:
            return
        time.sleep(0.1)
    raise AssertionError(f"the test's load never appeared: {loads(inst)}")


def test_sigterm_takes_the_load_off_before_exiting(nvsim_gpus: NvsimInstance) -> None:
    proc = background(nvsim_gpus, "overclock", "test", "--duration", "60")
    wait_for_load(nvsim_gpus)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert "interrupted by a signal" in err and "Traceback" not in err
    assert loads(nvsim_gpus) == [0, 0]


def test_after_sigkill_the_next_command_takes_the_load_off(nvsim_gpus: NvsimInstance) -> None:
    proc = background(nvsim_gpus, "overclock", "test", "--duration", "60")
    wait_for_load(nvsim_gpus)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert loads(nvsim_gpus) == [100, 100]  # nobody is left to take it off
    done = nvsim_gpus.nvctl("gpu", "list")
    assert done.returncode == 0, done.stderr
    assert "stability test of process" in done.stderr and "is off again" in done.stderr
    assert loads(nvsim_gpus) == [0, 0]
    assert "stability test" not in nvsim_gpus.nvctl("gpu", "list").stderr  # repaired once
