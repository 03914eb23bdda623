"""``GpuManager`` — the asyncio API over GPU control; the CLI (and the agent) stay thin.

``async with GpuManager() as m: await m.apply_offsets("0", graphics=100)``.  Changes that
can hurt (offsets, power limit, locked clocks, manual fans, snapshot restore) run as
transactions (:mod:`nvcontrol.control.runner`); resets and modes are direct writes, each
read back.  Status methods return JSON-ready dicts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import pynvml

from basis.errors import InvalidInput, Unsupported, fs_errors
from nvcontrol.control import fanstore, locks, settings
from nvcontrol.control.errors import Busy, SnapshotError
from nvcontrol.control.fancurve import FanCurve
from nvcontrol.control.hostops import HostOps
from nvcontrol.control.journal import COMMITTED, OPEN, Journal, TxRecord
from nvcontrol.control.limits import percent_range
from nvcontrol.control.runner import (
    TxOptions,
    TxReport,
    Write,
    begin,
    busy,
    capture,
    live_configs,
    require_root,
    run,
)
from nvcontrol.control.snapshots import (
    GpuSnapshot,
    SnapshotStore,
    check_name,
    diff,
    missing_gpus,
    now_iso,
    plan_restore,
    read_text_limited,
)
from nvcontrol.control.transaction import Outcome
from nvcontrol.errors import NvctlError
from nvcontrol.lost import LOST_HINT, SomeGpusLost, each_gpu, raise_if_lost
from nvcontrol.nvml import Gpu, Nvml
from nvcontrol.readings import MIB, read_info, sample_all, watts
from nvcontrol.selection import select


class GpuManager(HostOps):
    def __init__(self) -> None:
        self.nvml = Nvml()
        self._journal: Journal | None = None
        self.snapshots = SnapshotStore()

    # ------------------------------------------------------------ session

    async def __aenter__(self) -> GpuManager:
        self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> GpuManager:
        self.nvml.open()
        return self

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        self.nvml.close()

    def select(self, selector: str | None) -> list[Gpu]:
        return select(selector, self.nvml.gpus)

    # ------------------------------------------------------------ monitoring
    # (JSON-ready values, so that a remote backend serves the same results)

    async def gpu_list(self, selector: str | None) -> dict[str, Any]:
        """One row per GPU; a lost GPU is a ``lost`` row (see :mod:`nvcontrol.lost`)."""

        def row(g: Gpu) -> dict[str, Any]:
            mem = g.get(pynvml.nvmlDeviceGetMemoryInfo)
            return {
                "index": g.index,
                "name": g.name,
                "uuid": g.uuid,
                "pci_bus_id": g.pci_bus_id,
                "serial": g.serial,
                "memory_total_mib": mem.total // MIB if mem else None,
            }

        return {"driver": self.nvml.system(), "gpus": each_gpu(self.select(selector), row)}

    async def gpu_info(self, selector: str | None) -> list[dict[str, Any]]:
        return each_gpu(self.select(selector), lambda g: read_info(self.nvml, g))

    async def sample(self, selector: str | None) -> dict[str, Any]:
        return sample_all(self.select(selector))

    def snapshot_list(self) -> dict[str, Any]:
        """Every readable snapshot's summary, and a warning for each file that is not one."""
        snaps, warnings = self.snapshots.all()
        return {"snapshots": [s.summary() for s in snaps], "warnings": warnings}

    def snapshot_show(self, name: str) -> GpuSnapshot:
        return self.snapshots.load(name)

    def snapshot_delete(self, name: str) -> None:
        self.snapshots.delete(name)

    @property
    def journal(self) -> Journal:
        """The journal, created if needed (only for callers allowed to change things)."""
        if self._journal is None:
            self._journal = Journal()
        return self._journal

    def journal_if_exists(self) -> Journal | None:
        """The journal for reading, if it exists and this user may read it."""
        if self._journal is None:
            self._journal = Journal.if_exists()
        return self._journal

    def _live_for(self, gpus: Sequence[Gpu]) -> list[dict[str, Any]]:
        j = self.journal_if_exists()
        if j is None:
            return []
        uuids = {g.uuid for g in gpus}
        return [t.to_json() for t in j.live() if uuids & set(t.gpus)]

    async def transact(
        self, kind: str, description: str, writes: list[Write], options: TxOptions
    ) -> TxReport:
        for w in writes:
            settings.validate(w.gpu, w.field, w.value)
        require_root([w.gpu for w in writes])
        return await run(self.journal, kind, description, writes, options, fanstore.load_curves())

    def _direct(self, kind: str, writes: list[Write]) -> list[Outcome]:
        """Writes that only move towards defaults: validated, journaled (refused while a
        live transaction holds one of the GPUs), applied, read back; a value the driver
        ignored is an error (exit 1), never reported as success."""
        for w in writes:
            settings.validate(w.gpu, w.field, w.value)
        gpus = list({w.gpu.uuid: w.gpu for w in writes}.values())
        if not gpus:
            return []
        require_root(gpus)
        journal = self.journal
        tx_id, before = begin(journal, kind, kind, gpus, fanstore.load_curves())
        outcomes = []
        try:
            for w in writes:
                prior = before.gpus[w.gpu.uuid].config.get(w.field)
                outcomes.append(settings.apply(w.gpu, w.field, w.value, journal, prior))
        except BaseException as exc:
            done = ", ".join(o.field for o in outcomes) or "nothing"
            journal.finish(tx_id, COMMITTED, f"stopped after {done}: {exc}")
            raise
        ignored = [o for o in outcomes if o.failed]
        journal.finish(tx_id, COMMITTED, "; ".join(o.describe() for o in ignored) or None)
        if ignored:
            raise NvctlError("; ".join(o.describe() for o in ignored))
        return outcomes

    # ------------------------------------------------------------ offsets

    async def offsets_status(self, selector: str | None) -> list[dict[str, Any]]:
        def one(g: Gpu) -> dict[str, Any]:
            api = settings.offset_api(g)
            pstates: dict[str, Any] = {}
            for p in settings.offset_pstates(g) if api else []:
                entry = {d: settings.offset_info(g, p, d) for d in settings.DOMAINS}
                if any(entry.values()):
                    pstates[f"P{p}"] = entry
            return {
                "index": g.index,
                "uuid": g.uuid,
                "name": g.name,
                "api": api,
                "units": "NVML MHz (nvidia-settings' memory transfer-rate offset = 2 x memory_mhz)",
                "pstates": pstates,
                "transactions": self._live_for([g]),
            }

        return each_gpu(self.select(selector), one)

    async def apply_offsets(
        self,
        selector: str | None,
        graphics_mhz: int | None,
        memory_mhz: int | None,
        pstate: str,
        options: TxOptions,
    ) -> TxReport:
        if graphics_mhz is None and memory_mhz is None:
            raise InvalidInput("give --gpu-offset and/or --memory-offset")
        gpus = self.select(selector)
        writes = []
        for g in gpus:
            if graphics_mhz is not None:
                writes.append(Write(g, f"offsets.{pstate}.graphics_mhz", graphics_mhz))
            if memory_mhz is not None:
                writes.append(Write(g, f"offsets.{pstate}.memory_mhz", memory_mhz))
        parts = [
            f"graphics {graphics_mhz:+d} MHz" if graphics_mhz is not None else "",
            f"memory {memory_mhz:+d} MHz" if memory_mhz is not None else "",
        ]
        what = ", ".join(p for p in parts if p)
        desc = f"overclock {what} at {pstate} on " + ", ".join(f"GPU {g.index}" for g in gpus)
        return await self.transact("overclock apply", desc, writes, options)

    async def reset_offsets(self, selector: str | None) -> list[Outcome]:
        writes = []
        for g in self.select(selector):
            if settings.offset_api(g) is None:
                raise Unsupported(f"{g.label}: this GPU or driver has no clock offsets to reset")
            for p in settings.offset_pstates(g):
                for d in settings.DOMAINS:
                    info = settings.offset_info(g, p, d)
                    if info is not None and info["offset_mhz"] != 0:
                        writes.append(Write(g, f"offsets.P{p}.{d}_mhz", 0))
        return self._direct("overclock reset", writes)

    # ------------------------------------------------------------ locked clocks

    async def lock_clocks(
        self,
        selector: str | None,
        graphics: tuple[int, int] | None,
        memory: tuple[int, int] | None,
        options: TxOptions,
    ) -> TxReport:
        if graphics is None and memory is None:
            raise InvalidInput("give --gpu MIN,MAX and/or --memory MIN,MAX")
        gpus = self.select(selector)
        writes = []
        for g in gpus:
            if graphics is not None:
                writes.append(Write(g, "locked_clocks.graphics_mhz", list(graphics)))
            if memory is not None:
                writes.append(Write(g, "locked_clocks.memory_mhz", list(memory)))
        desc = "lock clocks " + ", ".join(
            f"{n} {s[0]}-{s[1]} MHz" for n, s in (("graphics", graphics), ("memory", memory)) if s
        )
        return await self.transact("clocks lock", desc, writes, options)

    async def reset_clocks(self, selector: str | None) -> list[Outcome]:
        writes = [
            Write(g, f"locked_clocks.{d}_mhz", "unlocked")
            for g in self.select(selector)
            for d in settings.DOMAINS
        ]
        return self._direct("clocks reset", writes)

    def locked_clocks(self, gpu: Gpu) -> dict[str, list[int] | None]:
        j = self.journal_if_exists()
        locks = j.locked_clocks(gpu.uuid) if j else {}
        return {f"{d}_mhz": list(locks[d]) if d in locks else None for d in settings.DOMAINS}

    # ------------------------------------------------------------ power

    async def power_status(self, selector: str | None) -> list[dict[str, Any]]:
        def one(g: Gpu) -> dict[str, Any]:
            rng = settings.power_range_w(g)
            pct = percent_range(*rng) if rng else None
            limit = g.get(pynvml.nvmlDeviceGetPowerManagementLimit)
            default = rng[2] if rng else None
            limit_w = watts(limit)
            return {
                "index": g.index,
                "uuid": g.uuid,
                "name": g.name,
                "usage_w": watts(g.get(pynvml.nvmlDeviceGetPowerUsage)),
                "limit_w": limit_w,
                "limit_pct_of_default": round(100 * limit_w / default, 1)
                if limit_w and default
                else None,
                "default_limit_w": default,
                "min_limit_w": rng[0] if rng else None,
                "max_limit_w": rng[1] if rng else None,
                "min_limit_pct": pct[0] if pct else None,
                "max_limit_pct": pct[1] if pct else None,
                "persistence_mode": settings.read_field(g, "persistence_mode", None),
                "transactions": self._live_for([g]),
            }

        return each_gpu(self.select(selector), one)

    async def set_power_limit(
        self,
        selector: str | None,
        watts_: float | None,
        percent: float | None,
        options: TxOptions,
    ) -> TxReport:
        if (watts_ is None) == (percent is None):
            raise InvalidInput("give exactly one of --watts W or --percent P")
        gpus = self.select(selector)
        writes = []
        for g in gpus:
            target = watts_
            if percent is not None:
                rng = settings.power_range_w(g)
                if rng is None:
                    raise Unsupported(f"{g.label}: this GPU has no adjustable power limit")
                target = round(rng[2] * percent / 100.0, 3)
            assert target is not None
            writes.append(Write(g, "power_limit_w", target))
        both = []  # watts and percent of the default, per distinct board default
        for w in writes:
            rng = settings.power_range_w(w.gpu)
            pct = f" = {100 * w.value / rng[2]:.0f}% of the {rng[2]:g} W default" if rng else ""
            if f"{w.value:g} W{pct}" not in both:
                both.append(f"{w.value:g} W{pct}")
        desc = "power limit " + "; ".join(both)
        return await self.transact("power limit", desc, writes, options)

    async def reset_power(self, selector: str | None) -> list[Outcome]:
        writes = []
        for g in self.select(selector):
            rng = settings.power_range_w(g)
            if rng is None:
                raise Unsupported(f"{g.label}: this GPU has no adjustable power limit")
            writes.append(Write(g, "power_limit_w", rng[2]))
        return self._direct("power reset", writes)

    async def set_persistence(self, selector: str | None, on: bool) -> list[Outcome]:
        writes = [Write(g, "persistence_mode", on) for g in self.select(selector)]
        return self._direct(f"persistence {'on' if on else 'off'}", writes)

    # ------------------------------------------------------------ fans

    async def fan_status(self, selector: str | None) -> list[dict[str, Any]]:
        curves = fanstore.load_curves()
        j = self.journal_if_exists()
        controllers = j.fan_controllers() if j else []

        def one(g: Gpu) -> dict[str, Any]:
            fans = []
            for i in range(settings.fan_count(g)):
                policy = settings.read_fan(g, i)
                fans.append(
                    {
                        "index": i,
                        "speed_pct": g.get(pynvml.nvmlDeviceGetFanSpeed_v2, i),
                        "target_pct": g.get(pynvml.nvmlDeviceGetTargetFanSpeed, i),
                        "policy": policy["policy"] if policy else None,
                    }
                )
            curve = curves.get(g.uuid)
            return {
                "index": g.index,
                "uuid": g.uuid,
                "name": g.name,
                "temperature_c": g.get(
                    pynvml.nvmlDeviceGetTemperature, pynvml.NVML_TEMPERATURE_GPU
                ),
                "speed_range_pct": list(settings.fan_range(g)),
                "fans": fans,
                "curve": curve.to_dict() if curve else None,
                "curve_controller_pid": next(
                    (c["pid"] for c in controllers if c["alive"] and g.uuid in c["gpus"]), None
                ),
                "transactions": self._live_for([g]),
            }

        return each_gpu(self.select(selector), one)

    def _fan_indexes(self, g: Gpu, fan: int | None) -> list[int]:
        count = settings.fan_count(g)
        if count == 0:
            raise Unsupported(f"{g.label}: this GPU has no controllable fans")
        return list(range(count)) if fan is None else [fan]

    def _curve_controller_free(self, gpus: Sequence[Gpu]) -> None:
        j = self.journal_if_exists()
        for c in j.fan_controllers() if j else []:
            driven = [g.label for g in gpus if g.uuid in c["gpus"]]
            if c["alive"] and driven:
                raise Busy(
                    f"the fan-curve controller (process {c['pid']}) drives the fans of "
                    + ", ".join(driven)
                    + "; nothing was changed",
                    hint=f"stop it first (kill {c['pid']}); its fans then return to automatic",
                )

    async def set_fans(
        self, selector: str | None, fan: int | None, percent: int, options: TxOptions
    ) -> TxReport:
        self._curve_controller_free(self.select(selector))
        writes = [
            Write(g, f"fans.{i}", {"policy": "manual", "speed_pct": percent})
            for g in self.select(selector)
            for i in self._fan_indexes(g, fan)
        ]
        which = "all fans" if fan is None else f"fan {fan}"
        return await self.transact("fan set", f"{which} to {percent}%", writes, options)

    async def fans_auto(self, selector: str | None) -> list[Outcome]:
        self._curve_controller_free(self.select(selector))
        writes = [
            Write(g, f"fans.{i}", {"policy": "auto"})
            for g in self.select(selector)
            for i in self._fan_indexes(g, None)
        ]
        return self._direct("fan auto", writes)

    def _not_held(self, gpus: Sequence[Gpu]) -> None:
        """Refuse a change outside the journal while a live transaction holds a GPU: its
        rollback would silently overwrite the change."""
        j = self.journal_if_exists()
        uuids = {g.uuid for g in gpus}
        for t in j.live() if j else []:
            if uuids & set(t.gpus) and t.owner_alive:
                raise busy(t, gpus)

    async def set_fan_curve(self, selector: str | None, curve: FanCurve) -> list[dict[str, Any]]:
        out = []
        self._not_held(self.select(selector))
        for g in self.select(selector):
            lo, hi = settings.fan_range(g)
            from nvcontrol.control.fancurve import make_curve

            checked = make_curve(list(curve.points), curve.hysteresis_c, min_pct=lo, max_pct=hi)
            if settings.fan_count(g) == 0:
                raise Unsupported(f"{g.label}: this GPU has no controllable fans")
            fanstore.save_curve(g.uuid, checked)
            out.append({"index": g.index, "uuid": g.uuid, "curve": checked.to_dict()})
        return out

    # ------------------------------------------------------------ snapshots

    async def snapshot_create(
        self, name: str, selector: str | None, *, overwrite: bool = False
    ) -> GpuSnapshot:
        check_name(name)
        if self.snapshots.exists(name) and not overwrite:
            raise SnapshotError(
                f"snapshot {name!r} already exists",
                hint=f"delete it first (`nvctl snapshot delete {name}`) or pick another name",
            )
        journal, curves = self.journal_if_exists(), fanstore.load_curves()
        rows = each_gpu(
            self.select(selector),
            lambda g: {"entry": capture([g], journal, curves, name).gpus[g.uuid]},
        )
        if all(r["lost"] for r in rows):
            raise SomeGpusLost(
                "every selected GPU is lost (fallen off the bus); nothing was saved", hint=LOST_HINT
            )
        snap = GpuSnapshot(
            name, now_iso(), {r["entry"].uuid: r["entry"] for r in rows if not r["lost"]}
        )
        # What is written passes the schema every reader applies.
        snap = GpuSnapshot.from_dict(snap.to_dict(), source="the GPUs' live state")
        self.snapshots.save(snap, overwrite=overwrite)
        raise_if_lost(rows, f"saved in snapshot {name!r}; the lost GPU is not in it")
        return snap

    async def snapshot_diff(self, name: str, selector: str | None) -> list[dict[str, Any]]:
        snap = self._here(self._scoped(self.snapshots.load(name), selector))
        gpus = self.nvml.by_uuid(snap.gpus)
        return diff(snap, live_configs(gpus, self.journal_if_exists(), fanstore.load_curves()))

    async def snapshot_notes(self, name: str, selector: str | None) -> list[str]:
        """What a diff or restore of ``name`` should tell besides the differences: GPUs of
        the snapshot this machine lacks, and lock records a driver reload made stale."""
        snap = self._scoped(self.snapshots.load(name), selector)
        notes = []
        missing = missing_gpus(snap, (g.uuid for g in self.nvml.gpus))
        if missing is not None:
            notes.append(missing.message)
        journal = self.journal_if_exists()
        for g in self.nvml.by_uuid(snap.gpus):
            notes += locks.stale(g, journal)
        return notes

    def _here(self, snap: GpuSnapshot) -> GpuSnapshot:
        """``snap``, refused with a clear description when none of its GPUs is here."""
        missing = missing_gpus(snap, (g.uuid for g in self.nvml.gpus))
        if missing is not None and len(self.nvml.by_uuid(snap.gpus)) == 0:
            raise missing
        return snap

    def _scoped(self, snap: GpuSnapshot, selector: str | None) -> GpuSnapshot:
        if selector is None:
            return snap
        wanted = {g.uuid for g in self.select(selector)}
        kept = {u: e for u, e in snap.gpus.items() if u in wanted}
        if not kept:
            raise SnapshotError(f"snapshot {snap.name!r} holds none of the selected GPUs")
        return GpuSnapshot(snap.name, snap.created, kept)

    async def snapshot_restore(
        self, name: str, selector: str | None, options: TxOptions
    ) -> TxReport | None:
        """Restore as one transaction; ``None`` when the live state already matches."""
        snap = self._scoped(self.snapshots.load(name), selector)
        missing = missing_gpus(snap, (g.uuid for g in self.nvml.gpus))
        if missing is not None:
            raise missing
        gpus = {g.uuid: g for g in self.nvml.by_uuid(snap.gpus)}
        plan = plan_restore(
            diff(
                snap,
                live_configs(list(gpus.values()), self.journal_if_exists(), fanstore.load_curves()),
            )
        )
        if not plan:
            return None
        writes = [Write(gpus[u], f, v) for u, f, v in plan]
        return await self.transact("snapshot restore", f"restore snapshot {name}", writes, options)

    def snapshot_import(self, path: str, name: str | None, *, overwrite: bool) -> GpuSnapshot:
        """Store the snapshot file at ``path`` (on this host)."""
        return self.snapshot_store(read_text_limited(path), name, overwrite)

    def snapshot_export(self, name: str, path: str) -> None:
        """Write snapshot ``name`` to the file ``path`` (on this host)."""
        with fs_errors(path), open(path, "w") as f:
            f.write(self.snapshot_document(name))

    # ------------------------------------------------------------ transactions

    def transactions(self, limit: int = 20) -> list[TxRecord]:
        j = self.journal_if_exists()
        return j.recent(limit) if j else []

    def confirm(self, tx_id: int | None, wait_s: float = 5.0) -> TxRecord:
        """Confirm a live transaction (from any shell); waits for its owner to commit."""
        j = self.journal_if_exists()
        live = [t for t in (j.live() if j else []) if t.state == OPEN and t.owner_alive]
        if tx_id is None:
            if len(live) != 1:
                listing = ", ".join(f"{t.id} ({t.description})" for t in live) or "none"
                raise InvalidInput(
                    "name the transaction to confirm" if live else "no transaction is waiting",
                    hint=f"live transactions: {listing}",
                )
            tx_id = live[0].id
        elif not any(t.id == tx_id for t in live):
            raise InvalidInput(
                f"transaction {tx_id} is not waiting for confirmation",
                hint="`nvctl confirm` without an id confirms the only live one",
            )
        assert j is not None
        if os.geteuid() != 0:
            require_root(self.nvml.by_uuid(next(t.gpus for t in live if t.id == tx_id)))
        j.confirm(tx_id)
        end = time.monotonic() + wait_s
        while time.monotonic() < end:
            rec = j.get(tx_id)
            if rec is not None and rec.state != OPEN:
                return rec
            time.sleep(0.05)
        rec = j.get(tx_id)
        assert rec is not None
        return rec
