"""From a ``ContainerIntent`` (``bolt run`` flags, a Boltfile service, a library call) to a
``ContainerSpec``.

This is the only place that looks at the host to fill in a spec: device numbers, bind
sources, named volumes, users in the image's /etc/passwd, CDI specs.  Parsers raise
``InvalidInput`` naming the flag and value that were wrong.
"""

# No ``from __future__ import annotations`` here: typing.NamedTuple compiles every string
# annotation when the class is made, which ``bolt run`` would pay at each start.

import os
import re
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bolt import volumes
from bolt.errors import InvalidInput, NotFound
from bolt.runtime.defaults import DEFAULT_PATH, SECCOMP_ARCHES
from bolt.runtime.intent import ContainerIntent, MountIntent
from bolt.runtime.spec import ContainerSpec, Device, Mount, Network, Resources, normalize_cap


def network_of(intent: ContainerIntent) -> Network:
    """The network namespace of the modes that need no engine state (bridge and
    container:NAME are resolved by the engine into a namespace path)."""
    mode = intent.network_mode
    if mode in ("private", "none", "host"):
        return Network(kind=mode)  # type: ignore[arg-type]
    if mode.startswith("ns:"):
        path = mode.removeprefix("ns:")
        if not os.path.exists(path):
            raise NotFound(f"--network: namespace {path} does not exist")
        return Network(kind="netns", path=path)
    raise InvalidInput(f"network: {mode!r} needs the engine to resolve it")


def resolve_mount(m: MountIntent, root: Path, field: str) -> Mount:
    """A mount intent -> a spec mount (bind sources checked, volumes made)."""
    if m.kind == "tmpfs":
        return Mount(
            destination=m.destination,
            source="tmpfs",
            kind="tmpfs",
            readonly=m.readonly,
            options=tuple(m.options),
        )
    if m.kind == "bind":
        if not os.path.exists(m.source):
            raise NotFound(f"{field}: bind source {m.source} does not exist")
        host = os.path.realpath(m.source)
    else:
        host = str(volumes.ensure(root, m.source))
    return Mount(destination=m.destination, source=host, readonly=m.readonly)


def anonymous_volumes(intent: ContainerIntent) -> ContainerIntent:
    """The intent with a fresh volume name for each anonymous mount (the names are
    recorded, so the container's removal removes them)."""
    mounts = [
        m._replace(source=os.urandom(16).hex()) if m.kind == "anonymous" and not m.source else m
        for m in intent.mounts
    ]
    return intent._replace(mounts=tuple(mounts))


def parse_device(text: str) -> Device:
    parts = text.split(":")
    host = parts[0]
    container, access = host, "rwm"
    if len(parts) == 2:
        if parts[1].startswith("/"):
            container = parts[1]
        else:
            access = parts[1]
    elif len(parts) == 3:
        container, access = parts[1] or host, parts[2]
    elif len(parts) > 3:
        raise InvalidInput(f"--device: {text!r} is not HOST[:CONTAINER][:rwm]")
    if not access or set(access) - set("rwm"):
        raise InvalidInput(f"--device: permissions {access!r} must combine r, w and m")
    try:
        st = os.stat(host)
    except OSError as exc:
        raise NotFound(f"--device: {host}: {exc.strerror}") from None
    if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise InvalidInput(f"--device: {host} is not a device node")
    return Device(
        path=container,
        type="c" if stat.S_ISCHR(st.st_mode) else "b",
        major=os.major(st.st_rdev),
        minor=os.minor(st.st_rdev),
        access=access,
        file_mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
    )


def gpu_device_names(gpus: str) -> list[str]:
    """``all`` | ``0,1`` | ``GPU-uuid[,..]`` (optionally ``device=`` prefixed) -> CDI names."""
    value = gpus.strip().strip('"').removeprefix("device=")
    if not value:
        raise InvalidInput("--gpus: empty value", hint="use all, 0,1 or a GPU UUID")
    items = [v.strip() for v in value.split(",") if v.strip()]
    return [f"nvidia.com/gpu={v}" for v in items]


def host_devices() -> list[Device]:
    """Every char/block node under the host's /dev (for --privileged), as Docker gives."""
    out: list[Device] = []
    skip = ("/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/console")
    for dirpath, dirnames, filenames in os.walk("/dev"):
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in skip]
        for fname in filenames:
            path = os.path.join(dirpath, fname)
            if path in skip or path == "/dev/ptmx":
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                out.append(
                    Device(
                        path=path,
                        type="c" if stat.S_ISCHR(st.st_mode) else "b",
                        major=os.major(st.st_rdev),
                        minor=os.minor(st.st_rdev),
                        file_mode=stat.S_IMODE(st.st_mode),
                        uid=st.st_uid,
                        gid=st.st_gid,
                    )
                )
    return out


def bounding_caps() -> tuple[str, ...]:
    """Capabilities in this process's bounding set: more cannot be granted."""
    from bolt.runtime.defaults import ALL_CAPS

    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapBnd:"):
                mask = int(line.split()[1], 16)
                return tuple(c for i, c in enumerate(ALL_CAPS) if mask & (1 << i))
    except OSError:
        pass
    return ALL_CAPS


