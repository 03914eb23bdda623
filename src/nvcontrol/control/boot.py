"""Settings that survive: a systemd unit that restores a snapshot at boot and on resume.

NVML settings do not survive a reboot, a driver reload or (on many boards) a suspend.
``nvctl boot set NAME`` installs ``nvctl-restore.service``: a oneshot that runs
``nvctl snapshot restore NAME --no-confirm`` once the NVIDIA driver is up
(after ``nvidia-persistenced`` / module loading) and again after every resume from
suspend or hibernation (it is wanted by the sleep targets and ordered after them).
The unit text is built by :func:`unit_text` (pure) so tests can check it and run its
``ExecStart``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nvcontrol.control import paths
from nvcontrol.control.snapshots import GpuSnapshot, SnapshotStore, check_name, missing_gpus
from nvcontrol.errors import PermissionDenied

UNIT_NAME = "nvctl-restore.service"
SLEEP_TARGETS = (
    "suspend.target",
    "hibernate.target",
    "hybrid-sleep.target",
    "suspend-then-hibernate.target",
)
# The stability window of the boot-time restore: short, the values were stable before.
BOOT_WINDOW_S = 3


def nvctl_path() -> str:
    exe = Path(sys.executable).with_name("nvctl")
    return str(exe) if exe.exists() else (shutil.which("nvctl") or "nvctl")


def unit_text(snapshot: str, nvctl: str, env: dict[str, str]) -> str:
    environment = "".join(
        f"Environment={shlex.quote(f'{k}={v}')}\n" for k, v in sorted(env.items())
    )
    command = shlex.join(
        [nvctl, "snapshot", "restore", snapshot, "--no-confirm", "--window", str(BOOT_WINDOW_S)]
    )
    return (
        "# Installed by `nvctl boot set`; remove with `nvctl boot clear`.\n"
        "[Unit]\n"
        f"Description=nvcontrol: restore GPU snapshot {snapshot} at boot and after resume\n"
        "After=systemd-modules-load.service nvidia-persistenced.service "
        + " ".join(SLEEP_TARGETS)
        + "\n"
        "Wants=nvidia-persistenced.service\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"{environment}"
        f"ExecStart={command}\n"
        "\n"
        "[Install]\n"
        f"WantedBy=multi-user.target {' '.join(SLEEP_TARGETS)}\n"
    )


def _env() -> dict[str, str]:
    """The state and config locations in effect, so the unit finds the same snapshot."""
    return {
        "NVCTL_STATE_DIR": str(paths.state_dir()),
        "NVCTL_CONFIG_DIR": str(paths.config_dir()),
    }


def _systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def _systemctl(*args: str) -> str | None:
    """Run systemctl when systemd manages this machine; the error text on failure."""
    if not _systemd_running() or "NVCTL_SYSTEMD_DIR" in os.environ:
        return None
    done = subprocess.run(["systemctl", *args], capture_output=True, text=True)
    return None if done.returncode == 0 else done.stderr.strip()


@dataclass
class BootStatus:
    unit: str
    installed: bool
    snapshot: str | None
    enabled: bool | None  # None: systemd is not running here, cannot tell
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "installed": self.installed,
            "snapshot": self.snapshot,
            "enabled": self.enabled,
            "note": self.note,
        }


def unit_path() -> Path:
    return paths.systemd_dir() / UNIT_NAME


def set_boot(snapshot: str) -> BootStatus:
    check_name(snapshot)
    snap = SnapshotStore().load(snapshot)  # must exist and parse
    here_note = _gpus_here(snap)
    if os.geteuid() != 0:
        raise PermissionDenied(
            "installing a systemd unit needs root; nothing was changed",
            hint="run `sudo nvctl boot set ...`",
        )
    path = unit_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(unit_text(snapshot, nvctl_path(), _env()))
    os.replace(tmp, path)
    problem = _systemctl("daemon-reload") or _systemctl("enable", UNIT_NAME)
    status = show_boot()
    notes = [n for n in (here_note, status.note) if n]
    if problem:
        notes.insert(0, f"unit written but not enabled: {problem}")
    status.note = "; ".join(notes) or None
    return status


def _gpus_here(snap: GpuSnapshot) -> str | None:
    """Refuse a snapshot none of whose GPUs is in this machine; a note when some are not
    (or when there is no driver to check against)."""
    from nvcontrol.errors import NoDriver
    from nvcontrol.nvml import Nvml

    try:
        with Nvml() as nvml:
            here = [g.uuid for g in nvml.gpus]
    except NoDriver:
        return "no NVIDIA driver is loaded now, so the snapshot's GPUs were not checked"
    missing = missing_gpus(snap, here)
    if missing is None:
        return None
    if not set(snap.gpus) & set(here):
        raise missing
    return missing.message


def show_boot() -> BootStatus:
    path = unit_path()
    if not path.exists():
        return BootStatus(str(path), False, None, False if _systemd_running() else None)
    snapshot = None
    for line in path.read_text().splitlines():
        if line.startswith("ExecStart="):
            argv = shlex.split(line.removeprefix("ExecStart="))
            if "restore" in argv:
                snapshot = argv[argv.index("restore") + 1]
    enabled: bool | None = None
    note = None
    if _systemd_running() and "NVCTL_SYSTEMD_DIR" not in os.environ:
        done = subprocess.run(
            ["systemctl", "is-enabled", UNIT_NAME], capture_output=True, text=True
        )
        enabled = done.stdout.strip() == "enabled"
    else:
        note = (
            "systemd is not running here: the unit takes effect on a systemd machine once enabled"
        )
    return BootStatus(str(path), True, snapshot, enabled, note)


def clear_boot() -> BootStatus:
    path = unit_path()
    if path.exists():
        if os.geteuid() != 0:
            raise PermissionDenied("removing the systemd unit needs root", hint="use sudo")
        _systemctl("disable", UNIT_NAME)
        path.unlink()
        _systemctl("daemon-reload")
    return show_boot()
