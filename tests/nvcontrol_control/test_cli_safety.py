"""Safety: rejected changes change nothing; instability, a missing confirmation and a
killed process all end with the GPUs as they were before."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time

import pytest

from tests.conftest import NvsimInstance, tool
from tests.nvcontrol_control.helpers import fails, needs_root, ok_json, settings_of

pytestmark = [pytest.mark.nvsim, pytest.mark.root, needs_root]


def background(inst: NvsimInstance, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [tool("nvctl"), *args],
        env=inst.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_live_transaction(
    inst: NvsimInstance, proc: subprocess.Popen[str], timeout: float = 30.0
) -> dict:
    """The open transaction of the background ``proc``; fails, with what ``proc`` printed,
    if it ends without one."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        done = inst.nvctl("transactions", "--json")
        last = done
        if done.returncode == 0:
            live = [t for t in json.loads(done.stdout)["transactions"] if t["state"] == "open"]
            if live:
                return live[0]
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    if proc.poll() is None:
        proc.kill()
    out, err = proc.communicate(timeout=30)
    raise AssertionError(
        f"no live transaction appeared; the change exited {proc.returncode}, "
        f"stdout {out!r}, stderr {err!r}; last `transactions`: {last and last.stdout!r} "
        f"{last and last.stderr!r}"
    )


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (
            ("overclock", "apply", "-i", "0", "--gpu-offset", "5000"),
            2,
            "outside the driver's range",
        ),
        (("overclock", "apply", "-i", "0", "--memory-offset", "-9000"), 2, "-2000..+6000 MHz"),
        (("power", "limit", "-i", "1", "--watts", "900"), 2, "150..600 W"),
        (("power", "limit", "-i", "1", "--percent", "200"), 2, "33.4..133.3%"),
        (("clocks", "lock", "-i", "0", "--gpu", "100,99999"), 2, "fall outside"),
        (("fan", "set", "0", "5", "-i", "0"), 2, "outside the fans' range"),
        (("fan", "set", "7", "50", "-i", "0"), 2, "there is no fan 7"),
        (("overclock", "apply", "-i", "5", "--gpu-offset", "50"), 2, "no GPU with index 5"),
        (("power", "limit", "-i", "GPU-ffff", "--watts", "300"), 2, "no GPU matches"),
    ],
)
def test_rejected_changes_leave_every_setting_as_it_was(
    nvsim_gpus: NvsimInstance, args: tuple[str, ...], code: int, words: str
) -> None:
    before = settings_of(nvsim_gpus)
    done = fails(nvsim_gpus, code, *args, "--no-confirm")
    assert words in done.stderr
    assert "error:" in done.stderr and "hint:" in done.stderr
    assert settings_of(nvsim_gpus) == before


def test_the_rejection_names_gpu_index_and_uuid(nvsim_gpus: NvsimInstance) -> None:
    uuid = settings_of(nvsim_gpus)[1]["uuid"]
    done = fails(nvsim_gpus, 2, "power", "limit", "-i", "1", "--watts", "900")
    assert f"GPU 1 ({uuid})" in done.stderr


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is needed")
@pytest.mark.parametrize(
    "args",
    [
        ("overclock", "apply", "-i", "0", "--gpu-offset", "50", "--no-confirm"),
        ("power", "limit", "--watts", "300"),
        ("fan", "set", "all", "80"),
        ("clocks", "lock", "--gpu", "1000,2000"),
        ("power", "persistence", "on"),
    ],
)
def test_a_non_root_caller_is_refused_with_exit_4_and_nothing_changes(
    shared_nvsim: NvsimInstance, args: tuple[str, ...]
) -> None:
    # A journal exists (root used nvctl before) but is not writable by this user.
    ok_json(
        shared_nvsim, "power", "limit", "-i", "0", "--watts", "420", "--no-confirm", "--window", "0"
    )
    before = settings_of(shared_nvsim)
    done = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", tool("nvctl"), *args],
        env=shared_nvsim.env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 4, done.stderr
    assert "needs root" in done.stderr and "sudo" in done.stderr
    assert settings_of(shared_nvsim) == before


def test_an_offset_above_the_stable_limit_under_load_is_rolled_back(
    nvsim_gpus: NvsimInstance,
) -> None:
    hidden = nvsim_gpus.status()["gpus"][0]["hidden"]["stable_gpc_offset_mhz"]
    before = settings_of(nvsim_gpus)
    nvsim_gpus.run("load", "0", "100")
    done = nvsim_gpus.nvctl(
        "overclock", "apply", "-i", "0", "--gpu-offset", str(hidden + 150), "--no-confirm",
        "--window", "15", "--json",
    )  # fmt: skip
    assert done.returncode == 5, done.stderr
    assert "rolled back" in done.stderr and "Xid" in done.stderr
    report = json.loads(done.stdout)
    assert report["result"] == "rolled_back" and "Xid" in report["cause"]
    assert settings_of(nvsim_gpus) == before
    assert nvsim_gpus.status()["gpus"][0]["lost"] is False


