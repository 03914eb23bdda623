"""Snapshots on nvsim: round trip keyed by UUID, files, and the boot unit that restores one."""

from __future__ import annotations

import ctypes
import json
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.conftest import NvsimInstance
from tests.nvcontrol_control.helpers import fails, needs_root, ok_json, settings_of

pytestmark = [pytest.mark.nvsim, pytest.mark.root, needs_root]
FAST = ("--no-confirm", "--window", "0.2")


def swap_enumeration(inst: NvsimInstance) -> None:
    """Make the driver list GPU 1 first, as a reboot may (the boards keep their settings)."""
    from nvsim.layout import Gpu
    from nvsim.state import StateFile

    with StateFile.open(inst.state) as sf, sf.lock():
        a, b = sf.state.gpus[0], sf.state.gpus[1]
        saved = bytes(memoryview(a).cast("B"))
        ctypes.memmove(ctypes.addressof(a), ctypes.addressof(b), ctypes.sizeof(Gpu))
        ctypes.memmove(ctypes.addressof(b), saved, ctypes.sizeof(Gpu))
        del a, b


def change_everything(inst: NvsimInstance) -> None:
    ok_json(
        inst, "overclock", "apply", "-i", "0", "--gpu-offset", "60", "--memory-offset", "300", *FAST
    )
    ok_json(inst, "clocks", "lock", "-i", "1", "--gpu", "900,1800", *FAST)
    ok_json(inst, "power", "limit", "--percent", "90", *FAST)
    ok_json(inst, "fan", "set", "all", "65", "-i", "1", *FAST)
    ok_json(inst, "power", "persistence", "on", "-i", "0")
    ok_json(inst, "fan", "curve", "set", "35:30,70:90", "-i", "0")


def test_round_trip_survives_swapped_enumeration_order(nvsim_gpus: NvsimInstance) -> None:
    # A non-default starting point, so that restore has to put back more than defaults.
    ok_json(nvsim_gpus, "power", "limit", "-i", "1", "--watts", "500", *FAST)
    ok_json(nvsim_gpus, "clocks", "lock", "-i", "0", "--memory", "5000,10000", *FAST)
    created = ok_json(nvsim_gpus, "snapshot", "create", "good")
    original = settings_of(nvsim_gpus)
    assert set(created["gpus"]) == {g["uuid"] for g in original}

    swap_enumeration(nvsim_gpus)
    listed = ok_json(nvsim_gpus, "gpu", "list")["gpus"]
    assert [g["uuid"] for g in listed] == [original[1]["uuid"], original[0]["uuid"]]

    change_everything(nvsim_gpus)
    differences = ok_json(nvsim_gpus, "snapshot", "diff", "good")["differences"]
    fields = {(d["uuid"], d["field"]) for d in differences}
    assert (original[1]["uuid"], "offsets.P0.graphics_mhz") in fields  # now at index 0
    assert (original[0]["uuid"], "locked_clocks.graphics_mhz") in fields
    assert all(d["index"] in (0, 1) for d in differences)

    report = ok_json(nvsim_gpus, "snapshot", "restore", "good", *FAST)
    assert report["result"] == "committed"
    assert ok_json(nvsim_gpus, "snapshot", "diff", "good") == {
        "snapshot": "good",
        "differences": [],
        "notes": [],
    }
    assert sorted(settings_of(nvsim_gpus), key=lambda g: g["uuid"]) == sorted(
        original, key=lambda g: g["uuid"]
    )
    # Nothing left to do: a second restore changes nothing.
    assert ok_json(nvsim_gpus, "snapshot", "restore", "good", *FAST)["result"] == "unchanged"


