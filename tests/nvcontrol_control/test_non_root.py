"""Non-root users: every write is refused with exit 4 and the usual advice (never an
internal error), reads work, and the installed tools run for them at all."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import NvsimInstance, tool
from tests.nvcontrol_control.helpers import needs_root, ok_json, settings_of

pytestmark = [
    pytest.mark.nvsim,
    pytest.mark.root,
    needs_root,
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is needed"),
]


def as_nobody(inst: NvsimInstance, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv],
        env=inst.env,
        capture_output=True,
        text=True,
    )


def test_the_console_scripts_run_for_a_non_root_user(shared_nvsim: NvsimInstance) -> None:
    for name in ("nvctl", "bolt", "nvsim"):
        done = as_nobody(shared_nvsim, tool(name), "--help")
        assert done.returncode == 0, (name, done.stderr)


def test_nvsim_status_is_readable_by_a_non_root_user(shared_nvsim: NvsimInstance) -> None:
    done = as_nobody(shared_nvsim, tool("nvsim"), "--state", str(shared_nvsim.state), "status",
                     "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [g["uuid"] for g in json.loads(done.stdout)["gpus"]] == [
        g["uuid"] for g in shared_nvsim.status()["gpus"]
    ]
    # ... and still may not change anything.
    load = as_nobody(shared_nvsim, tool("nvsim"), "--state", str(shared_nvsim.state), "load", "0",
                     "50")  # fmt: skip
    assert load.returncode == 4, load.stderr
    assert shared_nvsim.status()["gpus"][0]["load_pct"] == 0


@pytest.mark.parametrize(
    "args",
    [
        ("snapshot", "create", "mine"),
        ("snapshot", "delete", "rootsnap"),
        ("snapshot", "import", "/etc/hostname"),
        ("fan", "curve", "set", "40:40,80:90"),
        ("power", "reset"),
        ("fan", "auto"),
        ("clocks", "reset"),
    ],
)
def test_non_root_writes_get_exit_4_never_an_internal_error(
    shared_nvsim: NvsimInstance, args: tuple[str, ...]
) -> None:
    ok_json(shared_nvsim, "power", "limit", "-i", "0", "--watts", "420", "--no-confirm",
            "--window", "0")  # fmt: skip
    ok_json(shared_nvsim, "snapshot", "create", "rootsnap")
    before = settings_of(shared_nvsim)
    done = as_nobody(shared_nvsim, tool("nvctl"), *args)
    assert done.returncode in (4, 2), done.stderr  # 2 only where the input itself is wrong
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    assert "readonly database" not in done.stderr
    if args[0] != "snapshot" or args[1] != "import":
        assert done.returncode == 4, done.stderr
        assert "sudo" in done.stderr or "run as root" in done.stderr
    assert settings_of(shared_nvsim) == before
    snaps = Path(shared_nvsim.env["NVCTL_STATE_DIR"]) / "snapshots"
    assert sorted(p.name for p in snaps.iterdir()) == ["rootsnap.toml"]


def test_a_journal_this_user_may_not_read_is_reported_not_empty(
    shared_nvsim: NvsimInstance,
) -> None:
    ok_json(shared_nvsim, "power", "limit", "-i", "0", "--watts", "420", "--no-confirm",
            "--window", "0")  # fmt: skip
    journal = Path(shared_nvsim.env["NVCTL_STATE_DIR"]) / "journal.db"
    os.chmod(journal, 0o600)
    done = as_nobody(shared_nvsim, tool("nvctl"), "transactions")
    assert done.returncode == 4, done.stderr
    assert "no transactions" not in done.stdout
    assert str(journal) in done.stderr and "sudo" in done.stderr


def test_a_corrupt_journal_is_reported_and_refuses_writes(nvsim_gpus: NvsimInstance) -> None:
    ok_json(nvsim_gpus, "power", "limit", "-i", "0", "--watts", "420", "--no-confirm",
            "--window", "0")  # fmt: skip
    state = Path(nvsim_gpus.env["NVCTL_STATE_DIR"])
    for p in state.glob("journal.db*"):
        p.unlink()
    (state / "journal.db").write_bytes(b"this is not a database" * 100)
    before = settings_of(nvsim_gpus)
    listed = nvsim_gpus.nvctl("transactions")
    assert listed.returncode == 1, listed.stderr
    assert "corrupt" in listed.stderr and "no transactions" not in listed.stdout
    write = nvsim_gpus.nvctl("power", "limit", "-i", "0", "--watts", "300", "--no-confirm")
    assert write.returncode == 1, write.stderr
    assert "corrupt" in write.stderr and "DatabaseError" not in write.stderr
    assert settings_of(nvsim_gpus) == before
    # Reading the GPUs still works, with the journal problem said once.
    gpus = nvsim_gpus.nvctl("gpu", "list")
    assert gpus.returncode == 0 and "corrupt" in gpus.stderr
