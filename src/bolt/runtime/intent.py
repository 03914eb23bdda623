"""``ContainerIntent``: what a caller wants of one container, typed and validated.

``bolt run`` flags (``bolt.runtime.flags``) and Boltfile keys both produce it; the engine
stores it with each container, and ``spec_hash`` lets a planner compare desired with
observed.  Nothing here looks at the host: ``bolt.runtime.request.build_spec`` resolves
an intent (volume paths, device numbers, users) into a ``ContainerSpec``.

``validate`` raises ``IntentError`` whose ``field`` is the dotted path of the value that
was wrong (``ports[1].host_port``), so a front end can name its own flag or key.

NamedTuples, not dataclasses: ``bolt run`` builds one at every container start, and
importing ``dataclasses`` (with ``inspect``) costs it ~20 ms.  Use ``replace(**changes)``
where a dataclass would use ``dataclasses.replace``.
"""

# No ``from __future__ import annotations`` here: typing.NamedTuple compiles every string
# annotation when the class is made, which ``bolt run`` would pay at each start.

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from bolt.errors import InvalidInput

MOUNT_KINDS = ("bind", "volume", "anonymous", "tmpfs")
NETWORK_MODES = ("private", "none", "host", "bridge")  # and container:NAME, ns:PATH
RESTART_NAMES = ("no", "on-failure", "always", "unless-stopped")
PROTOCOLS = ("tcp", "udp")
MAX_MEMORY = 1 << 50  # 1 PiB: anything above is a typo, not a limit
MAX_CPUS = 4096.0
MAX_SECONDS = 365 * 24 * 3600.0
NETWORK_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
ALIAS_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$")
TMPFS_OPTION_RE = re.compile(
    r"^(ro|rw|nosuid|suid|nodev|dev|noexec|exec|sync|async|noatime|atime|relatime|"
    r"strictatime|nodiratime|size=\d+[kmgKMG%]?|nr_inodes=\d+[kmgKMG]?|"
    r"mode=[0-7]{3,4}|uid=\d+|gid=\d+)$"
)


class IntentError(InvalidInput):
    """A value of an intent is wrong; ``field`` is its dotted path."""

    def __init__(self, field: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"{field}: {message}", hint=hint)
        self.field = field
        self.detail = message


class MountIntent(NamedTuple):
    """``bind`` (host path), ``volume`` (named), ``anonymous`` (a fresh volume for this
    container, removed with it), ``tmpfs`` (``options``: size=, mode=, ...)."""

    kind: str
    destination: str
    source: str = ""
    readonly: bool = False
    options: tuple[str, ...] = ()


class PortMapping(NamedTuple):
    host_ip: str
    host_port: int
    container_port: int
    protocol: str = "tcp"


class NetworkAttachment(NamedTuple):
    name: str
    aliases: tuple[str, ...] = ()
    ip: str | None = None


class RestartPolicy(NamedTuple):
    name: str = "no"
    max_retries: int | None = None  # on-failure only; None: no limit


class HealthCheck(NamedTuple):
    """``test`` as in an image config: ``["CMD", ...]``, ``["CMD-SHELL", "..."]`` or
    ``["NONE"]`` (disabled: ``--no-healthcheck``)."""

    test: tuple[str, ...]
    interval: float = 30.0
    timeout: float = 30.0
    retries: int = 3
    start_period: float = 0.0

    @property
    def disabled(self) -> bool:
        return not self.test or self.test[0] == "NONE"


