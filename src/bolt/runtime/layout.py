"""Where one container's files live: ``$BOLT_ROOT/containers/<id>/``; a removed one's
wait in ``removed_dir`` until they are deleted."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple


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
        return self.path / "pid"

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
