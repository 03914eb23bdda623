"""Container Device Interface: read, validate and apply CDI specs as podman does.

Specs are read from /etc/cdi, then /var/run/cdi, then each directory in
``$BOLT_CDI_SPEC_DIRS`` (colon separated); a later directory wins on a name clash.
Specs are JSON or YAML (``.json``, ``.yaml``, ``.yml``).  A requested device
``vendor.com/class=name`` contributes its spec's global ``containerEdits`` and its own:
device nodes (numbers filled in from the host node), mounts, env and hooks, merged into a
``ContainerSpec`` by ``apply`` (pure).
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from bolt.errors import InvalidInput, NotFound
from bolt.runtime.spec import HOOK_STAGES, ContainerSpec, Device, Hook, Mount

DEFAULT_DIRS = ("/etc/cdi", "/var/run/cdi")
KNOWN_VERSIONS = ("0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0")
KIND_RE = re.compile(
    r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?\.[a-z]{2,}/[a-zA-Z0-9]([a-zA-Z0-9_.-]*[a-zA-Z0-9])?$"
)
DEVICE_NAME_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9_.:-]*[a-zA-Z0-9])?$")


class Edits(NamedTuple):
    """``containerEdits`` with every device number known."""

    env: tuple[str, ...] = ()
    devices: tuple[Device, ...] = ()
    mounts: tuple[Mount, ...] = ()
    hooks: tuple[Hook, ...] = ()
    additional_gids: tuple[int, ...] = ()


@dataclass
class CdiSpec:
    path: str
    kind: str
    version: str
    edits: dict[str, Any]
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)


def spec_dirs() -> list[str]:
    extra = [d for d in os.environ.get("BOLT_CDI_SPEC_DIRS", "").split(":") if d]
    return [*DEFAULT_DIRS, *extra]


def _bad(path: str, where: str, why: str) -> InvalidInput:
    return InvalidInput(
        f"CDI spec {path}: {where}: {why}", hint="fix or remove the file; see the CDI specification"
    )


def _check_edits(path: str, where: str, edits: Any) -> None:
    if not isinstance(edits, dict):
        raise _bad(path, where, "must be an object")
    for i, env in enumerate(edits.get("env") or []):
        if not isinstance(env, str) or "=" not in env:
            raise _bad(path, f"{where}.env[{i}]", f"{env!r} is not KEY=VALUE")
    for i, node in enumerate(edits.get("deviceNodes") or []):
        p = node.get("path") if isinstance(node, dict) else None
        if not isinstance(p, str) or not p.startswith("/"):
            raise _bad(path, f"{where}.deviceNodes[{i}].path", "must be an absolute path")
        perms = node.get("permissions", "rwm")
        if not perms or set(perms) - set("rwm"):
            raise _bad(
                path, f"{where}.deviceNodes[{i}].permissions", f"{perms!r} is not a subset of rwm"
            )
        if node.get("type", "c") not in ("c", "b", "u", "p"):
            raise _bad(
                path, f"{where}.deviceNodes[{i}].type", f"{node.get('type')!r} is not c, b, u or p"
            )
    for i, m in enumerate(edits.get("mounts") or []):
        if not isinstance(m, dict) or not m.get("hostPath"):
            raise _bad(path, f"{where}.mounts[{i}].hostPath", "is required")
        if not str(m.get("containerPath", "")).startswith("/"):
            raise _bad(path, f"{where}.mounts[{i}].containerPath", "must be an absolute path")
    for i, h in enumerate(edits.get("hooks") or []):
        if not isinstance(h, dict) or h.get("hookName") not in HOOK_STAGES:
            raise _bad(
                path, f"{where}.hooks[{i}].hookName", f"must be one of {', '.join(HOOK_STAGES)}"
            )
        if not str(h.get("path", "")).startswith("/"):
            raise _bad(path, f"{where}.hooks[{i}].path", "must be an absolute path")


def parse_spec(path: str, data: Any) -> CdiSpec:
    """Validate one spec document; errors name the file and the dotted location."""
    if not isinstance(data, dict):
        raise _bad(path, "top level", "must be an object")
    version = str(data.get("cdiVersion", ""))
    if version not in KNOWN_VERSIONS:
        raise _bad(path, "cdiVersion", f"{version!r} is not one of {', '.join(KNOWN_VERSIONS)}")
    kind = data.get("kind")
    if not isinstance(kind, str) or not KIND_RE.match(kind):
        raise _bad(path, "kind", f"{kind!r} is not vendor.com/class")
    devices = data.get("devices")
    if not isinstance(devices, list) or not devices:
        raise _bad(path, "devices", "must be a non-empty list")
    if "containerEdits" in data:
        _check_edits(path, "containerEdits", data["containerEdits"])
    spec = CdiSpec(path=path, kind=kind, version=version, edits=data.get("containerEdits") or {})
    for i, dev in enumerate(devices):
        name = dev.get("name") if isinstance(dev, dict) else None
        if not isinstance(name, str) or not DEVICE_NAME_RE.match(name):
            raise _bad(path, f"devices[{i}].name", f"{name!r} is not a valid device name")
        if name in spec.devices:
            raise _bad(path, f"devices[{i}].name", f"{name!r} is defined twice")
        edits = dev.get("containerEdits")
        _check_edits(path, f"devices[{i}].containerEdits", edits)
        if not any(edits.get(k) for k in ("env", "deviceNodes", "mounts", "hooks")):
            raise _bad(path, f"devices[{i}].containerEdits", "has no edits")
        spec.devices[name] = edits
    return spec


def _load_file(path: Path) -> Any:
    """A spec file's document: JSON, or YAML (what nvidia-ctk writes by default)."""
    text = path.read_text()
    if path.suffix == ".json":
        return json.loads(text)
    import yaml  # type: ignore[import-untyped]

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc).replace("\n", " ")) from None