class ContainerIntent(NamedTuple):
    image: str
    command: Sequence[str] | None = None
    entrypoint: Sequence[str] | None = None
    env: Mapping[str, str] = {}
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None
    mounts: Sequence[MountIntent] = ()
    devices: Sequence[str] = ()  # HOST[:CONTAINER][:rwm] or a CDI name
    gpus: str | None = None
    privileged: bool = False
    cap_add: Sequence[str] = ()
    cap_drop: Sequence[str] = ()
    read_only: bool = False
    memory: int | None = None
    cpus: float | None = None
    pids_limit: int | None = None
    network_mode: str = "private"
    networks: Sequence[NetworkAttachment] = ()
    ports: Sequence[PortMapping] = ()
    extra_hosts: Sequence[tuple[str, str]] = ()
    dns: Sequence[str] = ()
    restart: RestartPolicy = RestartPolicy()
    healthcheck: HealthCheck | None = None
    stop_signal: str | None = None
    stop_timeout: float | None = None
    labels: Mapping[str, str] = {}
    tty: bool = False
    interactive: bool = False
    auto_remove: bool = False
    runtime: str = "auto"
    env_host: Sequence[str] = ()  # keys copied from the caller's environment (``-e KEY``)

    def replace(self, **changes: Any) -> "ContainerIntent":
        return self._replace(**changes)

    def validate(self) -> "ContainerIntent":
        return validate(self)

    def spec_hash(self) -> str:
        return spec_hash(self)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @property
    def command_list(self) -> list[str] | None:
        return None if self.command is None else list(self.command)


