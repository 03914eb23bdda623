"""The GPU-configuration state provider of Bolt capsule snapshots (``nvcontrol.gpu-config``).

Registered under Bolt's ``bolt.snapshot_providers`` entry point group, so that
``await Snapshot.create("pre-overclock")`` captures the GPU configuration along with the
containers.  Its document is exactly a GPU snapshot
(:meth:`nvcontrol.control.snapshots.GpuSnapshot.to_dict`): per GPU UUID, offsets, locked
clocks, power limit, fans and curve, persistence and compute mode.

The two-phase protocol on top of nvcontrol's own transactions:

* ``prepare`` repairs interrupted GPU transactions first (so an orphan of an earlier,
  killed restore is never rolled back over this one later), checks that every GPU of the
  snapshot is here and every value is valid for it, and records the live configuration
  as the undo state.  Nothing is written.
* ``commit`` applies the difference as one nvcontrol transaction (journaled, read back,
  watched for a short stability window); an unstable GPU rolls that transaction back and
  raises ``RolledBack``, which makes the capsule restore roll back as a whole.  Run again,
  it applies only what still differs.
* ``abort`` (after a commit) applies the recorded undo state the same way.
"""

from __future__ import annotations

from typing import Any

from basis.errors import Unsupported
from nvcontrol.control import fanstore, settings
from nvcontrol.control.runner import TxOptions, Write, capture, live_configs, require_root
from nvcontrol.control.snapshots import GpuSnapshot, diff, plan_restore

# Shorter than an interactive change's window: the state is one the GPUs ran before.
RESTORE_WINDOW_S = 2.0


def _say(message: str) -> None:
    import sys

    print(message, file=sys.stderr)


class GpuConfigProvider:
    name = "nvcontrol.gpu-config"

    def __init__(self, selector: str | None = None, window_s: float = RESTORE_WINDOW_S) -> None:
        self.selector = selector
        self.window_s = window_s

    async def capture(self, ctx: Any) -> dict[str, Any] | None:
        """The GPUs' configuration; None where there is no NVIDIA driver (nothing to hold)."""
        from nvcontrol.control.manager import GpuManager

        try:
            async with GpuManager() as m:
                gpus = m.select(self.selector)
                curves = fanstore.load_curves()
                return capture(gpus, m.journal_if_exists(), curves, "capsule").to_dict()
        except Unsupported as err:
            if ctx is not None:
                ctx.tell(self.name, f"no GPU state held: {err.message}")
            return None

    def check(self, doc: dict[str, Any]) -> None:
        GpuSnapshot.from_dict(doc, source="capsule snapshot")

    async def prepare(self, doc: dict[str, Any], ctx: Any) -> dict[str, Any]:
        from nvcontrol.control import recovery
        from nvcontrol.control.manager import GpuManager

        snap = GpuSnapshot.from_dict(doc, source="capsule snapshot")
        recovery.repair(_say)
        async with GpuManager() as m:
            gpus = m.nvml.by_uuid(snap.gpus)
            journal = m.journal_if_exists()
            live = live_configs(gpus, journal, fanstore.load_curves())
            by_uuid = {g.uuid: g for g in gpus}
            for uuid, name, value in plan_restore(diff(snap, live)):  # raises if a GPU is gone
                settings.validate(by_uuid[uuid], name, value)
            require_root(gpus)
            undo = capture(gpus, journal, fanstore.load_curves(), "before-capsule-restore")
        return {"before": undo.to_dict()}

    async def commit(self, doc: dict[str, Any], record: dict[str, Any], ctx: Any) -> None:
        await self._apply(doc, "restore capsule GPU state")

    async def abort(
        self, doc: dict[str, Any], record: dict[str, Any], ctx: Any, committed: bool
    ) -> None:
        if committed and "before" in record:
            await self._apply(record["before"], "undo capsule GPU restore")

    async def finish(self, doc: dict[str, Any], record: dict[str, Any], ctx: Any) -> None:
        return None

    def discard(self, doc: dict[str, Any] | None, ctx: Any) -> None:
        return None  # the document lives in the snapshot record only

    async def _apply(self, doc: dict[str, Any], description: str) -> None:
        from nvcontrol.control import recovery
        from nvcontrol.control.manager import GpuManager

        snap = GpuSnapshot.from_dict(doc, source="capsule snapshot")
        recovery.repair(_say)  # a killed earlier attempt: its orphan is rolled back first
        async with GpuManager() as m:
            gpus = {g.uuid: g for g in m.nvml.by_uuid(snap.gpus)}
            live = live_configs(list(gpus.values()), m.journal_if_exists(), fanstore.load_curves())
            plan = plan_restore(diff(snap, live))
            if plan:
                writes = [Write(gpus[u], f, v) for u, f, v in plan]
                options = TxOptions(window_s=self.window_s)
                await m.transact("snapshot restore", description, writes, options)
