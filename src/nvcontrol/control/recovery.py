"""Repair what a dead nvctl process left behind; runs before every ``nvctl`` command.

* A transaction whose owner died (``kill -9`` in the confirm window, a crash, a power cut)
  is rolled back to its journaled pre-transaction snapshot.
* A ``fan curve run`` controller that died without cleaning up gives its fans back to
  automatic control.

Live owners are never touched.  Cheap when there is nothing to do: no journal file means
no work, and NVML is opened only when something must be restored.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING

from basis.errors import UserError
from nvcontrol.control.journal import ROLLBACK_PENDING, ROLLED_BACK, Journal

if TYPE_CHECKING:
    from nvcontrol.nvml import Nvml

# NVML, settings and snapshots are imported only when there is something to repair: this
# runs before every nvctl command and must stay cheap when there is nothing to do.


def pending(journal: Journal) -> bool:
    return any(not t.owner_alive for t in journal.live()) or any(
        not c["alive"] for c in journal.fan_controllers()
    )


def repair(say: Callable[[str], None]) -> int:
    """Restore every orphaned transaction and fan controller; returns how many were repaired.
    Problems are reported through ``say`` and never stop the command the user asked for."""
    journal = Journal.if_exists()
    if journal is None:
        return 0
    try:
        if not pending(journal):
            return 0
        if os.geteuid() != 0:
            say(
                "warning: an interrupted GPU change is waiting to be rolled back, which needs "
                "root: run any nvctl command with sudo"
            )
            return 0
        from nvcontrol.nvml import Nvml

        with Nvml() as nvml:
            return _repair_transactions(journal, nvml, say) + _repair_fans(journal, nvml, say)
    except (sqlite3.Error, UserError) as err:
        say(f"warning: could not repair interrupted GPU changes: {err}")
        return 0
    finally:
        journal.close()


def _repair_transactions(journal: Journal, nvml: Nvml, say: Callable[[str], None]) -> int:
    from nvcontrol.control.runner import restore
    from nvcontrol.control.snapshots import GpuSnapshot

    done = 0
    for tx in journal.claim_orphans():
        snap = GpuSnapshot.from_dict(tx.before, source=f"journal transaction {tx.id}")
        gpus = nvml.by_uuid(snap.gpus)
        problems = restore(gpus, journal, snap)
        who = f"transaction {tx.id} ({tx.description})"
        if problems:
            journal.finish(tx.id, ROLLBACK_PENDING, "; ".join(problems))
            say(f"nvctl: {who} is still not rolled back: " + "; ".join(problems))
            continue
        reason = (
            f"its process {tx.owner_pid} died before committing"
            if tx.state != ROLLBACK_PENDING
            else "its earlier rollback could not finish"
        )
        journal.finish(tx.id, ROLLED_BACK, f"restored by nvctl after {reason}")
        say(f"nvctl: rolled back {who}: {reason}; the GPU settings are as they were before it")
        done += 1
    return done


def _repair_fans(journal: Journal, nvml: Nvml, say: Callable[[str], None]) -> int:
    from nvcontrol.control import settings

    done = 0
    for ctl in journal.claim_dead_fan_controllers():
        for gpu in nvml.by_uuid(ctl["gpus"]):
            for i in range(settings.fan_count(gpu)):
                settings.apply(gpu, f"fans.{i}", {"policy": "auto"}, journal, None)
        journal.remove_fan_controller(ctl["id"])
        say(
            f"nvctl: the fan-curve controller (process {ctl['pid']}) died; "
            "its fans are back under automatic control"
        )
        done += 1
    return done
