"""The GPU-configuration snapshot provider for Bolt capsule snapshots.

Bolt's ``Snapshot.create(name)`` asks each registered state provider for a document and
hands it back on ``restore``.  This provider's document is exactly a GPU snapshot
(:meth:`nvcontrol.control.snapshots.Snapshot.to_dict`): per GPU UUID, offsets, locked
clocks, power limit, fans and curve, persistence and compute mode.  Restoring runs as a
transaction like ``nvctl snapshot restore`` (short stability window, no confirmation),
so a capsule restore that meets an unstable GPU is rolled back and raises ``RolledBack``.
"""

from __future__ import annotations

from typing import Any

from nvcontrol.control import fanstore
from nvcontrol.control.runner import TxOptions, Write, capture, live_configs
from nvcontrol.control.snapshots import Snapshot, diff, plan_restore


class GpuConfigProvider:
    name = "nvcontrol.gpu-config"

    def __init__(self, selector: str | None = None, window_s: float = 3.0) -> None:
        self.selector = selector
        self.window_s = window_s

    async def capture(self) -> dict[str, Any]:
        from nvcontrol.control.manager import GpuManager

        async with GpuManager() as m:
            gpus = m.select(self.selector)
            return capture(gpus, m.journal_if_exists(), fanstore.load_curves(), "capsule").to_dict()

    async def restore(self, doc: dict[str, Any]) -> None:
        from nvcontrol.control.manager import GpuManager

        snap = Snapshot.from_dict(doc, source="capsule snapshot")
        async with GpuManager() as m:
            gpus = {g.uuid: g for g in m.nvml.by_uuid(snap.gpus)}
            live = live_configs(list(gpus.values()), m.journal_if_exists(), fanstore.load_curves())
            plan = plan_restore(diff(snap, live))
            if plan:
                writes = [Write(gpus[u], f, v) for u, f, v in plan]
                options = TxOptions(window_s=self.window_s)
                await m.transact("snapshot restore", "restore capsule GPU state", writes, options)
