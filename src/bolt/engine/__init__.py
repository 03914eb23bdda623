"""Bolt's container manager: the ``Engine`` over ``$BOLT_ROOT/state.db``.

It sits between the front ends (the ``bolt`` CLI, Surge, the library) and the low
runtime (``bolt.runtime``: intent -> spec -> config.json -> crun/runc, CDI, the monitor).
It owns the container rows (compare-and-set transitions, labels, the stored intent and
its hash), the event table, networks (netavark) and volumes.

The names are loaded on first use, so ``bolt run`` (which imports
``bolt.engine.containers``) loads no more than it needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bolt.engine.api import ContainerInfo, Engine, EngineEvent, ExecResult, LogLine
    from bolt.engine.containers import Conflict
    from bolt.engine.networks import NetworkInfo
    from bolt.runtime.intent import (
        ContainerIntent,
        HealthCheck,
        IntentError,
        MountIntent,
        NetworkAttachment,
        PortMapping,
        RestartPolicy,
    )

_WHERE = {
    "Engine": "bolt.engine.api",
    "ContainerInfo": "bolt.engine.api",
    "EngineEvent": "bolt.engine.api",
    "ExecResult": "bolt.engine.api",
    "LogLine": "bolt.engine.api",
    "Conflict": "bolt.engine.containers",
    "NetworkInfo": "bolt.engine.networks",
    "ContainerIntent": "bolt.runtime.intent",
    "HealthCheck": "bolt.runtime.intent",
    "IntentError": "bolt.runtime.intent",
    "MountIntent": "bolt.runtime.intent",
    "NetworkAttachment": "bolt.runtime.intent",
    "PortMapping": "bolt.runtime.intent",
    "RestartPolicy": "bolt.runtime.intent",
}

__all__ = [
    "Conflict",
    "ContainerInfo",
    "ContainerIntent",
    "Engine",
    "EngineEvent",
    "ExecResult",
    "HealthCheck",
    "IntentError",
    "LogLine",
    "MountIntent",
    "NetworkAttachment",
    "NetworkInfo",
    "PortMapping",
    "RestartPolicy",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'bolt.engine' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
