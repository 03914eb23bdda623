"""Where nvcontrol keeps its state and configuration (DESIGN.md's conventions).

``$NVCTL_STATE_DIR`` (default ``/var/lib/nvcontrol`` as root, the XDG state dir otherwise)
holds the journal database and snapshot files; ``$NVCTL_CONFIG_DIR`` (``/etc/nvcontrol``
or the XDG config dir) holds what users declare, such as fan curves.
"""

from __future__ import annotations

import os
from pathlib import Path


def _is_root() -> bool:
    return os.geteuid() == 0


def state_dir() -> Path:
    env = os.environ.get("NVCTL_STATE_DIR")
    if env:
        return Path(env)
    if _is_root():
        return Path("/var/lib/nvcontrol")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "nvcontrol"


def config_dir() -> Path:
    env = os.environ.get("NVCTL_CONFIG_DIR")
    if env:
        return Path(env)
    if _is_root():
        return Path("/etc/nvcontrol")
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "nvcontrol"


def journal_path() -> Path:
    return state_dir() / "journal.db"


def snapshots_dir() -> Path:
    return state_dir() / "snapshots"


def fan_curves_path() -> Path:
    return config_dir() / "fan-curves.toml"


def systemd_dir() -> Path:
    """Where ``nvctl boot set`` installs its units (``$NVCTL_SYSTEMD_DIR`` for tests)."""
    return Path(os.environ.get("NVCTL_SYSTEMD_DIR") or "/etc/systemd/system")
