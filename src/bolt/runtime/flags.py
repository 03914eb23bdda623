"""Text forms of intent values, as ``bolt run`` flags (and Boltfile strings) write them.

One parser per form: sizes (``512m``), durations (``1m30s``), signals (``TERM``, ``9``),
volumes (``SRC:DST[:ro]``), tmpfs (``DST[:OPTS]``), ports (``[IP:]HOST:CTR[/udp]``),
restart policies (``on-failure:3``), extra hosts (``NAME:IP``), env files.  Each takes
``field``, the name the caller knows the value by (``--memory`` or
``services.web.memory``), and raises ``IntentError`` naming it.  Nothing here touches the
host but ``read_env_file``.
"""

# No ``from __future__ import annotations`` (see bolt.runtime.intent).

import re

from bolt.runtime.intent import (
    MAX_MEMORY,
    HealthCheck,
    IntentError,
    MountIntent,
    PortMapping,
    RestartPolicy,
)

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_SIZE_RE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([bkmgtp]?)(?:i?b)?\s*", re.ASCII)
_DURATION_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|us|µs|ns|h|m|s)", re.ASCII)
SIGRTMAX = 64


def parse_size(text: str, field: str) -> int:
    m = _SIZE_RE.fullmatch(text.lower())
    if not m:
        raise IntentError(field, f"{text!r} is not a size", hint="use e.g. 512m or 2g")
    value = float(m.group(1)) * _UNITS[m.group(2)]
    if value > MAX_MEMORY:
        raise IntentError(field, f"{text!r} is more than 1 PiB")
    return int(value)


