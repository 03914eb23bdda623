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


def local_only(command: str, why: str) -> None:
    """Refuse, under ``--remote``, a command that has no meaning on an agent (``why``
    says why: docs/remote.md lists them)."""
    if target() is not None:
        from basis.errors import Unsupported

        raise Unsupported(
            f"`nvctl {command}` is not available with --remote: {why}",
            hint="run it without --remote",
        )


def confirm_command(tx_id: object) -> str:
    """The command that confirms transaction ``tx_id`` from another shell."""
    t = target()
    return f"nvctl --remote {t.endpoint} confirm {tx_id}" if t else f"nvctl confirm {tx_id}"
