"""Surge: Boltfile.toml projects on the Bolt engine.

``plan`` (pure planner), ``intents`` (service -> container intent), ``compose`` (compose
file conversion), ``orchestrator`` (the I/O edge: ``Orchestrator``), ``tools`` (logs, top,
events, endpoints).  ``Orchestrator`` is loaded on first use, so that the pure parts import
no engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bolt.surge.orchestrator import Orchestrator, ServiceState, UpResult

__all__ = ["Orchestrator", "ServiceState", "UpResult"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from bolt.surge import orchestrator

        return getattr(orchestrator, name)
    raise AttributeError(f"module 'bolt.surge' has no attribute {name!r}")
