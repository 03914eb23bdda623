"""What a container gets from the engine besides its image: /etc/hostname, /etc/hosts
and /etc/resolv.conf (with its network addresses, --add-host and --dns), and the health
check that applies to it (the intent's, else the image's)."""

from __future__ import annotations

import os
from pathlib import Path

from bolt.runtime.intent import ContainerIntent
from bolt.runtime.layout import ContainerDir
from bolt.runtime.spec import Mount


def etc_files(
    cdir: ContainerDir,
    hostname: str,
    intent: ContainerIntent,
    own_ips: list[str],
    nameservers: list[str],
) -> list[Mount]:
    """/etc/hostname, /etc/hosts and /etc/resolv.conf for the container (in its bundle)."""
    cdir.bundle.mkdir(parents=True, exist_ok=True)
    cdir.etc_file("hostname").write_text(hostname + "\n")
    if intent.network_mode == "host":
        hosts = Path("/etc/hosts").read_text() if os.path.exists("/etc/hosts") else ""
    else:
        hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        hosts += "".join(f"{ip}\t{hostname}\n" for ip in own_ips or ["127.0.1.1"])
    hosts += "".join(f"{ip}\t{name}\n" for name, ip in intent.extra_hosts)
    cdir.etc_file("hosts").write_text(hosts)
    resolv = Path("/etc/resolv.conf")
    host_resolv = resolv.read_text() if resolv.exists() else ""
    servers = [*intent.dns, *nameservers]
    if servers:
        kept = [ln for ln in host_resolv.splitlines() if not ln.startswith("nameserver")]
        host_resolv = "".join(f"nameserver {ip}\n" for ip in servers) + "\n".join(kept) + "\n"
    cdir.etc_file("resolv.conf").write_text(host_resolv)
    return [
        Mount(destination=f"/etc/{n}", source=str(cdir.etc_file(n)))
        for n in ("hostname", "hosts", "resolv.conf")
    ]


def health_of(intent: ContainerIntent, config: dict[str, object]) -> tuple[object, ...] | None:
    """The health check that applies: the intent's, else the image's HEALTHCHECK."""
    from bolt.runtime.intent import HealthCheck

    check = intent.healthcheck
    if check is None:
        raw = config.get("Healthcheck")
        if isinstance(raw, dict) and raw.get("Test"):
            ns = 1e9  # image configs keep durations in nanoseconds
            check = HealthCheck(
                test=tuple(raw["Test"]),
                interval=(raw.get("Interval") or 30e9) / ns,
                timeout=(raw.get("Timeout") or 30e9) / ns,
                retries=int(raw.get("Retries") or 3),
                start_period=(raw.get("StartPeriod") or 0) / ns,
            )
    if check is None or check.disabled:
        return None
    return tuple(check)
