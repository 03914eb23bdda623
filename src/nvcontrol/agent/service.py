"""What the agent does with a call, whatever carried it (QUIC or the HTTPS API).

For each call: look the method up in :data:`nvcontrol.remote.api.METHODS`, check the
arguments against ``GpuManager``'s signature and the caller's role (read again from the
key store, so a revoked key stops at its next call), run it on the NVML worker, and audit
every mutation with the GPU configuration before and after.

A transaction's progress goes back to its caller as events; a confirmation (from the
caller's prompt, from ``nvctl confirm`` on any connection, or from the dashboard) reaches
the running transaction as an event on its answer queue — the journal's confirmed flag is
still written, as the crash record.  A caller that goes away mid-transaction interrupts
it, and the runner reverts the change (the dead-man's switch).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from basis.errors import ExitCode, InvalidInput, NotFound, PermissionDenied, UserError
from nvcontrol.agent import audit, keyadmin, keys
from nvcontrol.agent.readcache import ReadCache
from nvcontrol.agent.worker import Interrupted, NvmlWorker
from nvcontrol.control import fanstore, settings
from nvcontrol.control.errors import RolledBack
from nvcontrol.control.journal import OPEN
from nvcontrol.control.manager import GpuManager
from nvcontrol.control.runner import TxOptions, TxReport
from nvcontrol.control.snapshots import MAX_BYTES
from nvcontrol.remote import api

Emit = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Caller:
    key: str  # key fingerprint, or "token:<name>" for a dashboard login
    role: str
    origin: str  # "quic" | "https"


@dataclass
class LiveTx:
    id: int
    description: str
    owner: str
    answers: asyncio.Queue[bool]  # lives on the worker loop
    done: asyncio.Event = field(default_factory=asyncio.Event)
    deadline: float | None = None  # wall clock, while waiting for confirmation


class Service:
    def __init__(
        self, worker: NvmlWorker, db: sqlite3.Connection, reads: ReadCache | None = None
    ) -> None:
        self.worker = worker
        self.db = db
        self.reads = reads if reads is not None else ReadCache()
        self.live: dict[int, LiveTx] = {}
        self.outcomes: dict[str, int] = {}  # transaction results, for /metrics
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self._pending_audits: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ entry

    def current_role(self, caller: Caller) -> str:
        if caller.key.startswith("token:"):
            return caller.role
        role, why = keys.role_of(self.db, caller.key)
        if role is None:
            raise PermissionDenied(f"key {caller.key} is no longer authorized ({why})")
        return role

    async def call(
        self,
        caller: Caller,
        name: str,
        params: dict[str, Any],
        emit: Emit | None = None,
        messages: asyncio.Queue[dict[str, Any]] | None = None,
    ) -> Any:
        name = api.ALIASES.get(name, name)
        method = api.METHODS.get(name)
        own = name in AGENT_OWN
        local = None if own else getattr(GpuManager, name, None)
        if method is None or (local is None and not own):
            raise NotFound(f"the agent has no method {name!r}")
        role = self.current_role(caller)
        if not api.role_allows(role, method.role):
            if method.mutates:
                self._audit(caller, role, name, params, {}, {}, "denied", ExitCode.PERMISSION,
                            f"role {role} may not {name}")  # fmt: skip
            raise PermissionDenied(
                f"role {role} may not call {name} (it needs {method.role})",
                hint="an admin can change the key's role with `nvctl agent authorize`",
            )
        if own:
            return self._own(caller, role, name, params)
        assert local is not None
        kwargs = check_params(local, api.decode_params(params))
        if not method.mutates:

            async def load() -> Any:
                return api.encode_value(await self.worker.run(lambda m: getattr(m, name)(**kwargs)))

            return await self.reads.read(name, kwargs, load)
        self.reads.begin_change()
        try:
            if name == "confirm":
                return api.encode_value(await self.confirm(caller, role, kwargs))
            return await self._mutate(caller, role, name, params, kwargs, method, emit, messages)
        finally:
            self.reads.end_change()

    def _own(self, caller: Caller, role: str, name: str, params: dict[str, Any]) -> Any:
        """The agent's own methods: its audit log and key store (admin only)."""
        unknown = sorted(set(params) - AGENT_OWN[name])
        if unknown:
            raise InvalidInput(f"unknown argument(s): {', '.join(unknown)}")
        if name == "audit":
            limit = params.get("limit", 100)
            if not isinstance(limit, int) or isinstance(limit, bool) or not 0 < limit <= 10000:
                raise InvalidInput("audit: limit must be an integer from 1 to 10000")
            return audit.read(self.db, limit)
        if name == "key_list":
            return keyadmin.listing(self.db)
        who = {"who": caller.key, "who_role": role, "origin": caller.origin}
        if name == "key_authorize":
            pubkey, new_role = _text(params, "pubkey"), _text(params, "role")
            return keyadmin.authorize(self.db, pubkey, new_role, **who)
        return keyadmin.revoke(self.db, _text(params, "key"), **who)

    # ------------------------------------------------------------------ mutations

    async def _mutate(
        self,
        caller: Caller,
        role: str,
        name: str,
        params: dict[str, Any],
        kwargs: dict[str, Any],
        method: api.Method,
        emit: Emit | None,
        messages: asyncio.Queue[dict[str, Any]] | None,
    ) -> Any:
        before = await self.worker.run(configs)
        live: list[LiveTx] = []
        forward: asyncio.Task[None] | None = None
        if method.transaction:
            kwargs["options"] = self._options(caller, kwargs.get("options"), emit, live)
            if messages is not None:
                forward = asyncio.ensure_future(self._answers(messages, kwargs["options"].answers))
        job = self.worker.submit(lambda m: getattr(m, name)(**kwargs))
        try:
            value = await job.result()
        except asyncio.CancelledError:
            job.interrupt()  # the caller is gone: the runner reverts (dead-man's switch)
            try:
                await job.result()
                result, code, message = "ok", 0, "finished after the caller went away"
            except BaseException as exc:
                result, code, message = _classify(exc)
                message = f"the caller went away: {message}"
            self._finish(method, live, forward, result)
            self._audit_after(caller, role, name, params, before, result, code, message)
            raise
        except BaseException as exc:
            result, code, message = _classify(exc)
            self._finish(method, live, forward, result)
            self._audit_after(caller, role, name, params, before, result, code, message)
            raise
        self._finish(method, live, forward, "ok")
        self._audit_after(caller, role, name, params, before, "ok", 0, None, value)
        return api.encode_value(value)

    def _finish(
        self,
        method: api.Method,
        live: list[LiveTx],
        forward: asyncio.Task[None] | None,
        result: str,
    ) -> None:
        if forward is not None:
            forward.cancel()
        for tx in live:
            tx.done.set()
            self.live.pop(tx.id, None)
            self._notify("transaction_done", {"id": tx.id, "result": result})
        if method.transaction and not method.job:
            self.outcomes[result] = self.outcomes.get(result, 0) + 1

    def _audit_after(
        self,
        caller: Caller,
        role: str,
        name: str,
        params: dict[str, Any],
        before: dict[str, Any],
        result: str,
        code: int,
        message: str | None,
        value: Any = None,
    ) -> None:
        async def later() -> None:
            try:
                after = await self.worker.run(configs)
            except Exception:
                after = {}
            b, a = audit.changed(before, after)
            note = message
            if note is None and isinstance(value, TxReport):
                note = f"transaction {value.id} committed"
            self._audit(caller, role, name, params, b, a, result, code, note)

        task = asyncio.ensure_future(later())
        self._pending_audits.add(task)
        task.add_done_callback(self._pending_audits.discard)

    async def flush_audits(self) -> None:
        if self._pending_audits:
            await asyncio.gather(*list(self._pending_audits), return_exceptions=True)

    def _audit(
        self,
        caller: Caller,
        role: str,
        name: str,
        params: dict[str, Any],
        before: dict[str, Any],
        after: dict[str, Any],
        result: str,
        code: int,
        message: str | None,
    ) -> None:
        entry = audit.Entry(caller.key, role, caller.origin, name, params, before, after,
                            result, int(code), message)  # fmt: skip
        audit.append(self.db, entry)
        self._notify("audit", {"action": name, "result": result})

    def _options(
        self, caller: Caller, given: Any, emit: Emit | None, live: list[LiveTx]
    ) -> TxOptions:
        raw = given if isinstance(given, dict) else {}
        opts = TxOptions(
            window_s=_number(raw, "window_s", 5.0, 0, 3600),
            confirm=bool(raw.get("confirm", False)),
            confirm_timeout_s=_number(raw, "confirm_timeout_s", 15.0, 0, 3600),
            temp_guard_c=_number(raw, "temp_guard_c", None, 0, 150),
        )
        main = asyncio.get_running_loop()
        # Only the worker loop ever uses this queue (the runner reads it, our puts go through
        # call_soon_threadsafe); an asyncio.Queue binds to a loop on first use.
        opts.answers = asyncio.Queue()

        def progress(event: str, data: dict[str, Any]) -> None:  # runs on the worker
            main.call_soon_threadsafe(self._progress, caller, event, data, emit, live, opts)

        opts.progress = progress
        return opts

    def _progress(
        self,
        caller: Caller,
        event: str,
        data: dict[str, Any],
        emit: Emit | None,
        live: list[LiveTx],
        opts: TxOptions,
    ) -> None:
        tx_id = data.get("id")
        if event == "journaled" and isinstance(tx_id, int) and opts.answers is not None:
            tx = LiveTx(tx_id, "", caller.key, opts.answers)
            live.append(tx)
            self.live[tx_id] = tx
        if event == "confirm" and isinstance(tx_id, int) and tx_id in self.live:
            self.live[tx_id].deadline = time.time() + float(data.get("timeout_s", 0))
        if emit is not None:
            emit({"event": event, "data": api.encode_value(data)})
        self._notify("transaction_" + event, api.encode_value(data))

    async def _answers(
        self, messages: asyncio.Queue[dict[str, Any]], answers: asyncio.Queue[bool] | None
    ) -> None:
        while answers is not None:
            msg = await messages.get()
            if msg.get("t") == "answer" and isinstance(msg.get("keep"), bool):
                self.worker.call_soon(answers.put_nowait, msg["keep"])

    # ------------------------------------------------------------------ confirm

    async def confirm(self, caller: Caller, role: str, kwargs: dict[str, Any]) -> Any:
        tx_id = kwargs.get("tx_id")
        wait_s = min(float(kwargs.get("wait_s", 5.0)), 30.0)
        mine = [t for t in self.live.values() if t.deadline is not None]
        if tx_id is None and len(mine) == 1:
            tx_id = mine[0].id
        tx = self.live.get(tx_id) if isinstance(tx_id, int) else None
        if tx is None:  # not run by this agent: the journal way (another process owns it)
            return await self.worker.run(lambda m: m.confirm(tx_id, wait_s))
        self.worker.call_soon(tx.answers.put_nowait, True)
        # the crash record; the event above is what the runner acts on
        await self.worker.run(lambda m: m.journal.confirm(tx.id))
        self._audit(caller, role, "confirm", {"tx_id": tx.id}, {}, {}, "ok", 0, None)
        try:
            await asyncio.wait_for(tx.done.wait(), wait_s)
        except TimeoutError:
            pass
        return await self.worker.run(lambda m: m.journal.get(tx.id))

    def live_transactions(self) -> list[dict[str, Any]]:
        now = time.time()
        return [
            {
                "id": t.id,
                "owner": t.owner,
                "confirm_in_s": None
                if t.deadline is None
                else max(0.0, round(t.deadline - now, 1)),
            }
            for t in self.live.values()
        ]

    def _notify(self, event: str, data: dict[str, Any]) -> None:
        for fn in list(self.listeners):
            fn(event, data)


