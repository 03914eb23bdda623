"""Runs one change as a transaction against NVML: the I/O adapter of ``transaction``.

validate (driver ranges, root) → journal the pre-transaction snapshot durably → apply each
write with read-back → watch (Xid events, lost GPU, temperature guard, new throttling)
and wait for confirmation when asked → commit, or restore the snapshot and raise
:class:`~nvcontrol.control.errors.RolledBack` (exit 5) naming the cause.  A signal or an
exception on the way rolls back too; a ``kill -9`` leaves the journal row that the next
``nvctl`` repairs (:mod:`nvcontrol.control.recovery`).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from basis.errors import PermissionDenied, UserError
from nvcontrol.control import settings
from nvcontrol.control.errors import Busy, RolledBack
from nvcontrol.control.fancurve import FanCurve
from nvcontrol.control.journal import COMMITTED, ROLLBACK_PENDING, ROLLED_BACK, Journal, TxRecord
from nvcontrol.control.monitor import StabilityMonitor
from nvcontrol.control.snapshots import GpuEntry, GpuSnapshot, diff, now_iso, plan_restore
from nvcontrol.control.transaction import (
    AskConfirm,
    Commit,
    Outcome,
    Policy,
    Rollback,
    Transaction,
)
from nvcontrol.errors import GpuLost
from nvcontrol.nvml import Gpu

POLL_S = 0.1


@dataclass(frozen=True)
class Write:
    gpu: Gpu
    field: str
    value: Any


@dataclass
class TxOptions:
    window_s: float = 5.0
    confirm: bool = False
    confirm_timeout_s: float = 15.0
    temp_guard_c: float | None = None
    # Progress for the user: ("journaled"|"applied"|"confirm"|"committed"|"rolled_back", data)
    progress: Callable[[str, dict[str, Any]], None] | None = None
    # Answers typed at a prompt (True = keep, False = revert); None = no prompt.
    answers: asyncio.Queue[bool] | None = None


@dataclass
class TxReport:
    id: int
    kind: str
    description: str
    outcomes: list[Outcome] = field(default_factory=list)
    committed: bool = False
    cause: str | None = None
    window_s: float = 0.0
    seconds: float = 0.0
    max_temperature_c: dict[str, float] = field(default_factory=dict)
    restore_problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "transaction": self.id,
            "kind": self.kind,
            "description": self.description,
            "result": "committed" if self.committed else "rolled_back",
            "cause": self.cause,
            "window_s": self.window_s,
            "seconds": round(self.seconds, 3),
            "changes": [o.to_json() for o in self.outcomes],
            "max_temperature_c": self.max_temperature_c,
            "restore_problems": self.restore_problems,
        }


def require_root(gpus: Sequence[Gpu]) -> None:
    if os.geteuid() != 0:
        names = ", ".join(g.label for g in gpus)
        raise PermissionDenied(
            f"changing settings of {names} needs root; nothing was changed",
            hint="run the command with sudo (NVML setters are refused to other users)",
        )


def capture(
    gpus: Sequence[Gpu], journal: Journal | None, curves: dict[str, FanCurve], name: str
) -> GpuSnapshot:
    snap = GpuSnapshot(name, now_iso())
    for g in gpus:
        snap.gpus[g.uuid] = GpuEntry(
            g.uuid, g.name, g.index, g.pci_bus_id, settings.read_config(g, journal, curves)
        )
    return snap


def live_configs(
    gpus: Sequence[Gpu], journal: Journal | None, curves: dict[str, FanCurve]
) -> dict[str, tuple[int, dict[str, Any]]]:
    return {g.uuid: (g.index, settings.read_config(g, journal, curves)) for g in gpus}


def restore(gpus: Sequence[Gpu], journal: Journal, snap: GpuSnapshot) -> list[str]:
    """Best-effort: bring the GPUs back to ``snap``, one GPU at a time (a lost GPU does not
    stop the others); returns what could not be restored (empty = the live state matches
    again, checked by a fresh diff)."""
    from nvcontrol.control.fanstore import load_curves

    problems: list[str] = []
    for gpu in (g for g in gpus if g.uuid in snap.gpus):
        scoped = GpuSnapshot(snap.name, snap.created, {gpu.uuid: snap.gpus[gpu.uuid]})
        try:
            writes = plan_restore(diff(scoped, live_configs([gpu], journal, load_curves())))
            failed = False
            for _uuid, name, value in writes:
                try:
                    settings.apply(gpu, name, value, journal, None)
                except GpuLost:
                    raise
                except UserError as err:
                    problems.append(f"{gpu.label}: {name}: {err.message}")
                    failed = True
            if not failed:
                left = diff(scoped, live_configs([gpu], journal, load_curves()))
                problems += [
                    f"{gpu.label}: {d['field']} is {d['live']}, not {d['snapshot']}" for d in left
                ]
        except GpuLost:
            problems.append(f"{gpu.label} has fallen off the bus")
    return problems


async def run(
    journal: Journal,
    kind: str,
    description: str,
    writes: Sequence[Write],
    options: TxOptions,
    curves: dict[str, FanCurve],
) -> TxReport:
    """Run ``writes`` as one transaction; returns the committed report or raises."""
    gpus = list({w.gpu.uuid: w.gpu for w in writes}.values())
    for w in writes:
        settings.validate(w.gpu, w.field, w.value)
    require_root(gpus)
    started = time.monotonic()
    before = capture(gpus, journal, curves, f"before-{kind.replace(' ', '-')}")
    try:
        tx_id = journal.begin(kind, description, [g.uuid for g in gpus], before.to_dict())
    except LookupError as exc:
        other: TxRecord = exc.args[0]
        raise Busy(
            f"transaction {other.id} ({other.description}) of process {other.owner_pid} is "
            "still live on the same GPU; nothing was changed",
            hint=f"confirm it with `nvctl confirm {other.id}`, or wait for it to finish",
        ) from None
    report = TxReport(tx_id, kind, description, window_s=options.window_s)
    _say(options, "journaled", {"id": tx_id})
    monitor: StabilityMonitor | None = None
    try:
        monitor = StabilityMonitor(gpus, options.temp_guard_c)
        policy = Policy(options.window_s, options.confirm, options.confirm_timeout_s)
        machine = Transaction(policy, baseline_reasons=monitor.baseline())
        machine.begin(time.monotonic())
        for w in writes:
            prior = before.gpus[w.gpu.uuid].config.get(w.field)
            try:
                report.outcomes.append(settings.apply(w.gpu, w.field, w.value, journal, prior))
            except UserError as err:
                if not report.outcomes:
                    raise  # the very first write was refused: nothing changed, keep its code
                report.outcomes.append(
                    Outcome(
                        w.gpu.uuid,
                        w.gpu.label,
                        w.field,
                        w.value,
                        prior,
                        None,
                        "failed",
                        err.message,
                    )
                )
                break
        _say(options, "applied", {"id": tx_id, "outcomes": report.outcomes})
        actions = machine.applied(time.monotonic(), report.outcomes)
        while True:
            for action in actions:
                if isinstance(action, AskConfirm):
                    journal.set_deadline(tx_id, time.time() + (action.deadline - time.monotonic()))
                    _say(options, "confirm", {"id": tx_id, "timeout_s": options.confirm_timeout_s})
                elif isinstance(action, Commit):
                    journal.finish(tx_id, COMMITTED)
                    report.committed = True
                    report.seconds = time.monotonic() - started
                    report.max_temperature_c = dict(monitor.max_temp)
                    _say(options, "committed", {"id": tx_id})
                    return report
                elif isinstance(action, Rollback):
                    raise _Revert(action.cause)
            observations = await asyncio.to_thread(monitor.poll, _wait(machine))
            now = time.monotonic()
            actions = machine.observe(now, observations)
            if not actions and journal.is_confirmed(tx_id):
                actions = machine.confirm(now)
            if not actions and options.answers is not None and not options.answers.empty():
                keep = options.answers.get_nowait()
                actions = machine.confirm(now) if keep else machine.decline(now)
            if not actions:
                actions = machine.tick(now)
    except _Revert as revert:
        cause = revert.cause
    except BaseException as exc:
        if isinstance(exc, UserError) and not report.outcomes:
            journal.finish(tx_id, ROLLED_BACK, f"nothing changed: {exc.message}")
            raise
        cause = _interrupted(exc)
        _rollback(journal, tx_id, gpus, before, report, cause, options)
        raise
    finally:
        if monitor is not None:
            monitor.close()
    _rollback(journal, tx_id, gpus, before, report, cause, options)
    raise RolledBack(cause, report=report, hint=_hint(report))


class _Revert(Exception):
    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


def _wait(machine: Transaction) -> float:
    deadline = machine.next_deadline()
    if deadline is None:
        return POLL_S
    return max(0.0, min(POLL_S, deadline - time.monotonic()))


def _interrupted(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError):
        return "interrupted before the change was committed"
    if isinstance(exc, UserError):
        return exc.message
    return f"internal error: {exc.__class__.__name__}: {exc}"


def _rollback(
    journal: Journal,
    tx_id: int,
    gpus: Sequence[Gpu],
    before: GpuSnapshot,
    report: TxReport,
    cause: str,
    options: TxOptions,
) -> None:
    report.cause = cause
    report.seconds = 0.0
    problems = restore(gpus, journal, before)
    report.restore_problems = problems
    state = ROLLBACK_PENDING if problems else ROLLED_BACK
    journal.finish(
        tx_id, state, cause + ("; not yet restored: " + "; ".join(problems) if problems else "")
    )
    _say(options, "rolled_back", {"id": tx_id, "cause": cause, "problems": problems})


def _hint(report: TxReport) -> str | None:
    if report.restore_problems:
        return (
            "some settings could not be restored yet ("
            + "; ".join(report.restore_problems)
            + "); the next nvctl command retries once the GPU is back (on nvsim: `nvsim reset`)"
        )
    return None


def _say(options: TxOptions, event: str, data: dict[str, Any]) -> None:
    if options.progress is not None:
        options.progress(event, data)
