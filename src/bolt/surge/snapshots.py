"""A Boltfile's ``[snapshots]`` table at work: the capsule snapshots Surge takes itself.

The table is validated with the rest of the Boltfile (:class:`bolt.config.schema.Snapshots`);
here it becomes the capsule layer's :class:`~bolt.capsules.retention.SnapshotPolicy`, and
Surge calls its triggers at the moments they name:

- ``before_surge_up``: after ``up`` has planned, when the plan changes a container, before
  the first change (an ``up`` that changes nothing takes none, so that idle runs do not
  push the useful snapshots out of ``keep_last``);
- ``before_surge_down``: before ``down`` removes the project's containers;
- ``before_build``: before Surge builds a service's image (``up`` or ``build``).

Each snapshot is followed by pruning of the project's automatic snapshots by the ``keep_*``
rules.  ``before_driver_update`` is taken by ``nvctl ct update``, not here.
``before_gpu_change`` has no event that takes it yet, so a Boltfile that asks for it is
refused rather than silently left without the snapshots it expects.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from basis.errors import InvalidInput, Unsupported
from bolt.config import Boltfile

if TYPE_CHECKING:  # the capsule layer is loaded only when a snapshot is due
    from bolt.capsules import retention
    from bolt.capsules.snapshots import Snapshot

Report = Callable[[str, str], None]


def check(boltfile: Boltfile) -> None:
    """Refuse a table that asks for a snapshot nothing takes (``up`` and ``build`` call
    this; ``down`` does not, so that such a project can still be taken down)."""
    table = boltfile.snapshots
    if table.enabled and table.before_gpu_change:
        raise Unsupported(
            f"{boltfile.path}: snapshots.before_gpu_change: no GPU change takes a snapshot yet",
            hint="remove the key, and take one with `bolt snapshot create` before changing "
            "GPU settings",
        )


def policy_of(boltfile: Boltfile) -> retention.SnapshotPolicy | None:
    """The policy the Boltfile asks for; None when ``[snapshots]`` is off or absent."""
    table = boltfile.snapshots
    if not table.enabled:
        return None
    from bolt.capsules import retention

    values = table.model_dump()
    return retention.SnapshotPolicy(
        **{k: values[k] for k in (*retention.KEEP_RULES, *retention.TRIGGERS)}
    )


async def before(trigger: str, boltfile: Boltfile, root: Path, report: Report) -> Snapshot | None:
    """Take the ``trigger`` snapshot of the project if its policy asks for one; the
    snapshot, or None.  A project with nothing to capture yet (its first ``up``) is told,
    not refused; any other failure stops the command before it changes anything."""
    table = boltfile.snapshots
    if not (table.enabled and getattr(table, trigger)):
        return None
    from bolt.capsules import retention

    policy = policy_of(boltfile)
    assert policy is not None
    try:
        snap: Snapshot | None = await retention.triggered(trigger, boltfile.name, policy, root=root)
    except InvalidInput as err:
        report(boltfile.name, f"no {trigger} snapshot: {err}")
        return None
    if snap is not None:
        report(boltfile.name, f"snapshot {snap.name} taken ({trigger})")
    return snap