def configs(m: GpuManager) -> dict[str, dict[str, Any]]:
    """Every GPU's configuration (for the audit log's before and after)."""
    journal = m.journal_if_exists()
    curves = fanstore.load_curves()
    return {g.uuid: settings.read_config(g, journal, curves) for g in m.nvml.gpus}


AGENT_OWN: dict[str, set[str]] = {  # method -> its arguments
    "audit": {"limit"},
    "key_list": set(),
    "key_authorize": {"pubkey", "role"},
    "key_revoke": {"key"},
}


def _text(params: dict[str, Any], key: str) -> str:
    v = params.get(key)
    if not isinstance(v, str) or not v.strip() or len(v) > 4096:
        raise InvalidInput(f"argument {key} must be a non-empty string")
    return v


def _classify(exc: BaseException) -> tuple[str, int, str]:
    if isinstance(exc, RolledBack):
        return "rolled_back", int(ExitCode.ROLLED_BACK), exc.message
    if isinstance(exc, Interrupted):
        return "rolled_back", int(ExitCode.ROLLED_BACK), "interrupted; the change was reverted"
    if isinstance(exc, UserError):
        return "error", int(exc.exit_code), exc.message
    return "error", int(ExitCode.FAILURE), _message(exc)


def _message(exc: BaseException) -> str:
    if isinstance(exc, UserError):
        return exc.message
    if isinstance(exc, Interrupted):
        return "interrupted; the change was reverted"
    return f"{exc.__class__.__name__}: {exc}"


