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
