"""The ``[snapshots]`` table of a Boltfile: keep rules, triggers, and what pruning removes.

    [snapshots]
    keep_last = 5          # the newest N
    keep_hourly = 24       # the newest of each of the last N hours that have one
    keep_daily = 7
    keep_weekly = 4
    keep_monthly = 6
    before_surge_up = true        # a snapshot before a `bolt surge up` that changes containers
    before_surge_down = true      # a snapshot before `bolt surge down` removes them
    before_build = true           # a snapshot before Surge builds a service's image
    before_driver_update = true   # a snapshot before `nvctl ct update --install`

:meth:`SnapshotPolicy.from_table` is the one validator (Surge's Boltfile parser calls it
for the table; errors carry the dotted key).  :func:`plan_prune` is pure: snapshots and
``now`` in, names to delete out.  The triggers (:func:`triggered`, with
:func:`before_surge_up` and :func:`before_driver_update` as shorthands) take a snapshot of the project and prune its automatic
snapshots by the policy.  Manual snapshots are pruned only when asked (``--all``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from bolt.errors import InvalidInput

KEEP_RULES = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly")
TRIGGERS = ("before_surge_up", "before_surge_down", "before_build", "before_driver_update")
MAX_KEEP = 100_000


class PolicyError(InvalidInput):
    """A ``[snapshots]`` value is wrong; ``key`` is its dotted name."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


@dataclass(frozen=True)
class SnapshotPolicy:
    keep_last: int | None = None
    keep_hourly: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    keep_monthly: int | None = None
    before_surge_up: bool = False
    before_surge_down: bool = False
    before_build: bool = False
    before_driver_update: bool = False

    @classmethod
    def from_table(cls, table: object, where: str = "snapshots") -> SnapshotPolicy:
        if not isinstance(table, dict):
            raise PolicyError(where, "must be a table")
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in table.items():
            dotted = f"{where}.{key}"
            if key not in known:
                raise PolicyError(dotted, "unknown key (known: " + ", ".join(sorted(known)) + ")")
            if key in TRIGGERS:
                if not isinstance(value, bool):
                    raise PolicyError(dotted, f"must be true or false, not {value!r:.40}")
            elif isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and not math.isfinite(value):
                    raise PolicyError(dotted, "must be a whole number, not NaN or infinity")
                raise PolicyError(dotted, f"must be a whole number, not {value!r:.40}")
            elif not 0 <= value <= MAX_KEEP:
                raise PolicyError(dotted, f"must be between 0 and {MAX_KEEP}, not {value}")
            values[key] = value
        return cls(**values)

    @property
    def keeps_something(self) -> bool:
        return any(getattr(self, r) for r in KEEP_RULES)


@dataclass(frozen=True)
class Candidate:
    name: str
    created: float  # seconds since the epoch


_PERIODS: dict[str, Callable[[dt.datetime], tuple[int, ...]]] = {
    "keep_hourly": lambda t: (t.year, t.month, t.day, t.hour),
    "keep_daily": lambda t: (t.year, t.month, t.day),
    "keep_weekly": lambda t: t.isocalendar()[:2],
    "keep_monthly": lambda t: (t.year, t.month),
}


def plan_prune(snapshots: Sequence[Candidate], policy: SnapshotPolicy) -> list[str]:
    """The names to delete: every snapshot no keep rule keeps (newest first per rule, as
    restic and borg count periods).  A policy without keep rules keeps everything."""
    if not policy.keeps_something:
        return []
    newest_first = sorted(snapshots, key=lambda s: (s.created, s.name), reverse=True)
    kept: set[str] = {s.name for s in newest_first[: policy.keep_last or 0]}
    for rule, period_of in _PERIODS.items():
        wanted = getattr(policy, rule) or 0
        seen: set[tuple[int, ...]] = set()
        for s in newest_first:
            if len(seen) >= wanted:
                break
            period = period_of(dt.datetime.fromtimestamp(s.created, dt.UTC))
            if period not in seen:
                seen.add(period)
                kept.add(s.name)
    return [s.name for s in newest_first if s.name not in kept]


# --------------------------------------------------------------------------- triggers


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%f")


async def triggered(
    trigger: str, project: str, policy: SnapshotPolicy, *, root: Path | None = None
) -> Any:
    """The event ``trigger`` (one of :data:`TRIGGERS`) is about to happen to ``project``: a
    snapshot of it when the policy asks for one (then the project's automatic snapshots are
    pruned by the policy); returns it, or None."""
    from bolt.capsules.snapshots import Snapshot

    if trigger not in TRIGGERS:
        raise ValueError(f"unknown snapshot trigger {trigger!r}")
    if not getattr(policy, trigger):
        return None
    name = f"{project}-{trigger.replace('_', '-')}-{_stamp()}"[:64]
    snap = await Snapshot.create(name, project=project, trigger=trigger, root=root)
    prune(policy, project=project, root=root)
    return snap


async def before_surge_up(project: str, policy: SnapshotPolicy, *, root: Path | None = None) -> Any:
    """Before ``bolt surge up`` of ``project``: a snapshot when the policy asks for one (then
    the project's automatic snapshots are pruned); returns it, or None."""
    return await triggered("before_surge_up", project, policy, root=root)


async def before_driver_update(
    project: str, policy: SnapshotPolicy, *, root: Path | None = None
) -> Any:
    """Before ``nvctl ct update --install``: as :func:`before_surge_up`."""
    return await triggered("before_driver_update", project, policy, root=root)


def prune(
    policy: SnapshotPolicy,
    *,
    project: str | None = None,
    include_manual: bool = False,
    dry_run: bool = False,
    root: Path | None = None,
) -> list[str]:
    """Delete the snapshots ``policy`` does not keep (of ``project`` if given; automatic
    ones only unless ``include_manual``); returns their names."""
    from bolt.capsules.snapshots import Snapshot

    pool = [
        s
        for s in Snapshot.list(root=root)
        if (project is None or s.project == project) and (include_manual or s.trigger != "manual")
    ]
    doomed = plan_prune([Candidate(s.name, s.created) for s in pool], policy)
    if not dry_run:
        for name in doomed:
            Snapshot.delete(name, root=root)
    return doomed