def _number(raw: dict[str, Any], key: str, default: float | None, lo: float, hi: float) -> Any:
    v = raw.get(key, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise InvalidInput(f"options.{key} must be a finite number")
    if not lo <= v <= hi:
        raise InvalidInput(f"options.{key} must be between {lo:g} and {hi:g}")
    return float(v)


_LONGEST = {"document": MAX_BYTES}  # a snapshot document; every other string is short
_SIMPLE = {"str": str, "int": int, "float": (int, float), "bool": bool, "None": type(None)}


@functools.cache
def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(fn)  # ~30 µs each time: once per method is enough


def check_params(fn: Callable[..., Any], params: dict[str, Any]) -> dict[str, Any]:
    """``params`` bound to ``fn``'s signature, each value of its annotated type; anything
    else is invalid input (nothing runs)."""
    sig = _signature(fn)
    names = [p for p in sig.parameters if p != "self"]
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise InvalidInput(f"unknown argument(s): {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for pname in names:
        p = sig.parameters[pname]
        if pname not in params:
            if p.default is inspect.Parameter.empty and pname != "options":
                raise InvalidInput(f"missing argument: {pname}")
            continue
        value = params[pname]
        ann = p.annotation if isinstance(p.annotation, str) else ""
        allowed = [_SIMPLE[a.strip()] for a in ann.split("|") if a.strip() in _SIMPLE]
        if allowed and not _is(value, allowed):
            raise InvalidInput(f"argument {pname} must be {ann}, not {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(f"argument {pname} must be a finite number")
        if isinstance(value, str) and len(value) > _LONGEST.get(pname, 4096):
            raise InvalidInput(f"argument {pname} is too long")
        out[pname] = value
    return out


def _is(value: Any, allowed: list[Any]) -> bool:
    if isinstance(value, bool) and bool not in allowed:
        return False
    return any(isinstance(value, t) for t in allowed)


__all__ = ["OPEN", "Caller", "Service", "check_params", "configs"]
