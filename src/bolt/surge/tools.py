"""The project commands around the core: logs, start/stop/restart, images, top, events.

Each takes an :class:`~bolt.surge.orchestrator.Orchestrator` and works on the containers
its project labels name.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bolt.surge import images, intents
from bolt.surge.plan import ALIVE, dependency_order

if TYPE_CHECKING:
    from bolt.surge.orchestrator import Orchestrator, ServiceState

_COLOURS = (36, 33, 32, 35, 34, 96, 93, 92, 95, 94)


async def _states(o: Orchestrator, services: Iterable[str]) -> list[ServiceState]:
    wanted = set(o._selected(services))
    return [s for s in await o.status() if not wanted or s.service in wanted]


async def stream_logs(
    o: Orchestrator,
    services: Iterable[str],
    *,
    follow: bool,
    tail: int | None,
    color: bool,
    out: TextIO,
) -> None:
    """Every container's log lines, prefixed ``NAME |`` (coloured on a terminal), merged
    as they come; one thread per container follows its log."""
    states = await _states(o, services)
    if not states:
        return
    width = max(len(s.name) for s in states)
    lock = threading.Lock()

    def pump(index: int, state: ServiceState) -> None:
        prefix = f"{state.name:<{width}} | "
        if color:
            prefix = f"\033[{_COLOURS[index % len(_COLOURS)]}m{prefix}\033[0m"
        for line in o.engine.logs(state.id, follow=follow, tail=tail):
            text = line.text if line.text.endswith("\n") else line.text + "\n"
            with lock:
                out.write(prefix + text)
                out.flush()

    await asyncio.gather(*(asyncio.to_thread(pump, i, s) for i, s in enumerate(states)))


async def start_stop(
    o: Orchestrator, action: str, services: Iterable[str], timeout: float | None = None
) -> None:
    """Start (dependencies first), stop (dependents first) or restart existing containers.

    ``restart`` of named services also restarts the services that follow them
    (``depends_on.X.restart = true``), as compose does."""
    graph = {n: list(s.depends_on) for n, s in o.boltfile.services.items()}
    order = dependency_order(graph)
    named = list(services)
    if action == "restart" and named:
        named = followers(o.boltfile.services, o._selected(named))
    states = await _states(o, named)
    rank = {n: i for i, n in enumerate(order)}
    if action in ("stop", "restart"):
        for s in sorted(states, key=lambda s: -rank.get(s.service, -1)):
            if s.status in ALIVE:
                await asyncio.to_thread(o.engine.stop, s.id, timeout)
                o.report(s.name, "stopped")
    if action in ("start", "restart"):
        for s in sorted(states, key=lambda s: rank.get(s.service, len(order))):
            info = await asyncio.to_thread(o.engine.inspect, s.id)
            if info.status != "running":
                await asyncio.to_thread(o.engine.start, s.id)
                o.report(s.name, "started")


def project_images(o: Orchestrator) -> list[dict[str, Any]]:
    rows = []
    for name in o.boltfile.services:
        ref = images.image_ref(o.boltfile, name)
        rows.append({"service": name, "image": ref, "id": images.image_id(o.root, ref)})
    return rows


def _pid_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


async def processes(o: Orchestrator, services: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """The processes of each running container: those in its PID namespace."""
    table: dict[str, list[dict[str, Any]]] = {}
    for s in await _states(o, services):
        if s.status != "running":
            continue
        info = await asyncio.to_thread(o.engine.inspect, s.id)
        ns = _pid_namespace(info.pid) if info.pid else None
        procs = []
        if ns is not None:
            for entry in os.listdir("/proc"):
                if entry.isdigit() and _pid_namespace(int(entry)) == ns:
                    procs.append({"pid": int(entry), "command": _command_line(int(entry))})
        table[s.name] = sorted(procs, key=lambda p: p["pid"])
    return table


def project_events(
    o: Orchestrator, since: float | None, follow: bool = True
) -> Iterator[dict[str, Any]]:
    prefix = f"{o.project}-"
    for event in o.engine.events(since=since, follow=follow):
        if event.name.startswith(prefix):
            yield {
                "time": event.time,
                "project": o.project,
                "container": event.name,
                "id": event.id,
                "type": event.type,
                "attributes": event.attributes,
            }


def resolve_endpoint(o: Orchestrator, url: str) -> tuple[str, int]:
    """``bolt://SERVICE:PORT`` (or ``bolt://SERVICE.PROJECT:PORT``) -> (address, port).

    Inside the project's network the service name resolves by DNS; from the host this
    gives the container's address on the first network it shares with the project.
    """
    from bolt.errors import InvalidInput, NotFound

    rest = url.removeprefix("bolt://")
    if rest == url:
        raise InvalidInput(f"{url!r} is not a bolt:// endpoint")
    host, sep, port_text = rest.rpartition(":")
    if not sep or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise InvalidInput(f"{url!r}: expected bolt://SERVICE:PORT")
    service = host.removesuffix(f".{o.project}")
    if service not in o.boltfile.services:
        raise NotFound(f"{url!r}: no service {service!r} in project {o.project}")
    labels = {intents.PROJECT: o.project, intents.SERVICE: service, intents.ONEOFF: "false"}
    for info in o.engine.list(all=False, labels=labels):
        for address in info.networks.values():
            if address:
                return address.split("/")[0], int(port_text)
    raise NotFound(f"{url!r}: service {service} has no running container with an address")


def followers(services: Any, named: Iterable[str]) -> list[str]:
    """``named`` and, transitively, every service with ``restart = true`` on one of them."""
    chosen = list(dict.fromkeys(named))
    grew = True
    while grew:
        grew = False
        for name, svc in services.items():
            if name not in chosen and any(
                dep in chosen and how.restart for dep, how in svc.depends_on.items()
            ):
                chosen.append(name)
                grew = True
    return chosen