def load_registry(dirs: list[str] | None = None) -> dict[str, CdiSpec]:
    """kind -> spec; within a kind, devices of later directories replace earlier ones."""
    registry: dict[str, CdiSpec] = {}
    for d in dirs if dirs is not None else spec_dirs():
        base = Path(d)
        if not base.is_dir():
            continue
        for path in sorted(base.iterdir()):
            if path.suffix not in (".json", ".yaml", ".yml") or not path.is_file():
                continue
            try:
                spec = parse_spec(str(path), _load_file(path))
            except (json.JSONDecodeError, ValueError) as exc:
                if isinstance(exc, InvalidInput):
                    raise
                raise _bad(str(path), "file", f"is not valid JSON/YAML ({exc})") from None
            known = registry.get(spec.kind)
            if known is None:
                registry[spec.kind] = spec
            else:
                known.devices.update(spec.devices)
                if spec.edits:
                    known.edits = spec.edits
    return registry


def split_name(qualified: str) -> tuple[str, str]:
    kind, sep, name = qualified.partition("=")
    if not sep or not KIND_RE.match(kind) or not DEVICE_NAME_RE.match(name):
        raise InvalidInput(f"device {qualified!r} is not a CDI name vendor.com/class=name")
    return kind, name


def _node(raw: dict[str, Any]) -> Device:
    host = raw.get("hostPath") or raw["path"]
    kind, major, minor = raw.get("type"), raw.get("major"), raw.get("minor")
    if kind is None or major is None or (kind in ("c", "b") and minor is None):
        try:
            st = os.stat(host)
        except OSError as exc:
            raise NotFound(
                f"CDI device node {host} does not exist on the host ({exc.strerror})"
            ) from None
        if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            raise InvalidInput(f"CDI device node {host} is not a device node")
        kind = kind or ("c" if stat.S_ISCHR(st.st_mode) else "b")
        major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    if kind not in ("c", "b"):
        raise InvalidInput(f"CDI device node {host}: type {kind!r} is not supported (c or b)")
    return Device(
        path=raw["path"],
        type="c" if kind == "c" else "b",
        major=int(major),
        minor=int(minor or 0),
        access=raw.get("permissions", "rwm"),
        file_mode=raw.get("fileMode"),
        uid=raw.get("uid"),
        gid=raw.get("gid"),
    )