def parse_duration(text: str, field: str) -> float:
    """``30``, ``30s``, ``1m30s``, ``500ms`` -> seconds."""
    text = text.strip()
    if re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", text, re.ASCII):
        return float(text)
    pos, total = 0, 0.0
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    for m in _DURATION_RE.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * scale[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise IntentError(field, f"{text!r} is not a duration", hint="use e.g. 30s, 1m30s, 500ms")
    return total


def signal_number(sig: "str | int", field: str = "signal") -> int:
    """``TERM`` / ``SIGTERM`` / ``15`` -> 15; out-of-range numbers and unknown names fail."""
    import signal

    text = str(sig).strip()
    if text.isdigit() and text.isascii():
        number = int(text)
        if not 1 <= number <= SIGRTMAX:
            raise IntentError(field, f"{text} is not a signal number (1..{SIGRTMAX})")
        return number
    name = text.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise IntentError(
            field, f"{sig!r} is not a signal", hint="use a name like TERM or a number"
        ) from None


def parse_volume(text: str, field: str = "-v") -> MountIntent:
    """``/host:/ctr[:ro]`` (bind), ``name:/ctr`` (named volume), ``/ctr`` (anonymous)."""
    parts = text.split(":")
    if len(parts) == 1:
        source, dest, opts = "", parts[0], ""
    elif len(parts) in (2, 3):
        source, dest, opts = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
        if not source:
            raise IntentError(field, f"{text!r} has an empty source", hint="SRC:DST[:ro]")
    else:
        raise IntentError(field, f"{text!r} is not SRC:DST[:ro]")
    options = [o for o in opts.split(",") if o]
    unknown = set(options) - {"ro", "rw", "z", "Z"}
    if unknown:
        raise IntentError(
            field, f"{text!r} has unknown options {', '.join(sorted(unknown))}", hint="use ro or rw"
        )
    if not dest.startswith("/"):
        raise IntentError(field, f"destination {dest!r} is not an absolute path")
    if dest.rstrip("/") == "":
        raise IntentError(field, f"{text!r}: '/' cannot be a mount destination")
    kind = "anonymous" if not source else "bind" if source.startswith("/") else "volume"
    return MountIntent(kind=kind, destination=dest, source=source, readonly="ro" in options)


def parse_tmpfs(text: str, field: str = "--tmpfs") -> MountIntent:
    from bolt.runtime.intent import TMPFS_OPTION_RE

    dest, _, opts = text.partition(":")
    if not dest.startswith("/") or dest.rstrip("/") == "":
        raise IntentError(field, f"{dest!r} is not an absolute path below /")
    options = tuple(o for o in opts.split(",") if o)
    for opt in options:
        if not TMPFS_OPTION_RE.match(opt):
            raise IntentError(
                field,
                f"{opt!r} is not a tmpfs option",
                hint="use size=64m, mode=1777, uid=, gid=, noexec, nosuid, nodev",
            )
    return MountIntent(
        kind="tmpfs",
        destination=dest,
        source="tmpfs",
        readonly="ro" in options,
        options=tuple(o for o in options if o not in ("ro", "rw")),
    )


def _port(text: str, field: str) -> int:
    if not (text.isdigit() and text.isascii()) or not 0 <= int(text) <= 65535:
        raise IntentError(field, f"{text!r} is not a port (0..65535)")
    return int(text)


def parse_port(text: str, field: str = "-p") -> PortMapping:
    """``[IP:]HOST:CTR[/udp]``, ``IP::CTR`` (any host port) or ``CTR`` (any host port)."""
    spec, _, proto = text.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise IntentError(field, f"{text!r}: protocol {proto!r} is not tcp or udp")
    if spec.startswith("["):  # [::1]:8080:80
        ip, sep, rest = spec[1:].partition("]:")
        if not sep:
            raise IntentError(field, f"{text!r} is not [IP]:HOST:CTR")
        parts = [ip, *rest.split(":")]
    else:
        parts = spec.split(":")
    if len(parts) == 1:
        ip, host, ctr = "", "0", parts[0]
    elif len(parts) == 2:
        ip, (host, ctr) = "", parts
    elif len(parts) == 3:
        ip, host, ctr = parts
    else:
        raise IntentError(field, f"{text!r} is not [IP:]HOST:CTR[/udp]")
    container_port = _port(ctr, field)
    if container_port == 0:
        raise IntentError(field, f"{text!r}: the container port must not be 0")
    if ip:
        import ipaddress

        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise IntentError(field, f"{text!r}: {ip!r} is not an IP address") from None
    return PortMapping(
        host_ip=ip, host_port=_port(host or "0", field), container_port=container_port,
        protocol=proto,
    )  # fmt: skip


def parse_restart(text: str, field: str = "--restart") -> RestartPolicy:
    name, _, count = text.partition(":")
    if name not in ("no", "on-failure", "always", "unless-stopped"):
        raise IntentError(
            field,
            f"{text!r} is not a restart policy",
            hint="no, on-failure[:N], always, unless-stopped",
        )
    if count:
        if name != "on-failure" or not (count.isdigit() and count.isascii()):
            raise IntentError(field, f"{text!r}: only on-failure takes a count (on-failure:3)")
        return RestartPolicy(name, int(count))
    return RestartPolicy(name)


def parse_extra_host(text: str, field: str = "--add-host") -> tuple[str, str]:
    name, sep, ip = text.partition(":")
    if not sep or not name or not ip:
        raise IntentError(field, f"{text!r} is not NAME:IP")
    import ipaddress

    try:
        ipaddress.ip_address(ip.strip("[]"))
    except ValueError:
        raise IntentError(field, f"{text!r}: {ip!r} is not an IP address") from None
    return name, ip.strip("[]")


def read_env_file(path: str, field: str = "--env-file") -> list[str]:
    """``KEY=VALUE`` lines (``#`` comments and blank lines skipped) of a UTF-8 file."""
    from bolt.errors import NotFound

    try:
        with open(path, "rb") as f:
            raw = f.read((1 << 20) + 1)
    except OSError as exc:
        raise NotFound(f"{field}: {path}: {exc.strerror}") from None
    if len(raw) > 1 << 20:
        raise IntentError(field, f"{path} is larger than 1 MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IntentError(field, f"{path} is not UTF-8 text (byte {exc.start})") from None
    lines = [ln for ln in (raw_line.strip() for raw_line in text.splitlines()) if ln]
    out = [ln for ln in lines if not ln.startswith("#")]
    for ln in out:
        if ln.startswith("=") or "\x00" in ln:
            raise IntentError(field, f"{path}: {ln!r} is not KEY=VALUE")
    return out


def split_env(items: "list[str]", field: str = "-e") -> "tuple[dict[str, str], list[str]]":
    """``KEY=VALUE`` items -> a dict (later ones win); bare ``KEY``s are returned apart,
    to be copied from the caller's environment."""
    env: dict[str, str] = {}
    host: list[str] = []
    for item in items:
        key, sep, value = item.partition("=")
        if not key or "\x00" in item:
            raise IntentError(field, f"{item!r} is not KEY=VALUE")
        if sep:
            env[key] = value
            if key in host:
                host.remove(key)
        else:
            host.append(key)
            env.pop(key, None)
    return env, host


def health_check(
    *,
    cmd: "str | None",
    interval: "str | None",
    timeout: "str | None",
    retries: "int | None",
    start_period: "str | None",
    disabled: bool,
) -> "HealthCheck | None":
    """The ``--health-*`` flags -> a HealthCheck, or None to keep the image's."""
    if disabled:
        if cmd:
            raise IntentError("--no-healthcheck", "conflicts with --health-cmd")
        return HealthCheck(test=("NONE",))
    if cmd is None:
        if any(v is not None for v in (interval, timeout, retries, start_period)):
            raise IntentError("--health-cmd", "is needed by the other --health-* flags")
        return None
    if not cmd.strip():
        raise IntentError("--health-cmd", "is empty")
    return HealthCheck(
        test=("CMD-SHELL", cmd),
        interval=30.0 if interval is None else parse_duration(interval, "--health-interval"),
        timeout=30.0 if timeout is None else parse_duration(timeout, "--health-timeout"),
        retries=3 if retries is None else retries,
        start_period=0.0
        if start_period is None
        else parse_duration(start_period, "--health-start-period"),
    )
