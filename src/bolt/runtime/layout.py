"""Where one container's files live: ``$BOLT_ROOT/containers/<id>/``; a removed one's
wait in ``removed_dir`` until they are deleted.  The files of one run (``bundle/``: the
config, the root file system's mount point, /etc/hostname, /etc/hosts, /etc/resolv.conf
and the init's pid) are in the bundle; a container removed on exit has its bundle in
the run directory (``bolt.runtime.runroot``), on tmpfs."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import NamedTuple

RUN_BASE = Path("/run/bolt")


@functools.lru_cache(maxsize=64)  # one resolve() per root, not per container
def run_dir(root: Path) -> Path:
    """The run directory of the Bolt root ``root``: its bundles that need not outlive a
    reboot (one per root, as roots may share a host)."""
    return RUN_BASE / hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]


def removed_dir(root: Path) -> Path:
    """Directories of removed containers, moved here (one rename) so that deleting their
    files need not delay whoever waits for the removal; ``bolt prune`` sweeps leftovers."""
    return root / "removed"


class ContainerDir(NamedTuple):
    path: Path

    @classmethod
    def of(cls, root: Path, cid: str) -> ContainerDir:
        return cls(root / "containers" / cid)

    @property
    def fs_subvolume(self) -> Path:
        """On btrfs: the subvolume holding the overlay's upper and work directories (one
        subvolume, as overlayfs moves files between the two; a capsule snapshot takes it)."""
        return self.path / "fs"

    @property
    def overlay_dirs(self) -> tuple[Path, Path]:
        """The overlay's (upper, work) directories: in the btrfs subvolume if there is one."""
        base = self.fs_subvolume if self.fs_subvolume.is_dir() else self.path
        return base / "upper", base / "work"

    @property
    def bundle(self) -> Path:
        return self.path / "bundle"

    @property
    def rootfs(self) -> Path:
        return self.bundle / "rootfs"

    @property
    def config(self) -> Path:
        return self.bundle / "config.json"

    @property
    def log(self) -> Path:
        return self.path / "log.jsonl"

    @property
    def exit_file(self) -> Path:
        return self.path / "exit"

    @property
    def pid_file(self) -> Path:
        return self.bundle / "pid"

    def etc_file(self, name: str) -> Path:
        """The file bind-mounted at /etc/``name`` (hostname, hosts, resolv.conf)."""
        return self.bundle / name

    @property
    def console_socket(self) -> Path:
        return self.path / "console.sock"

    @property
    def network_record(self) -> Path:
        """What netavark set up for the container (``bolt.runtime.netavark``)."""
        return self.path / "network.json"

    @property
    def monitor_log(self) -> Path:
        return self.path / "monitor.log"
