"""A change on a GPU that a live transaction holds is refused (exit 2, naming it), so the
transaction's rollback can never silently overwrite it."""

from __future__ import annotations

import signal

import pytest

from tests.conftest import NvsimInstance
from tests.nvcontrol_control.helpers import fails, needs_root, ok_json, settings_of
from tests.nvcontrol_control.test_cli_safety import background, wait_for_live_transaction

pytestmark = [pytest.mark.nvsim, pytest.mark.root, needs_root]

DIRECT_CHANGES = [
    ("power", "reset", "-i", "0"),
    ("overclock", "reset", "-i", "0"),
    ("clocks", "reset", "-i", "0"),
    ("fan", "auto", "-i", "0"),
    ("power", "persistence", "on", "-i", "0"),
    ("fan", "curve", "set", "40:40,80:90", "-i", "0"),
    ("power", "limit", "-i", "all", "--watts", "350", "--no-confirm", "--window", "0"),
]


def test_direct_changes_on_a_gpu_with_a_live_transaction_are_refused(
    nvsim_gpus: NvsimInstance,
) -> None:
    ok_json(nvsim_gpus, "power", "limit", "--watts", "400", "--no-confirm", "--window", "0")
    proc = background(
        nvsim_gpus, "overclock", "apply", "-i", "0", "--gpu-offset", "45", "--confirm",
        "--confirm-timeout", "60", "--window", "0.2",
    )  # fmt: skip
    live = wait_for_live_transaction(nvsim_gpus, proc)
    held = settings_of(nvsim_gpus)
    for args in DIRECT_CHANGES:
        done = fails(nvsim_gpus, 2, *args)
        assert f"transaction {live['id']}" in done.stderr, args
        assert "nothing was changed" in done.stderr
        assert settings_of(nvsim_gpus) == held, args
    # The other GPU is free: a direct change there goes through and survives the rollback.
    ok_json(nvsim_gpus, "power", "reset", "-i", "1")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 5, err  # interrupted: rolled back
    after = settings_of(nvsim_gpus)
    assert after[0]["power_limit_w"] == 400.0 and after[0]["offsets"]["P0"]["gpc"] == 0
    assert after[1]["power_limit_w"] == 450.0  # the reset of GPU 1 was not undone
    kinds = [t["kind"] for t in ok_json(nvsim_gpus, "transactions")["transactions"]]
    assert kinds[:2] == ["power reset", "overclock apply"]