def test_snapshot_files_list_show_export_import_delete(
    nvsim_gpus: NvsimInstance, tmp_path: Path
) -> None:
    ok_json(nvsim_gpus, "power", "limit", "-i", "0", "--watts", "400", *FAST)
    ok_json(nvsim_gpus, "snapshot", "create", "a", "-i", "0")
    path = Path(nvsim_gpus.env["NVCTL_STATE_DIR"]) / "snapshots" / "a.toml"
    doc = tomllib.loads(path.read_text())
    uuid = settings_of(nvsim_gpus)[0]["uuid"]
    assert list(doc["gpus"]) == [uuid]
    assert doc["gpus"][uuid]["power_limit_w"] == 400.0

    shown = ok_json(nvsim_gpus, "snapshot", "show", "a")
    assert shown["gpus"][uuid]["power_limit_w"] == 400.0
    assert "power_limit_w = 400.0" in nvsim_gpus.nvctl("snapshot", "show", "a").stdout

    exported = tmp_path / "a-export.toml"
    assert nvsim_gpus.nvctl("snapshot", "export", "a", str(exported)).returncode == 0
    fails(nvsim_gpus, 2, "snapshot", "import", str(exported))  # same name exists
    imported = ok_json(nvsim_gpus, "snapshot", "import", str(exported), "--name", "b")
    assert imported["name"] == "b"
    names = [s["name"] for s in ok_json(nvsim_gpus, "snapshot", "list")["snapshots"]]
    assert names == ["a", "b"]

    bad = tmp_path / "bad.toml"
    bad.write_text('format = 1\nname = "x"\n[gpus.notauuid]\npower_limit_w = 1\n')
    assert (
        "not a GPU table keyed by UUID"
        in fails(nvsim_gpus, 2, "snapshot", "import", str(bad)).stderr
    )

    assert nvsim_gpus.nvctl("snapshot", "delete", "a").returncode == 0
    assert [s["name"] for s in ok_json(nvsim_gpus, "snapshot", "list")["snapshots"]] == ["b"]
    assert "no snapshot named 'a'" in fails(nvsim_gpus, 2, "snapshot", "restore", "a").stderr


