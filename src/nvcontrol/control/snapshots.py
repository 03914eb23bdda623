"""Snapshots of GPU configuration: the model, its TOML files, and the diff against live state.

A snapshot maps GPU UUIDs (never indexes: enumeration order changes across reboots) to the
flat configuration of :mod:`nvcontrol.control.settings`.  On disk it is human-readable TOML
in ``$NVCTL_STATE_DIR/snapshots/NAME.toml``::

    format = 1
    name = "stable"
    created = "2026-11-28T23:10:00+00:00"

    [gpus."GPU-5f3a..."]
    name = "NVIDIA GeForce RTX 4090"
    index = 0                      # at capture time; informative only
    power_limit_w = 400.0
    persistence_mode = true
    compute_mode = "Default"
    fan_curve = "none"

    [gpus."GPU-5f3a...".offsets.P0]
    graphics_mhz = 120
    memory_mhz = 500

    [gpus."GPU-5f3a...".locked_clocks]
    graphics_mhz = "unlocked"
    memory_mhz = [405, 10501]

    [gpus."GPU-5f3a...".fans.0]
    policy = "manual"
    speed_pct = 60

Pure: documents in, documents out.  :func:`diff` and :func:`plan_restore` take live
configurations as values; reading them is :mod:`nvcontrol.control.manager`'s job.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from nvcontrol.control import paths
from nvcontrol.control.errors import SnapshotError
from nvcontrol.control.settings import field_rank

FORMAT = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# How deep each top-level key nests before its value (a leaf may itself be a table).
_DEPTH = {"offsets": 3, "locked_clocks": 2, "fans": 2}
_IDENTITY = ("name", "index", "pci_bus_id")


@dataclass(frozen=True)
class GpuEntry:
    uuid: str
    name: str
    index: int
    pci_bus_id: str
    config: dict[str, Any]


@dataclass
class GpuSnapshot:
    name: str
    created: str
    gpus: dict[str, GpuEntry] = field(default_factory=dict)

    # ------------------------------------------------------------ document form

    def to_dict(self) -> dict[str, Any]:
        """The provider form (also what the TOML file holds)."""
        return {
            "format": FORMAT,
            "name": self.name,
            "created": self.created,
            "gpus": {
                uuid: {
                    "name": e.name,
                    "index": e.index,
                    "pci_bus_id": e.pci_bus_id,
                    **nest(e.config),
                }
                for uuid, e in self.gpus.items()
            },
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any], *, source: str = "snapshot") -> GpuSnapshot:
        if doc.get("format") != FORMAT:
            raise SnapshotError(
                f"{source}: unsupported snapshot format {doc.get('format')!r} (expected {FORMAT})"
            )
        name, created, gpus = doc.get("name"), doc.get("created"), doc.get("gpus")
        if not isinstance(name, str) or not isinstance(gpus, dict):
            raise SnapshotError(f"{source}: a snapshot needs a name and a [gpus] table")
        entries = {}
        for uuid, body in gpus.items():
            if not isinstance(body, dict) or not str(uuid).startswith("GPU-"):
                raise SnapshotError(f"{source}: gpus.{uuid} is not a GPU table keyed by UUID")
            config = flatten({k: v for k, v in body.items() if k not in _IDENTITY})
            entries[uuid] = GpuEntry(
                uuid,
                str(body.get("name", "")),
                int(body.get("index", -1)),
                str(body.get("pci_bus_id", "")),
                config,
            )
        return cls(name, str(created or ""), entries)

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_toml(cls, text: str, *, source: str) -> GpuSnapshot:
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise SnapshotError(f"{source}: not valid TOML ({err})") from None
        return cls.from_dict(doc, source=source)

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "created": self.created,
            "gpus": [{"uuid": u, "name": e.name, "index": e.index} for u, e in self.gpus.items()],
        }


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def flatten(doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def walk(prefix: list[str], node: Any, depth: int) -> None:
        if len(prefix) >= depth or not isinstance(node, dict):
            out[".".join(prefix)] = node
            return
        for k, v in node.items():
            walk([*prefix, str(k)], v, depth)

    for key, value in doc.items():
        walk([key], value, _DEPTH.get(key, 1))
    return out


# --------------------------------------------------------------------------- diff


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return abs(float(a) - float(b)) < 0.0005
        except (TypeError, ValueError):
            return False
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return list(a) == list(b)
    return bool(a == b)


def diff(snap: GpuSnapshot, live: dict[str, tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per GPU and field, where the live state (``uuid -> (index, config)``) differs from the
    snapshot.  Fields the snapshot does not hold are not compared.  Empty = identical."""
    out: list[dict[str, Any]] = []
    for uuid, entry in snap.gpus.items():
        if uuid not in live:
            out.append(
                {"uuid": uuid, "index": None, "field": "gpu", "snapshot": "present", "live": None}
            )
            continue
        index, config = live[uuid]
        for name in sorted(entry.config, key=lambda n: (field_rank(n), n)):
            want, have = entry.config[name], config.get(name)
            if not same(want, have):
                out.append(
                    {"uuid": uuid, "index": index, "field": name, "snapshot": want, "live": have}
                )
    return out


def plan_restore(differences: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    """The writes that make the live state match: ``(uuid, field, value)`` in apply order."""
    missing = [d["uuid"] for d in differences if d["field"] == "gpu"]
    if missing:
        raise SnapshotError(
            "the snapshot names GPUs this machine does not have: " + ", ".join(missing),
            hint="restore on the machine it was taken on, or select GPUs with -i",
        )
    writes = [(d["uuid"], d["field"], d["snapshot"]) for d in differences]
    return sorted(writes, key=lambda w: field_rank(w[1]))


# --------------------------------------------------------------------------- store


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise SnapshotError(
            f"invalid snapshot name {name!r}",
            hint="use letters, digits, '.', '_' and '-' (up to 64, not starting with '.')",
        )
    return name


class SnapshotStore:
    """Snapshot files in the state directory."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or paths.snapshots_dir()

    def path(self, name: str) -> Path:
        return self.root / f"{check_name(name)}.toml"

    def exists(self, name: str) -> bool:
        return self.path(name).exists()

    def save(self, snap: GpuSnapshot, *, overwrite: bool = False) -> Path:
        path = self.path(snap.name)
        if path.exists() and not overwrite:
            raise SnapshotError(
                f"snapshot {snap.name!r} already exists",
                hint=f"delete it first (`nvctl snapshot delete {snap.name}`) or pick another name",
            )
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            f.write(snap.to_toml())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return path

    def load(self, name: str) -> GpuSnapshot:
        path = self.path(name)
        try:
            text = path.read_text()
        except FileNotFoundError:
            known = ", ".join(self.names()) or "none"
            raise SnapshotError(
                f"no snapshot named {name!r}", hint=f"snapshots: {known} (`nvctl snapshot list`)"
            ) from None
        return GpuSnapshot.from_toml(text, source=str(path))

    def delete(self, name: str) -> None:
        try:
            self.path(name).unlink()
        except FileNotFoundError:
            raise SnapshotError(f"no snapshot named {name!r}") from None

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.toml"))

    def all(self) -> list[GpuSnapshot]:
        return [self.load(n) for n in self.names()]
