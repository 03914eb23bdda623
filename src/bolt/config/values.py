"""Parsers for the short string forms a Boltfile (and a compose file) writes values in.

Ports (``"8080:80"``, ``"127.0.0.1:8000-8001:80-81/udp"``), volumes (``"./data:/data:ro"``),
tmpfs mounts, durations (``"1m30s"``), sizes (``"512m"``) and restart policies
(``"on-failure:3"``).  Each returns plain dicts in the shape of the schema's long forms, or
raises ``ValueError`` with a message that says what form was expected.
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Any

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
RESTART_NAMES = ("no", "on-failure", "always", "unless-stopped")


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected {what}")
    if not math.isfinite(value):
        raise ValueError(f"expected a finite {what}, got {value}")
    return float(value)


def parse_duration(value: Any) -> float:
    """Seconds, from a number (seconds) or a string such as ``"30s"``, ``"1m30s"``, ``"500ms"``."""
    if isinstance(value, str):
        text = value.strip()
        pos, total = 0, 0.0
        for m in _DURATION_PART.finditer(text):
            if m.start() != pos:
                break
            total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
            pos = m.end()
        if not text or pos != len(text):
            raise ValueError(f"invalid duration {value!r} (expected e.g. 30s, 1m30s, 500ms)")
        return total
    seconds = _number(value, "a duration (seconds, or a string such as '30s')")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative ({value})")
    return seconds


def parse_size(value: Any) -> int:
    """Bytes, from an integer or a string such as ``"512m"``, ``"1g"``, ``"2GiB"``."""
    if isinstance(value, str):
        m = _SIZE.fullmatch(value.strip())
        if m is None:
            raise ValueError(f"invalid size {value!r} (expected bytes, or e.g. 512m, 1g)")
        size = int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])
    elif isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        raise ValueError("expected a size (bytes, or a string such as '512m')")
    if size <= 0:
        raise ValueError(f"a size must be positive ({value!r})")
    return size


def _port_number(text: str, spec: str) -> int:
    if not text.isdigit():
        raise ValueError(f"invalid port {text!r} in {spec!r}")
    port = int(text)
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} in {spec!r} is out of range (1-65535)")
    return port


def _port_range(text: str, spec: str) -> list[int]:
    first, sep, last = text.partition("-")
    lo = _port_number(first, spec)
    hi = _port_number(last, spec) if sep else lo
    if hi < lo:
        raise ValueError(f"port range {text!r} in {spec!r} runs backwards")
    return list(range(lo, hi + 1))


def parse_port(spec: str | int) -> list[dict[str, Any]]:
    """``[[IP:]HOST:]CONTAINER[/PROTO]`` (ranges allowed) as long-form port tables."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        spec = str(spec)
    if not isinstance(spec, str):
        raise ValueError("expected a port string such as '8080:80' or a port table")
    body, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise ValueError(f"invalid protocol {proto!r} in {spec!r} (tcp or udp)")
    host_ip = ""
    if body.startswith("["):  # [v6]:host:container
        end = body.find("]")
        if end == -1 or body[end + 1 : end + 2] != ":":
            raise ValueError(f"invalid port {spec!r}")
        host_ip, body = body[1:end], body[end + 2 :]
    parts = body.split(":")
    if len(parts) == 3 and not host_ip:
        host_ip, host, container = parts
    elif len(parts) == 2:
        host, container = parts
    elif len(parts) == 1 and not host_ip:
        host, container = "", parts[0]
    else:
        raise ValueError(f"invalid port {spec!r} (expected [IP:]HOST:CONTAINER[/PROTO])")
    if host_ip:
        try:
            ipaddress.ip_address(host_ip)
        except ValueError:
            raise ValueError(f"invalid host address {host_ip!r} in {spec!r}") from None
    containers = _port_range(container, spec)
    hosts: list[int | None] = [None] * len(containers)
    if host:
        hosts = list(_port_range(host, spec))
        if len(hosts) != len(containers):
            raise ValueError(f"host and container port ranges in {spec!r} differ in length")
    return [
        {"host_ip": host_ip, "published": h, "target": c, "protocol": proto}
        for h, c in zip(hosts, containers, strict=True)
    ]


def is_bind_source(source: str) -> bool:
    return source.startswith(("/", "./", "../", "~")) or source in (".", "..")


def parse_volume(spec: str) -> dict[str, Any]:
    """``SOURCE:TARGET[:ro|rw]`` or ``TARGET`` (anonymous) as a long-form volume table."""
    parts = spec.split(":")
    mode = ""
    if len(parts) == 3:
        source, target, mode = parts
    elif len(parts) == 2:
        source, target = parts
    elif len(parts) == 1:
        source, target = "", parts[0]
    else:
        raise ValueError(f"invalid volume {spec!r} (expected SOURCE:TARGET[:ro|rw])")
    options = {o for o in mode.split(",") if o}
    unknown = options - {"ro", "rw", "z", "Z"}
    if unknown or {"ro", "rw"} <= options:
        raise ValueError(f"invalid volume mode {mode!r} in {spec!r} (ro or rw)")
    if not target.startswith("/"):
        raise ValueError(f"volume target {target!r} in {spec!r} must be an absolute path")
    if not source:
        kind = "volume"
    elif is_bind_source(source):
        kind = "bind"
    elif re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", source):
        kind = "volume"
    else:
        raise ValueError(f"invalid volume source {source!r} in {spec!r} (a path or a volume name)")
    return {"type": kind, "source": source or None, "target": target, "read_only": "ro" in options}


def parse_tmpfs(spec: str) -> dict[str, Any]:
    """``TARGET[:size=64m,mode=1777]`` as a tmpfs table."""
    target, _, opts = spec.partition(":")
    if not target.startswith("/"):
        raise ValueError(f"tmpfs target {target!r} must be an absolute path")
    table: dict[str, Any] = {"target": target}
    for opt in filter(None, opts.split(",")):
        key, _, value = opt.partition("=")
        if key == "size":
            table["size"] = parse_size(value)
        elif key == "mode" and re.fullmatch(r"[0-7]{3,4}", value):
            table["mode"] = value
        else:
            raise ValueError(f"invalid tmpfs option {opt!r} in {spec!r} (size=, mode=)")
    return table


def parse_restart(spec: str) -> dict[str, Any]:
    """``no`` | ``on-failure[:N]`` | ``always`` | ``unless-stopped``."""
    name, sep, count = spec.partition(":")
    if name not in RESTART_NAMES or (sep and name != "on-failure"):
        raise ValueError(
            f"invalid restart policy {spec!r} (no, on-failure[:N], always, unless-stopped)"
        )
    if sep and not count.isdigit():
        raise ValueError(f"invalid retry count {count!r} in {spec!r}")
    return {"policy": name, "max_retries": int(count) if sep else None}


def parse_publish(spec: object) -> tuple[str, int] | bool:
    """``[network] publish``: ``[HOST_IP:]PORT`` (port 0: a free one chosen at start) as
    (host address, port), or ``false`` (the quic listener is not published)."""
    if spec is False:
        return False
    if isinstance(spec, int) and not isinstance(spec, bool):
        spec = str(spec)
    if not isinstance(spec, str):
        raise ValueError("expected '[HOST_IP:]PORT' or false")
    host_ip, sep, port = spec.strip().rpartition(":")
    host_ip = host_ip.strip("[]") if sep else "0.0.0.0"
    try:
        ipaddress.ip_address(host_ip)
    except ValueError:
        raise ValueError(f"invalid host address {host_ip!r} in {spec!r}") from None
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"invalid port in {spec!r} (0 to 65535; 0 picks a free one)")
    return host_ip, int(port)
