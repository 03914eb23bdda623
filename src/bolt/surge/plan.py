"""The Surge planner: (desired project, observed containers) → the actions that converge them.

Pure, in the manner of ``nvcontrol.control.transaction``: it takes values and returns
values, never touching the engine, a clock or the disk.  The orchestrator observes the
containers (by their ``bolt.surge.*`` labels), asks for a plan and runs it.

A plan for ``up`` has one :class:`ServicePlan` per service, in dependency order.  Each
holds the conditions (``service_started``, ``service_healthy``,
``service_completed_successfully``) that its dependencies must meet before its actions run;
services whose dependencies are met run in parallel.  A service with nothing to do still
appears, so that its dependents wait on its condition.  Whether a container is up to date is
one comparison: the spec hash stored in its label against the desired one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

STARTED = "service_started"
HEALTHY = "service_healthy"
COMPLETED = "service_completed_successfully"
# the engine's statuses of a container that needs nothing (its monitor restarts it itself)
ALIVE = ("running", "paused", "restarting")


@dataclass(frozen=True)
class DesiredService:
    name: str
    spec_hash: str
    replicas: int = 1
    depends_on: Mapping[str, str] = field(default_factory=dict)  # dependency -> condition
    restart: str = "no"  # the restart policy's name
    max_retries: int | None = None  # on-failure's limit
    optional: frozenset[str] = frozenset()  # ``required = false``: missing or failed, a warning
    restart_with: frozenset[str] = frozenset()  # ``restart = true``: restarted when they change


@dataclass(frozen=True)
class ObservedContainer:
    id: str
    name: str
    service: str
    number: int
    status: str  # creating created running paused restarting exited failed removing
    spec_hash: str | None = None
    exit_code: int | None = None
    restart_count: int = 0


@dataclass(frozen=True)
class UpOptions:
    services: frozenset[str] = frozenset()  # only these (and, without no_deps, their deps)
    no_deps: bool = False
    force_recreate: bool = False
    remove_orphans: bool = False


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class CreateContainer:
    service: str
    number: int


@dataclass(frozen=True)
class StartContainer:
    service: str
    number: int
    id: str | None = None  # None: the container created just before in the same plan


@dataclass(frozen=True)
class RestartContainer:
    """An up-to-date container restarted because a dependency it follows changed."""

    service: str
    number: int
    id: str
    name: str
    because: str  # the dependency


@dataclass(frozen=True)
class RemoveContainer:
    service: str
    number: int
    id: str
    name: str
    reason: str  # "outdated" | "scaled down" | "orphan" | "duplicate" | "down" | "broken"


Action = CreateContainer | StartContainer | RemoveContainer | RestartContainer


@dataclass(frozen=True)
class ServicePlan:
    service: str
    requires: Mapping[str, str]  # dependency -> condition, met before ``actions`` run
    actions: tuple[Action, ...]
    optional: frozenset[str] = frozenset()  # of ``requires``: a failure there is a warning


@dataclass(frozen=True)
class Plan:
    services: tuple[ServicePlan, ...]  # dependency order
    orphans: tuple[RemoveContainer, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def changes(self) -> bool:
        return bool(self.orphans) or any(s.actions for s in self.services)

    def actions(self) -> list[Action]:
        return [*self.orphans, *(a for s in self.services for a in s.actions)]

    def waves(self) -> list[list[str]]:
        """Services grouped by the earliest step they can run at (dependencies first)."""
        level: dict[str, int] = {}
        for s in self.services:
            level[s.service] = 1 + max((level.get(d, -1) for d in s.requires), default=-1)
        out: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
        for s in self.services:
            out[level[s.service]].append(s.service)
        return out


# --------------------------------------------------------------------------- ordering


def dependency_order(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """Services with their dependencies first; ties keep the given order.

    The graph was checked for cycles and unknown names when the Boltfile was loaded;
    names outside the graph are ignored here.
    """
    order: list[str] = []
    done: set[str] = set()
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in done or name in visiting:
            return
        visiting.add(name)
        for dep in graph.get(name, ()):
            if dep in graph:
                visit(dep)
        visiting.discard(name)
        done.add(name)
        order.append(name)

    for name in graph:
        visit(name)
    return order


def _with_dependencies(selected: Iterable[str], desired: Mapping[str, DesiredService]) -> set[str]:
    wanted: set[str] = set()
    stack = list(selected)
    while stack:
        name = stack.pop()
        if name in wanted or name not in desired:
            continue
        wanted.add(name)
        stack.extend(desired[name].depends_on)
    return wanted


# --------------------------------------------------------------------------- up


def _finished(want: DesiredService, c: ObservedContainer) -> bool:
    """An exited container that ``up`` leaves alone: a one-shot that succeeded, or one
    whose ``on-failure:N`` restarts are used up (starting it again would defeat N)."""
    if c.exit_code == 0 and want.restart in ("no", "on-failure"):
        return True
    return (
        want.restart == "on-failure"
        and want.max_retries is not None
        and c.restart_count >= want.max_retries
    )


def _slot_actions(
    want: DesiredService, number: int, found: Sequence[ObservedContainer], force: bool
) -> list[Action]:
    """What one replica slot needs: nothing, a start, or a (re)creation."""
    actions: list[Action] = []
    current = [c for c in found if c.spec_hash == want.spec_hash and not force]
    keep = next((c for c in current if c.status in ALIVE), None)
    keep = keep or (current[0] if current else None)
    for c in found:
        if c is not keep:
            reason = "duplicate" if c.spec_hash == want.spec_hash and not force else "outdated"
            actions.append(RemoveContainer(want.name, number, c.id, c.name, reason))
    if keep is None:
        return [*actions, CreateContainer(want.name, number), StartContainer(want.name, number)]
    if keep.status in ALIVE:
        return actions
    if keep.status == "created":
        return [*actions, StartContainer(want.name, number, keep.id)]
    if keep.status == "exited":
        if _finished(want, keep):
            return actions
        return [*actions, StartContainer(want.name, number, keep.id)]
    # dead, stopping, unknown: nothing to restart from
    return [
        *actions,
        RemoveContainer(want.name, number, keep.id, keep.name, "broken"),
        CreateContainer(want.name, number),
        StartContainer(want.name, number),
    ]


def plan_up(
    desired: Sequence[DesiredService],
    observed: Sequence[ObservedContainer],
    options: UpOptions = UpOptions(),
) -> Plan:
    """The actions that make ``observed`` match ``desired`` (in ``desired``'s order)."""
    by_name = {d.name: d for d in desired}
    unknown = options.services - by_name.keys()
    if unknown:
        raise ValueError(f"no such service: {', '.join(sorted(unknown))}")
    if not options.services:
        chosen = set(by_name)
    elif options.no_deps:
        chosen = set(options.services)
    else:
        chosen = _with_dependencies(options.services, by_name)
    order = dependency_order({d.name: d.depends_on for d in desired})
    services: list[ServicePlan] = []
    warnings: list[str] = []
    changed: set[str] = set()  # services whose containers this plan creates or starts
    for name in order:
        if name not in chosen:
            continue
        want = by_name[name]
        mine = [c for c in observed if c.service == name]
        actions: list[Action] = []
        for number in range(1, want.replicas + 1):
            found = [c for c in mine if c.number == number]
            slot = _slot_actions(want, number, found, options.force_recreate)
            if not slot:
                slot = _follow(want, number, found, changed)
            actions.extend(slot)
        if any(isinstance(a, CreateContainer | StartContainer) for a in actions):
            changed.add(name)
        for c in sorted(mine, key=lambda c: -c.number):
            if c.number > want.replicas or c.number < 1:
                actions.append(RemoveContainer(name, c.number, c.id, c.name, "scaled down"))
        # scale-down removals first, so that a shrinking service frees its resources
        actions.sort(
            key=lambda a: not (isinstance(a, RemoveContainer) and a.reason == "scaled down")
        )
        requires = {d: c for d, c in want.depends_on.items() if d in chosen}
        for dep in want.depends_on:
            if dep not in chosen and dep in want.optional:
                warnings.append(f"{name}: optional dependency {dep} is not part of this up")
        optional = frozenset(want.optional & requires.keys())
        services.append(ServicePlan(name, requires, tuple(actions), optional))
    strays = [c for c in observed if c.service not in by_name]
    orphans: tuple[RemoveContainer, ...] = ()
    if strays and options.remove_orphans:
        orphans = tuple(
            RemoveContainer(c.service, c.number, c.id, c.name, "orphan") for c in strays
        )
    elif strays:
        names = ", ".join(sorted({c.service for c in strays}))
        warnings.append(
            f"containers of services no longer in the Boltfile are left running ({names}); "
            "remove them with --remove-orphans"
        )
    return Plan(tuple(services), orphans, tuple(warnings))


def _follow(
    want: DesiredService, number: int, found: Sequence[ObservedContainer], changed: set[str]
) -> list[Action]:
    """A slot with nothing to do restarts when a dependency it follows (``restart = true``)
    was created or started by this plan, as compose does."""
    because = sorted(want.restart_with & changed)
    alive = next((c for c in found if c.status in ALIVE), None)
    if not because or alive is None:
        return []
    return [RestartContainer(want.name, number, alive.id, alive.name, because[0])]


# --------------------------------------------------------------------------- down


def plan_down(
    graph: Mapping[str, Iterable[str]],
    observed: Sequence[ObservedContainer],
    services: frozenset[str] = frozenset(),
) -> list[list[RemoveContainer]]:
    """Waves of removals: dependents before what they depend on, orphans in the first wave.

    Containers in one wave may be stopped in parallel.  With ``services``, only theirs.
    """
    order = dependency_order(graph)
    level: dict[str, int] = {}
    for name in reversed(order):  # a service goes after every service that depends on it
        dependents = [s for s in order if name in set(graph.get(s, ()))]
        level[name] = 1 + max((level[d] for d in dependents), default=0)
    waves: dict[int, list[RemoveContainer]] = {}
    for c in sorted(observed, key=lambda c: (c.service, c.number)):
        if services and c.service not in services:
            continue
        waves.setdefault(level.get(c.service, 0), []).append(
            RemoveContainer(c.service, c.number, c.id, c.name, "down")
        )
    return [waves[k] for k in sorted(waves)]