def test_unconfirmed_change_is_reverted_after_the_timeout(nvsim_gpus: NvsimInstance) -> None:
    before = settings_of(nvsim_gpus)
    done = nvsim_gpus.nvctl(
        "power", "limit", "-i", "0", "--watts", "300", "--confirm", "--confirm-timeout", "1",
        "--window", "0.2",
    )  # fmt: skip
    assert done.returncode == 5
    assert "not confirmed within 1 s" in done.stderr
    assert settings_of(nvsim_gpus) == before


def test_nvctl_confirm_from_another_shell_commits(nvsim_gpus: NvsimInstance) -> None:
    proc = background(
        nvsim_gpus, "overclock", "apply", "-i", "0", "--memory-offset", "300", "--confirm",
        "--confirm-timeout", "30", "--window", "0.2", "--json",
    )  # fmt: skip
    live = wait_for_live_transaction(nvsim_gpus, proc)
    # Meanwhile other commands see the live change and do not revert it.
    status = ok_json(nvsim_gpus, "overclock", "status", "-i", "0")["gpus"][0]
    assert status["pstates"]["P0"]["memory"]["offset_mhz"] == 300
    assert [t["id"] for t in status["transactions"]] == [live["id"]]
    # A second change on the same GPU is refused while the first is live.
    busy = fails(nvsim_gpus, 2, "power", "limit", "-i", "0", "--watts", "300")
    assert f"transaction {live['id']}" in busy.stderr
    confirmed = ok_json(nvsim_gpus, "confirm", str(live["id"]))
    assert confirmed["confirmed"] is True
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert json.loads(out)["result"] == "committed"
    assert settings_of(nvsim_gpus)[0]["offsets"]["P0"]["mem"] == 300


def test_kill_9_in_the_confirm_window_is_rolled_back_by_the_next_command(
    nvsim_gpus: NvsimInstance,
) -> None:
    before = settings_of(nvsim_gpus)
    proc = background(
        nvsim_gpus, "overclock", "apply", "--gpu-offset", "90", "--memory-offset", "700",
        "--confirm", "--confirm-timeout", "60", "--window", "0.2",
    )  # fmt: skip
    wait_for_live_transaction(nvsim_gpus, proc)
    assert settings_of(nvsim_gpus) != before  # the change is live
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = nvsim_gpus.nvctl("gpu", "list")  # any command
    assert done.returncode == 0
    assert "rolled back transaction" in done.stderr and "died" in done.stderr
    assert settings_of(nvsim_gpus) == before
    again = nvsim_gpus.nvctl("gpu", "list")
    assert "rolled back" not in again.stderr  # repaired once


def test_sigterm_during_the_window_rolls_back_and_exits_5(nvsim_gpus: NvsimInstance) -> None:
    before = settings_of(nvsim_gpus)
    proc = background(nvsim_gpus, "fan", "set", "all", "90", "--no-confirm", "--window", "30")
    wait_for_live_transaction(nvsim_gpus, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 5, err
    assert "interrupted" in err
    assert settings_of(nvsim_gpus) == before


def test_a_gpu_lost_in_the_window_is_restored_once_it_is_back(nvsim_gpus: NvsimInstance) -> None:
    ok_json(
        nvsim_gpus, "power", "limit", "-i", "0", "--watts", "420", "--no-confirm", "--window", "0"
    )
    before = settings_of(nvsim_gpus)
    proc = background(
        nvsim_gpus, "overclock", "apply", "--gpu-offset", "60", "--no-confirm", "--window", "20"
    )
    wait_for_live_transaction(nvsim_gpus, proc)
    nvsim_gpus.run("fault", "0", "lost")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 5
    assert "fell off the bus" in err and "retries once the GPU is back" in err
    # GPU 1 was rolled back at once; GPU 0 waits for its reset.
    assert settings_of(nvsim_gpus)[1] == before[1]
    nvsim_gpus.run("reset")  # the board comes back with driver defaults (450 W, no offsets)
    done = nvsim_gpus.nvctl("power", "status")
    assert "rolled back transaction" in done.stderr
    assert settings_of(nvsim_gpus) == before  # 420 W again: the pre-transaction state


def test_confirm_without_a_waiting_transaction_is_refused(nvsim_gpus: NvsimInstance) -> None:
    done = fails(nvsim_gpus, 2, "confirm")
    assert "no transaction is waiting" in done.stderr
    ok_json(nvsim_gpus, "power", "limit", "--watts", "300", "--no-confirm", "--window", "0")
    history = ok_json(nvsim_gpus, "transactions")["transactions"]
    assert [(t["kind"], t["state"]) for t in history] == [("power limit", "committed")]
    assert (
        "not waiting for confirmation"
        in fails(nvsim_gpus, 2, "confirm", str(history[0]["id"])).stderr
    )


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is needed")
def test_a_non_root_caller_can_read_status_and_snapshots(shared_nvsim: NvsimInstance) -> None:
    ok_json(
        shared_nvsim, "power", "limit", "-i", "0", "--watts", "420", "--no-confirm", "--window", "0"
    )
    for args in (
        ("overclock", "status"),
        ("power", "status"),
        ("fan", "status"),
        ("transactions",),
    ):
        done = subprocess.run(
            [
                "setpriv",
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                tool("nvctl"),
                *args,
                "--json",
            ],
            env=shared_nvsim.env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, (args, done.stderr)
        assert json.loads(done.stdout)
