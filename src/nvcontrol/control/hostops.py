"""``GpuManager``'s methods for what once only worked in a shell on the GPU host: snapshot
documents, the boot unit, and the long jobs (``fan curve run``, ``overclock test|auto``).

As methods of the manager they are part of the backend seam, so ``nvctl --remote`` runs
them on the agent like any other call:

- a snapshot crosses as its TOML document (export: the agent's document, written by the
  client; import: the client's document, validated again where it is stored);
- the boot unit is the agent host's (the host whose GPUs it restores);
- a long job runs where the GPUs are, for as long as its caller: its progress comes back
  as events, an answer on ``options.answers`` stops a fan curve, and a caller that goes
  away cancels the job, whose clean-up then runs on the agent (fans back to automatic
  control, the load taken off, an unfinished overclock step rolled back).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, cast

from nvcontrol.control.runner import TxOptions
from nvcontrol.control.snapshots import MAX_BYTES, GpuSnapshot, check_name

if TYPE_CHECKING:
    from nvcontrol.control.manager import GpuManager


def _say(options: TxOptions, event: str, data: dict[str, Any]) -> None:
    if options.progress is not None:
        options.progress(event, data)


class HostOps:
    """Mixed into ``GpuManager`` (``self`` is one)."""

    # ------------------------------------------------------------ snapshot documents

    def _manager(self) -> GpuManager:
        return cast("GpuManager", self)

    def snapshot_document(self, name: str) -> str:
        """Snapshot ``name`` as its TOML document (what ``snapshot export`` writes)."""
        return self._manager().snapshots.load(name).to_toml()

    def snapshot_store(
        self, document: str, name: str | None = None, overwrite: bool = False
    ) -> GpuSnapshot:
        """Validate a snapshot document and store it (``snapshot import``)."""
        if len(document.encode()) > MAX_BYTES:
            from basis.errors import InvalidInput

            raise InvalidInput(f"the snapshot document is larger than {MAX_BYTES} bytes")
        snap = GpuSnapshot.from_toml(document, source="the imported document")
        if name is not None:
            snap.name = check_name(name)
        self._manager().snapshots.save(snap, overwrite=overwrite)
        return snap

    # ------------------------------------------------------------ boot unit

    def boot_show(self) -> dict[str, Any]:
        from nvcontrol.control.boot import show_boot

        return show_boot().to_json()

    def boot_set(self, snapshot: str) -> dict[str, Any]:
        from nvcontrol.control.boot import set_boot

        return set_boot(snapshot).to_json()

    def boot_clear(self) -> dict[str, Any]:
        from nvcontrol.control.boot import clear_boot

        return clear_boot().to_json()

    # ------------------------------------------------------------ long jobs

    async def stability_test(
        self, selector: str | None, duration_s: float, temp_guard_c: float | None
    ) -> dict[str, Any]:
        """Load the GPUs and watch them (``overclock test``); changes no setting."""
        from nvcontrol.control.probe import stability_test

        m = self._manager()
        return await stability_test(
            m.select(selector), duration_s, temp_guard_c, journal=lambda: m.journal
        )

    async def overclock_auto(
        self,
        selector: str | None,
        max_graphics_mhz: int | None,
        max_memory_mhz: int | None,
        step_graphics_mhz: int,
        step_memory_mhz: int,
        step_s: float,
        pstate: str,
        save_as: str,
        options: TxOptions,
    ) -> dict[str, Any]:
        """Find the highest stable offsets (``overclock auto``); each step is a transaction.
        Progress lines arrive as ``note`` events."""
        from nvcontrol.control.probe import auto_tune

        result = await auto_tune(
            self._manager(),
            selector,
            max_graphics_mhz=max_graphics_mhz,
            max_memory_mhz=max_memory_mhz,
            step_graphics_mhz=step_graphics_mhz,
            step_memory_mhz=step_memory_mhz,
            step_s=step_s,
            pstate=pstate,
            save_as=check_name(save_as),
            progress=lambda text: _say(options, "note", {"text": text}),
        )
        return result.to_json()

    async def fan_curve_run(
        self, selector: str | None, interval_s: float, options: TxOptions
    ) -> dict[str, Any]:
        """Follow the stored fan curves until an answer arrives on ``options.answers`` (or
        the call is cancelled); the fans are under automatic control again either way.
        Each speed set is a ``fan`` event."""
        from nvcontrol.control.fancontrol import run_curves
        from nvcontrol.control.fanstore import load_curves

        if not 0.1 <= interval_s <= 3600:
            from basis.errors import InvalidInput

            raise InvalidInput("the fan curve interval must be from 0.1 to 3600 seconds")
        stop = asyncio.Event()
        watcher = None
        if options.answers is not None:
            answers = options.answers

            async def wait_for_stop() -> None:
                await answers.get()
                stop.set()

            watcher = asyncio.ensure_future(wait_for_stop())

        def report(gpu: Any, temp: float, pct: int) -> None:
            _say(options, "fan", {"uuid": gpu.uuid, "gpu": gpu.label, "temperature_c": temp,
                                  "speed_pct": pct})  # fmt: skip

        m = self._manager()
        gpus = m.select(selector)
        try:
            await run_curves(
                gpus, load_curves(), m.journal, interval_s=interval_s, stop=stop, report=report
            )
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
        return {"gpus": [g.uuid for g in gpus], "fans": "auto"}