def _mount(raw: dict[str, Any]) -> Mount:
    options = [str(o) for o in raw.get("options") or []]
    kind: Literal["bind", "tmpfs"] = "tmpfs" if raw.get("type") == "tmpfs" else "bind"
    rest = tuple(o for o in options if o not in ("ro", "rw", "bind", "rbind"))
    return Mount(
        destination=raw["containerPath"],
        source=raw["hostPath"],
        kind=kind,
        readonly="ro" in options,
        options=rest,
    )


def resolve_edits(raw: dict[str, Any]) -> Edits:
    return Edits(
        env=tuple(raw.get("env") or ()),
        devices=tuple(_node(n) for n in raw.get("deviceNodes") or ()),
        mounts=tuple(_mount(m) for m in raw.get("mounts") or ()),
        hooks=tuple(
            Hook(
                stage=h["hookName"],
                path=h["path"],
                args=tuple(h.get("args") or ()),
                env=tuple(h.get("env") or ()),
                timeout=h.get("timeout"),
            )
            for h in raw.get("hooks") or ()
        ),
        additional_gids=tuple(int(g) for g in raw.get("additionalGids") or ()),
    )


# nvsim's device that mounts its state read-write (docs/nvsim.md: GPU containers).
NVSIM_STATE_RW = "nvsim-state-rw"


def with_grants(names: list[str], registry: dict[str, CdiSpec], *, privileged: bool) -> list[str]:
    """``names`` plus what a privileged GPU container is owed: on nvsim, the state's
    read-write grant.  A privileged container with a real driver's nodes can already make
    every driver call as root, so its NVML setters work there; the grant makes nvsim agree.
    Unprivileged GPU containers keep the read-only state."""
    rw = f"nvidia.com/gpu={NVSIM_STATE_RW}"
    gpu_spec = registry.get("nvidia.com/gpu")
    wants_gpu = any(n.startswith("nvidia.com/gpu=") for n in names)
    if (
        privileged
        and wants_gpu
        and rw not in names
        and gpu_spec
        and NVSIM_STATE_RW in gpu_spec.devices
    ):
        return [*names, rw]
    return names


def edits_for(names: list[str], registry: dict[str, CdiSpec]) -> list[Edits]:
    """The edits of each requested device, each spec's global edits once, in request order."""
    out: list[Edits] = []
    used_kinds: list[str] = []
    for qualified in names:
        kind, name = split_name(qualified)
        spec = registry.get(kind)
        if spec is None or name not in spec.devices:
            hint = (
                "generate the GPU spec with 'bolt gpu cdi generate'"
                if kind == "nvidia.com/gpu"
                else None
            )
            raise NotFound(f"unresolvable CDI device {qualified}", hint=hint)
        if kind not in used_kinds and spec.edits:
            used_kinds.append(kind)
            out.append(resolve_edits(spec.edits))
        out.append(resolve_edits(spec.devices[name]))
    return out


def _set_env(env: list[str], item: str) -> None:
    key = item.partition("=")[0]
    env[:] = [e for e in env if e.partition("=")[0] != key]
    env.append(item)


def apply(spec: ContainerSpec, edits: list[Edits]) -> ContainerSpec:
    """Merge CDI edits into ``spec``: env overrides by key, device nodes and mounts replace
    ones at the same container path, hooks are appended."""
    env = list(spec.env)
    devices = {d.path: d for d in spec.devices}
    mounts = {m.destination: m for m in spec.mounts}
    hooks = list(spec.hooks)
    gids = list(spec.additional_gids)
    for e in edits:
        for item in e.env:
            _set_env(env, item)
        for d in e.devices:
            devices[d.path] = d
        for m in e.mounts:
            mounts[m.destination] = m
        hooks += e.hooks
        gids += [g for g in e.additional_gids if g not in gids]
    return spec._replace(
        env=tuple(env),
        devices=tuple(devices.values()),
        mounts=tuple(mounts.values()),
        hooks=tuple(hooks),
        additional_gids=tuple(gids),
    )