def _finite(
    field: str, value: float, high: float, unit: str = "", *, zero_ok: bool = False
) -> None:
    """A finite number in (0, high], or [0, high] with ``zero_ok``."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise IntentError(field, f"{value!r} is not a finite number")
    if value < 0 or (value == 0 and not zero_ok) or value > high:
        low = "0" if zero_ok else "more than 0"
        raise IntentError(field, f"{value!r}{unit} is out of range ({low} .. {high:g}{unit})")


def _absolute(field: str, path: str, *, allow_root: bool = True) -> None:
    if not path or not path.startswith("/"):
        raise IntentError(field, f"{path!r} is not an absolute path")
    if ".." in path.split("/"):
        raise IntentError(field, f"{path!r} must not contain '..'")
    if not allow_root and path.rstrip("/") == "":
        raise IntentError(field, "'/' cannot be a mount destination", hint="mount below /")
    if "\x00" in path:
        raise IntentError(field, f"{path!r} contains a NUL byte")


def _ip(field: str, text: str) -> None:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise IntentError(field, f"{text!r} is not an IP address") from None


def _validate_mount(i: int, m: MountIntent, seen: set[str]) -> None:
    field = f"mounts[{i}]"
    if m.kind not in MOUNT_KINDS:
        raise IntentError(f"{field}.kind", f"{m.kind!r} is not one of {', '.join(MOUNT_KINDS)}")
    _absolute(f"{field}.destination", m.destination, allow_root=False)
    if m.destination.rstrip("/") in seen:
        raise IntentError(f"{field}.destination", f"{m.destination!r} is mounted twice")
    seen.add(m.destination.rstrip("/"))
    if m.kind == "bind":
        _absolute(f"{field}.source", m.source)
    elif m.kind == "volume":
        from bolt.volumes import VOLUME_NAME_RE

        if not VOLUME_NAME_RE.match(m.source):
            raise IntentError(f"{field}.source", f"volume name {m.source!r} is invalid")
    elif m.kind == "tmpfs":
        for opt in m.options:
            if not TMPFS_OPTION_RE.match(opt):
                raise IntentError(
                    f"{field}.options",
                    f"{opt!r} is not a tmpfs option",
                    hint="use size=64m, mode=1777, uid=, gid=, noexec, nosuid, nodev",
                )
    if m.kind != "tmpfs" and m.options:
        raise IntentError(f"{field}.options", "only tmpfs mounts take options")


def validate(intent: ContainerIntent) -> ContainerIntent:
    """Check every field; return the intent or raise ``IntentError``."""
    from bolt.runtime.spec import HOSTNAME_RE

    if not isinstance(intent.image, str) or not intent.image.strip():
        raise IntentError("image", "is empty")
    for key in ("command", "entrypoint"):
        value = getattr(intent, key)
        if value is not None and not all(isinstance(a, str) and "\x00" not in a for a in value):
            raise IntentError(key, "must be a list of strings without NUL bytes")
    for k, v in intent.env.items():
        if not k or "=" in k or "\x00" in k or "\x00" in str(v):
            raise IntentError(f"env.{k}", "is not a valid variable name/value")
    if intent.workdir is not None:
        _absolute("workdir", intent.workdir)
    if intent.user is not None and not intent.user.strip():
        raise IntentError("user", "is empty")
    if intent.hostname is not None and not HOSTNAME_RE.match(intent.hostname):
        raise IntentError("hostname", f"{intent.hostname!r} is not a valid hostname")
    seen: set[str] = set()
    for i, m in enumerate(intent.mounts):
        _validate_mount(i, m, seen)
    if intent.memory is not None:
        if isinstance(intent.memory, bool) or not isinstance(intent.memory, int):
            raise IntentError("memory", f"{intent.memory!r} is not a number of bytes")
        if not 4 << 20 <= intent.memory <= MAX_MEMORY:
            raise IntentError("memory", f"{intent.memory} bytes is out of range (4 MiB..1 PiB)")
    if intent.cpus is not None:
        _finite("cpus", intent.cpus, MAX_CPUS)
    if intent.pids_limit is not None and not 1 <= intent.pids_limit <= 1 << 22:
        raise IntentError("pids_limit", f"{intent.pids_limit} is out of range (1..4194304)")
    _validate_network(intent)
    r = intent.restart
    if r.name not in RESTART_NAMES:
        raise IntentError("restart.name", f"{r.name!r} is not one of {', '.join(RESTART_NAMES)}")
    if r.max_retries is not None and (r.name != "on-failure" or not 0 <= r.max_retries <= 1 << 20):
        raise IntentError("restart.max_retries", "is a count (>= 0) for on-failure only")
    if r.name != "no" and intent.auto_remove:
        raise IntentError("restart", f"{r.name!r} cannot be combined with auto_remove (--rm)")
    h = intent.healthcheck
    if h is not None:
        if h.test and h.test[0] not in ("CMD", "CMD-SHELL", "NONE"):
            raise IntentError("healthcheck.test", "must start with CMD, CMD-SHELL or NONE")
        if not h.disabled and len(h.test) < 2:
            raise IntentError("healthcheck.test", "has no command")
        for key in ("interval", "timeout"):
            _finite(f"healthcheck.{key}", getattr(h, key), MAX_SECONDS, "s")
        _finite("healthcheck.start_period", h.start_period, MAX_SECONDS, "s", zero_ok=True)
        if isinstance(h.retries, bool) or not isinstance(h.retries, int) or h.retries < 1:
            raise IntentError("healthcheck.retries", f"{h.retries!r} must be at least 1")
    if intent.stop_signal is not None:
        from bolt.runtime.flags import signal_number

        signal_number(intent.stop_signal, "stop_signal")
    if intent.stop_timeout is not None:
        _finite("stop_timeout", intent.stop_timeout, MAX_SECONDS, "s", zero_ok=True)
    for k in intent.labels:
        if not k:
            raise IntentError("labels", "a label has an empty key")
    if intent.runtime not in ("auto", "crun", "runc"):
        raise IntentError("runtime", f"{intent.runtime!r} is not one of auto, crun, runc")
    return intent


def _validate_network(intent: ContainerIntent) -> None:
    mode = intent.network_mode
    if mode.startswith("container:"):
        if not mode.removeprefix("container:"):
            raise IntentError("network_mode", "container: needs a container name")
    elif mode.startswith("ns:"):
        _absolute("network_mode", mode.removeprefix("ns:"))
    elif mode not in NETWORK_MODES:
        raise IntentError(
            "network_mode",
            f"{mode!r} is not one of private, none, host, bridge, container:NAME, ns:PATH",
        )
    if intent.networks and mode != "bridge":
        raise IntentError("networks", f"user networks need network_mode bridge, not {mode!r}")
    names = set()
    for i, n in enumerate(intent.networks):
        if not NETWORK_NAME_RE.match(n.name):
            raise IntentError(f"networks[{i}].name", f"{n.name!r} is not a network name")
        if n.name in names:
            raise IntentError(f"networks[{i}].name", f"{n.name!r} is given twice")
        names.add(n.name)
        for alias in n.aliases:
            if not ALIAS_RE.match(alias):
                raise IntentError(f"networks[{i}].aliases", f"{alias!r} is not a DNS name")
        if n.ip is not None:
            _ip(f"networks[{i}].ip", n.ip)
    if intent.ports and mode not in ("bridge",):
        raise IntentError("ports", "publishing ports needs a bridge network (--network NAME)")
    for i, p in enumerate(intent.ports):
        if p.host_ip:
            _ip(f"ports[{i}].host_ip", p.host_ip)
        for key in ("host_port", "container_port"):
            value = getattr(p, key)
            low = 0 if key == "host_port" else 1
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 65535:
                raise IntentError(f"ports[{i}].{key}", f"{value!r} is not a port ({low}..65535)")
        if p.protocol not in PROTOCOLS:
            raise IntentError(f"ports[{i}].protocol", f"{p.protocol!r} is not tcp or udp")
    for i, (host, ip) in enumerate(intent.extra_hosts):
        if not ALIAS_RE.match(host):
            raise IntentError(f"extra_hosts[{i}]", f"{host!r} is not a host name")
        _ip(f"extra_hosts[{i}]", ip)
    for i, server in enumerate(intent.dns):
        _ip(f"dns[{i}]", server)


def to_dict(intent: ContainerIntent) -> dict[str, Any]:
    """A JSON-able form (stored with the container; ``from_dict`` reads it back)."""
    out: dict[str, Any] = {}
    value: Any
    for key, value in zip(intent._fields, intent, strict=True):
        if key == "mounts":
            value = [m._asdict() for m in value]
        elif key == "networks":
            value = [n._asdict() for n in value]
        elif key == "ports":
            value = [p._asdict() for p in value]
        elif key in ("restart", "healthcheck") and value is not None:
            value = value._asdict()
        elif isinstance(value, Mapping):
            value = dict(value)
        elif isinstance(value, (tuple, list)):
            value = [list(v) if isinstance(v, tuple) else v for v in value]
        out[key] = value
    return out


def from_dict(data: Mapping[str, Any]) -> ContainerIntent:
    known = {k: v for k, v in data.items() if k in ContainerIntent._fields}
    if "mounts" in known:
        known["mounts"] = tuple(
            MountIntent(**{**m, "options": tuple(m.get("options", ()))}) for m in known["mounts"]
        )
    if "networks" in known:
        known["networks"] = tuple(
            NetworkAttachment(**{**n, "aliases": tuple(n.get("aliases", ()))})
            for n in known["networks"]
        )
    if "ports" in known:
        known["ports"] = tuple(PortMapping(**p) for p in known["ports"])
    if known.get("restart") is not None:
        known["restart"] = RestartPolicy(**known["restart"])
    if known.get("healthcheck") is not None:
        h = known["healthcheck"]
        known["healthcheck"] = HealthCheck(**{**h, "test": tuple(h["test"])})
    if "extra_hosts" in known:
        known["extra_hosts"] = tuple(tuple(x) for x in known["extra_hosts"])
    for key in ("devices", "cap_add", "cap_drop", "dns", "env_host"):
        if key in known:
            known[key] = tuple(known[key])
    return ContainerIntent(**known)


# Fields that do not change what runs: a planner must not recreate a container for them.
_UNHASHED = ("labels", "tty", "interactive")


def spec_hash(intent: ContainerIntent) -> str:
    """A stable hash of everything that matters to the container (labels excluded, so a
    caller may store the hash itself in a label)."""
    import json

    try:  # CPython's own module: hashlib would load OpenSSL (~10 ms) on bolt run's path
        from _sha256 import sha256  # type: ignore[import-not-found]
    except ImportError:
        from hashlib import sha256

    data = {k: v for k, v in to_dict(intent).items() if k not in _UNHASHED}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return str(sha256(text.encode()).hexdigest())