def test_boot_unit_restores_the_snapshot_at_boot_and_resume(
    nvsim_gpus: NvsimInstance, tmp_path: Path
) -> None:
    units = tmp_path / "systemd"
    nvsim_gpus.env["NVCTL_SYSTEMD_DIR"] = str(units)
    ok_json(nvsim_gpus, "power", "limit", "--watts", "380", *FAST)
    ok_json(nvsim_gpus, "overclock", "apply", "--memory-offset", "250", *FAST)
    ok_json(nvsim_gpus, "snapshot", "create", "daily")
    wanted = settings_of(nvsim_gpus)

    status = ok_json(nvsim_gpus, "boot", "set", "daily")
    assert status["installed"] and status["snapshot"] == "daily"
    text = (units / "nvctl-restore.service").read_text()
    assert "Type=oneshot" in text
    assert "WantedBy=multi-user.target suspend.target hibernate.target" in text
    after = next(line for line in text.splitlines() if line.startswith("After="))
    assert "nvidia-persistenced.service" in after and "suspend.target" in after
    assert ok_json(nvsim_gpus, "boot", "show")["snapshot"] == "daily"

    # A reboot (or resume) forgets the settings: the driver starts from defaults.
    nvsim_gpus.run("reset")
    assert settings_of(nvsim_gpus) != wanted

    env = dict(nvsim_gpus.env)
    for line in text.splitlines():
        if line.startswith("Environment="):
            key, _, value = shlex.split(line.removeprefix("Environment="))[0].partition("=")
            env[key] = value
    exec_start = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    done = subprocess.run(
        shlex.split(exec_start.removeprefix("ExecStart=")), env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert settings_of(nvsim_gpus) == wanted

    cleared = ok_json(nvsim_gpus, "boot", "clear")
    assert not cleared["installed"] and not (units / "nvctl-restore.service").exists()


def test_boot_set_refuses_an_unknown_snapshot(nvsim_gpus: NvsimInstance, tmp_path: Path) -> None:
    nvsim_gpus.env["NVCTL_SYSTEMD_DIR"] = str(tmp_path / "systemd")
    assert "no snapshot named" in fails(nvsim_gpus, 2, "boot", "set", "missing").stderr
    assert json.loads(nvsim_gpus.nvctl("boot", "show", "--json").stdout)["installed"] is False


def test_import_validates_against_the_schema_create_writes(
    nvsim_gpus: NvsimInstance, tmp_path: Path
) -> None:
    ok_json(nvsim_gpus, "power", "persistence", "on", "-i", "0")
    ok_json(nvsim_gpus, "snapshot", "create", "good", "-i", "0")
    text = (Path(nvsim_gpus.env["NVCTL_STATE_DIR"]) / "snapshots" / "good.toml").read_text()
    assert "persistence_mode = true" in text
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(text.replace("persistence_mode = true", 'persistence_mode = "false"'))
    done = fails(nvsim_gpus, 2, "snapshot", "import", str(wrong), "--name", "w")
    assert "persistence_mode: expected true or false" in done.stderr
    assert "internal error" not in done.stderr
    assert "too large" not in fails(nvsim_gpus, 2, "snapshot", "import", "/dev/zero").stderr
    assert "larger than" in fails(nvsim_gpus, 2, "snapshot", "import", "/dev/zero").stderr
    names = [s["name"] for s in ok_json(nvsim_gpus, "snapshot", "list")["snapshots"]]
    assert names == ["good"]


def test_snapshot_list_skips_an_unreadable_file_with_a_warning(nvsim_gpus: NvsimInstance) -> None:
    ok_json(nvsim_gpus, "snapshot", "create", "good")
    folder = Path(nvsim_gpus.env["NVCTL_STATE_DIR"]) / "snapshots"
    (folder / "broken.toml").write_bytes(b"\xff\xfe garbage")
    done = nvsim_gpus.nvctl("snapshot", "list", "--json")
    assert done.returncode == 0, done.stderr
    assert [s["name"] for s in json.loads(done.stdout)["snapshots"]] == ["good"]
    assert "warning: skipped" in done.stderr and "broken.toml" in done.stderr


def test_locks_recorded_before_a_driver_reload_are_stale_and_restored_truthfully(
    nvsim_gpus: NvsimInstance,
) -> None:
    ok_json(nvsim_gpus, "clocks", "lock", "-i", "0", "--gpu", "900,1800", *FAST)
    ok_json(nvsim_gpus, "snapshot", "create", "locked")
    assert ok_json(nvsim_gpus, "snapshot", "diff", "locked")["differences"] == []
    # The driver is reloaded within the same boot: it forgets the lock.
    nvsim_gpus.run("down")
    nvsim_gpus.run("up", "--gpus", "2", "--model", "rtx4090")
    assert settings_of(nvsim_gpus)[0]["locked_clocks"] is None
    got = ok_json(nvsim_gpus, "snapshot", "diff", "locked")
    assert [(d["field"], d["snapshot"], d["live"]) for d in got["differences"]] == [
        ("locked_clocks.graphics_mhz", [900, 1800], "unlocked")
    ]
    assert any("driver was reloaded" in n for n in got["notes"])
    assert ok_json(nvsim_gpus, "snapshot", "restore", "locked", *FAST)["result"] == "committed"
    locked = nvsim_gpus.status()["gpus"][0]["locked_clocks"]
    assert "900" in str(locked) and "1800" in str(locked)
    again = ok_json(nvsim_gpus, "snapshot", "diff", "locked")
    assert again["differences"] == [] and again["notes"] == []


def test_a_snapshot_from_another_machine_is_described_clearly(
    nvsim_gpus: NvsimInstance, tmp_path: Path
) -> None:
    ok_json(nvsim_gpus, "snapshot", "create", "here")
    text = (Path(nvsim_gpus.env["NVCTL_STATE_DIR"]) / "snapshots" / "here.toml").read_text()
    for i, g in enumerate(nvsim_gpus.status()["gpus"]):
        text = text.replace(g["uuid"], f"GPU-00000000-0000-0000-0000-00000000000{i}")
    other = tmp_path / "other.toml"
    other.write_text(text)
    ok_json(nvsim_gpus, "snapshot", "import", str(other), "--name", "other")
    nvsim_gpus.env["NVCTL_SYSTEMD_DIR"] = str(tmp_path / "systemd")
    for args in (("snapshot", "diff", "other"), ("snapshot", "restore", "other"),
                 ("boot", "set", "other")):  # fmt: skip
        done = fails(nvsim_gpus, 2, *args)
        assert "was taken on another machine" in done.stderr, args
        assert "GPU-00000000-0000-0000-0000-000000000000" in done.stderr
    assert not (tmp_path / "systemd" / "nvctl-restore.service").exists()