def merge_env(base: Sequence[str], extra: Sequence[str], host: Mapping[str, str]) -> list[str]:
    """Later entries override earlier ones by key; ``KEY`` alone copies the host's value."""
    merged: dict[str, str] = {}
    for item in [*base, *extra]:
        key, sep, value = item.partition("=")
        if not sep:
            if key in host:
                merged[key] = host[key]
            continue
        merged[key] = value
    return [f"{k}={v}" for k, v in merged.items()]


def _lookup(
    layers_highest_first: list[Path], rel: str, name: str, field_index: int
) -> list[str] | None:
    for layer in layers_highest_first:
        path = layer / rel
        if path.is_file():
            for line in path.read_text(errors="replace").splitlines():
                parts = line.split(":")
                if len(parts) > field_index and parts[0] == name:
                    return parts
            return None
    return None


def resolve_user(user: str, layers_lowest_first: list[Path]) -> tuple[int, int]:
    """``uid``, ``name``, ``uid:gid`` or ``name:group`` -> numeric ids via the image's files."""
    layers = list(reversed(layers_lowest_first))
    name, _, group = user.partition(":")
    gid = 0
    if name.isdigit():
        uid = int(name)
        entry = _lookup(layers, "etc/passwd", name, 3)
    else:
        entry = _lookup(layers, "etc/passwd", name, 3)
        if entry is None:
            raise NotFound(f"--user: no user {name!r} in the image's /etc/passwd")
        uid = int(entry[2])
    if entry is not None:
        gid = int(entry[3])
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            gentry = _lookup(layers, "etc/group", group, 2)
            if gentry is None:
                raise NotFound(f"--user: no group {group!r} in the image's /etc/group")
            gid = int(gentry[2])
    return uid, gid


def command_of(req: ContainerIntent, config: Mapping[str, Any]) -> list[str]:
    """Docker's rule: entrypoint + command; a given --entrypoint drops the image's Cmd."""
    entrypoint = (
        list(req.entrypoint) if req.entrypoint is not None else list(config.get("Entrypoint") or [])
    )
    if req.command:
        cmd = list(req.command)
    elif req.entrypoint is not None:
        cmd = []
    else:
        cmd = list(config.get("Cmd") or [])
    return [*entrypoint, *cmd]


def hostname_for(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9.-]", "-", name)[:63].strip("-.") or "bolt"


def build_spec(
    req: ContainerIntent,
    *,
    cid: str,
    name: str,
    root: Path,
    rootfs: Path,
    image_config: Mapping[str, Any],
    layers_lowest_first: list[Path],
    extra_mounts: Sequence[Mount] = (),
    network: Network | None = None,
    mount_fields: Sequence[str] = (),
) -> ContainerSpec:
    """Everything but CDI (see ``bolt.runtime.cdi.apply``) resolved into a spec.

    ``network`` is the resolved namespace (default: from ``network_mode``);
    ``mount_fields`` name each mount for errors (``-v``, ``--tmpfs``)."""
    network = network or network_of(req)
    hostname = req.hostname or (
        os.uname().nodename if network.kind == "host" else hostname_for(name)
    )
    env_base = list(image_config.get("Env") or [])
    if not any(e.startswith("PATH=") for e in env_base):
        env_base.insert(0, f"PATH={DEFAULT_PATH}")
    env_base.append(f"HOSTNAME={hostname}")
    if req.tty:
        env_base.append("TERM=xterm")
    env = merge_env(
        env_base, [*(f"{k}={v}" for k, v in req.env.items()), *req.env_host], os.environ
    )
    user = req.user or str(image_config.get("User") or "")
    uid, gid = resolve_user(user, layers_lowest_first) if user else (0, 0)
    mounts = [*extra_mounts]
    for i, m in enumerate(req.mounts):
        field = mount_fields[i] if i < len(mount_fields) else f"mounts[{i}]"
        mounts.append(resolve_mount(m, root, field))
    devices = [parse_device(d) for d in req.devices if "=" not in d]
    if req.privileged:
        known = {d.path for d in devices}
        devices += [d for d in host_devices() if d.path not in known]
    resources = Resources(memory=req.memory, cpus=req.cpus, pids=req.pids_limit)
    annotations = {"org.bolt.name": name, "org.bolt.image": req.image, **req.labels}
    return ContainerSpec(
        id=cid,
        name=name,
        rootfs=str(rootfs),
        args=tuple(command_of(req, image_config)),
        env=tuple(env),
        cwd=req.workdir or str(image_config.get("WorkingDir") or "/"),
        uid=uid,
        gid=gid,
        hostname=hostname,
        terminal=req.tty,
        readonly_rootfs=req.read_only,
        network=network,
        mounts=tuple(mounts),
        devices=tuple(devices),
        resources=resources,
        privileged=req.privileged,
        cap_add=tuple(normalize_cap(c) for c in req.cap_add),
        cap_drop=tuple(normalize_cap(c) for c in req.cap_drop),
        annotations=tuple(sorted(annotations.items())),
        cgroups_path=f"/bolt/{cid}",
        available_caps=bounding_caps(),
        seccomp_arches=SECCOMP_ARCHES.get(os.uname().machine, ()),
    )


def cdi_names(req: ContainerIntent) -> list[str]:
    names = [d for d in req.devices if "=" in d]
    if req.gpus:
        names += gpu_device_names(req.gpus)
    return names
