"""``ContainerSpec``: the validated, fully resolved description of one container.

A spec holds only values (numbers, paths, strings): every lookup on the host (device
numbers, image config, volume paths, CDI files) happened before it was built.  That keeps
``bolt.runtime.ocispec.generate`` a pure function and lets tests build specs by hand.
``validate`` raises ``InvalidInput`` naming the offending field and value.
"""

# No ``from __future__ import annotations`` here: typing.NamedTuple compiles every string
# annotation when the class is made, which ``bolt run`` would pay at each start.

import re
from pathlib import PurePosixPath
from typing import Literal, NamedTuple

from bolt.errors import InvalidInput
from bolt.runtime.defaults import ALL_CAPS

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
ENV_KEY_RE = re.compile(r"^[^=\x00]+$")
HOSTNAME_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$")

NetworkKind = Literal["private", "none", "host", "netns"]
HOOK_STAGES = (
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
)


class Mount(NamedTuple):
    """A mount in the container: ``kind`` is bind or tmpfs (named volumes are binds)."""

    destination: str
    source: str
    kind: Literal["bind", "tmpfs"] = "bind"
    readonly: bool = False
    options: tuple[str, ...] = ()


class Device(NamedTuple):
    """A device node created in the container and allowed in its device cgroup."""

    path: str  # in the container
    type: Literal["c", "b"]
    major: int
    minor: int
    access: str = "rwm"
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None


class Hook(NamedTuple):
    """An OCI hook (from CDI edits)."""

    stage: str
    path: str
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    timeout: int | None = None


class Resources(NamedTuple):
    memory: int | None = None  # bytes
    cpus: float | None = None  # CPUs worth of quota
    pids: int | None = None


class Network(NamedTuple):
    """``private``: own netns with loopback (the default); ``none``: the same, explicitly;
    ``host``: the host's; ``netns``: join the prepared namespace at ``path``."""

    kind: NetworkKind = "private"
    path: str | None = None


class ContainerSpec(NamedTuple):
    id: str
    name: str
    rootfs: str
    args: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    hostname: str = ""
    terminal: bool = False
    readonly_rootfs: bool = False
    network: Network = Network()
    mounts: tuple[Mount, ...] = ()
    devices: tuple[Device, ...] = ()
    hooks: tuple[Hook, ...] = ()
    resources: Resources = Resources()
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    cgroups_path: str = ""
    # Capabilities the runtime may grant (the caller's bounding set); "all" means these.
    available_caps: tuple[str, ...] = ALL_CAPS
    # Seccomp architectures of the host (empty: no filter); privileged never gets one.
    seccomp_arches: tuple[str, ...] = ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")


def normalize_cap(name: str) -> str:
    """``sys_admin`` / ``SYS_ADMIN`` / ``CAP_SYS_ADMIN`` -> ``CAP_SYS_ADMIN``; ``ALL`` stays."""
    upper = name.strip().upper()
    if upper == "ALL":
        return upper
    return upper if upper.startswith("CAP_") else "CAP_" + upper


def _fail(key: str, value: object, why: str, hint: str | None = None) -> InvalidInput:
    return InvalidInput(f"{key}: {value!r} {why}", hint=hint)


def _absolute(key: str, path: str) -> None:
    if not path.startswith("/"):
        raise _fail(key, path, "is not an absolute path")
    if ".." in PurePosixPath(path).parts:
        raise _fail(key, path, "must not contain '..'")


def validate(spec: ContainerSpec) -> ContainerSpec:
    """Check every field; return the spec unchanged or raise ``InvalidInput``."""
    if not NAME_RE.match(spec.name):
        raise _fail(
            "name", spec.name, "is not a valid container name", "use [a-zA-Z0-9][a-zA-Z0-9_.-]*"
        )
    if not re.fullmatch(r"[a-f0-9]{12,64}", spec.id):
        raise _fail("id", spec.id, "is not a hex container id")
    if not spec.args or not spec.args[0]:
        raise InvalidInput("no command: the image has no Cmd/Entrypoint and none was given")
    _absolute("rootfs", spec.rootfs)
    _absolute("workdir", spec.cwd)
    for item in spec.env:
        key, sep, _ = item.partition("=")
        if not sep or not key or not ENV_KEY_RE.match(key):
            raise _fail("env", item, "is not KEY=VALUE")
    if spec.hostname and not HOSTNAME_RE.match(spec.hostname):
        raise _fail("hostname", spec.hostname, "is not a valid hostname")
    if spec.network.kind == "netns":
        if not spec.network.path:
            raise InvalidInput("network: a netns network needs the namespace path")
        _absolute("network", spec.network.path)
    elif spec.network.kind not in ("private", "none", "host"):
        raise _fail("network", spec.network.kind, "is not one of none, host, private, ns:PATH")
    seen: set[str] = set()
    for m in spec.mounts:
        _absolute("volume destination", m.destination)
        if m.kind == "bind":
            _absolute("volume source", m.source)
        if m.destination in seen:
            raise _fail("volume destination", m.destination, "is mounted twice")
        seen.add(m.destination)
    for d in spec.devices:
        _absolute("device", d.path)
        if not d.access or set(d.access) - set("rwm"):
            raise _fail("device access", d.access, "must be a combination of r, w and m")
        if d.major < 0 or d.minor < 0:
            raise _fail("device", d.path, "has a negative major/minor number")
    for h in spec.hooks:
        if h.stage not in HOOK_STAGES:
            raise _fail("hook stage", h.stage, f"is not one of {', '.join(HOOK_STAGES)}")
        _absolute("hook path", h.path)
    r = spec.resources
    if r.memory is not None and r.memory < 4 * 1024 * 1024:
        raise _fail("memory", r.memory, "is below the minimum of 4 MiB")
    if r.cpus is not None and r.cpus <= 0:
        raise _fail("cpus", r.cpus, "must be greater than 0")
    if r.pids is not None and r.pids < 1:
        raise _fail("pids-limit", r.pids, "must be at least 1")
    for cap in (*spec.cap_add, *spec.cap_drop):
        if cap != "ALL" and cap not in ALL_CAPS:
            raise _fail("capability", cap, "is not a Linux capability", "see capabilities(7)")
    if spec.uid < 0 or spec.gid < 0:
        raise _fail("user", f"{spec.uid}:{spec.gid}", "must be non-negative ids")
    return spec


def effective_caps(spec: ContainerSpec) -> list[str]:
    """Docker's rule: start from the default set (or all when privileged), add, then drop."""
    from bolt.runtime.defaults import DEFAULT_CAPS

    caps = list(spec.available_caps if spec.privileged else DEFAULT_CAPS)
    if "ALL" in spec.cap_add:
        caps = list(spec.available_caps)
    else:
        caps += [c for c in spec.cap_add if c not in caps]
    if "ALL" in spec.cap_drop:
        caps = [c for c in caps if c in spec.cap_add]
    else:
        caps = [c for c in caps if c not in spec.cap_drop]
    return [c for c in caps if c in spec.available_caps]
