"""Where a CLI command runs: locally, or on the agent ``--remote`` named (cheap to import:
local commands must not pay for QUIC)."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class TrustOptions:
    accept_new_host: bool = False
    host_fingerprint: str | None = None
    ca_file: str | None = None


@dataclass(frozen=True)
class RemoteTarget:
    endpoint: str
    trust: TrustOptions


_local = threading.local()  # fan-out runs one command per host, each on its own thread


def set_target(target: RemoteTarget | None) -> None:
    _local.target = target


def target() -> RemoteTarget | None:
    return getattr(_local, "target", None)


def local_only(command: str) -> None:
    """Refuse a command that works on this host's files or processes under ``--remote``."""
    if target() is not None:
        from basis.errors import Unsupported

        raise Unsupported(
            f"`nvctl {command}` is not available with --remote: it works on this host's "
            "files or runs as a local process",
            hint="run it on the agent's host",
        )
