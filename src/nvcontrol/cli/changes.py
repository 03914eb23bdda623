"""What every GPU-changing nvctl command shares: transaction options, the confirm prompt,
signal handling, and rendering of what a change did (requested vs applied)."""

from __future__ import annotations

import asyncio
import functools
import inspect
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, TypeVar

import click

from nvcontrol.cli.common import emit_json
from nvcontrol.cli.params import Float
from nvcontrol.control.errors import RolledBack
from nvcontrol.control.manager import GpuManager
from nvcontrol.control.runner import TxOptions, TxReport
from nvcontrol.control.transaction import Outcome
from nvcontrol.errors import NvctlError
from nvcontrol.remote.backend import open_backend
from nvcontrol.remote.target import confirm_command

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class TxFlags(NamedTuple):
    """The transaction options of a command line, as given (``confirm`` None = default)."""

    confirm: bool | None
    confirm_timeout: float
    window: float
    temp_guard: float | None


def tx_options(*, window: float = 5.0, confirm_help: str = "default: off") -> Callable[[F], F]:
    """--confirm/--no-confirm, --confirm-timeout, --window, --temp-guard, handed to the
    command as one ``tx: TxFlags`` argument."""

    def deco(command: F) -> F:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            kwargs["tx"] = TxFlags(
                kwargs.pop("confirm"),
                kwargs.pop("confirm_timeout"),
                kwargs.pop("window"),
                kwargs.pop("temp_guard"),
            )
            return command(*args, **kwargs)

        fn: Any = wrapper
        fn = click.option(
            "--temp-guard",
            type=Float(),
            default=None,
            metavar="C",
            help="Roll back if a GPU gets hotter than this (default: 2 °C below its slowdown "
            "threshold).",
        )(fn)
        fn = click.option(
            "--window",
            type=Float(0),
            default=window,
            show_default=True,
            metavar="S",
            help="Stability window: seconds to watch for Xid errors, a lost GPU, heat and "
            "new throttling before committing.",
        )(fn)
        fn = click.option(
            "--confirm-timeout",
            type=Float(0),
            default=15.0,
            show_default=True,
            metavar="S",
            help="Seconds to wait for confirmation before reverting.",
        )(fn)
        fn = click.option(
            "--confirm/--no-confirm",
            "confirm",
            default=None,
            help="Revert unless confirmed (at the prompt, or `nvctl confirm` from another "
            f"shell) within --confirm-timeout; {confirm_help}.  --no-confirm still watches "
            "the stability window.",
        )(fn)
        return fn  # type: ignore[no-any-return]

    return deco


def _progress(as_json: bool) -> Callable[[str, dict[str, Any]], None]:
    def say(event: str, data: dict[str, Any]) -> None:
        tx = data.get("id")
        if event == "applied" and not as_json:
            for o in data["outcomes"]:
                click.echo(outcome_line(o), err=True)
        elif event == "confirm":
            timeout = data["timeout_s"]
            if sys.stdin.isatty():
                click.echo(
                    f"Keep these settings? [y/N] — reverting in {timeout:g} s unless confirmed "
                    f"(or run `{confirm_command(tx)}` in another shell): ",
                    err=True,
                    nl=False,
                )
            else:
                click.echo(
                    f"transaction {tx}: waiting up to {timeout:g} s for `{confirm_command(tx)}`",
                    err=True,
                )
        elif event == "rolled_back":
            click.echo(f"transaction {tx}: rolled back ({data['cause']})", err=True)

    return say


def run_change(
    change: Callable[[GpuManager, TxOptions], Awaitable[TxReport | None]],
    tx: TxFlags,
    *,
    as_json: bool,
    confirm_by_default: bool = False,
) -> TxReport | None:
    """Run one transactional change with prompt and signals wired; renders the outcome."""
    confirm = confirm_by_default if tx.confirm is None else tx.confirm

    async def main() -> TxReport | None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, task.cancel)
        answers: asyncio.Queue[bool] | None = None
        if confirm and sys.stdin.isatty():
            answers = asyncio.Queue()
            queue = answers

            def on_line() -> None:
                line = sys.stdin.readline().strip().lower()
                queue.put_nowait(line in ("y", "yes"))

            loop.add_reader(sys.stdin.fileno(), on_line)
        options = TxOptions(
            window_s=tx.window,
            confirm=confirm,
            confirm_timeout_s=tx.confirm_timeout,
            temp_guard_c=tx.temp_guard,
            progress=_progress(as_json),
            answers=answers,
        )
        try:
            async with open_backend() as manager:
                return await change(manager, options)
        finally:
            if answers is not None:
                loop.remove_reader(sys.stdin.fileno())

    try:
        report = asyncio.run(main())
    except RolledBack as err:
        if as_json and isinstance(err.report, TxReport):
            emit_json(err.report.to_json())
        raise
    except asyncio.CancelledError:
        raise RolledBack("interrupted by a signal before the change was committed") from None
    if report is None:
        if as_json:
            emit_json({"transaction": None, "result": "unchanged", "changes": []})
        else:
            click.echo("nothing to change: the GPUs already match")
        return None
    if as_json:
        emit_json(report.to_json())
    else:
        guard = (
            ", max " + ", ".join(f"{t:g} °C" for t in report.max_temperature_c.values())
            if report.max_temperature_c
            else ""
        )
        click.echo(
            f"committed transaction {report.id} ({report.description}) after a "
            f"{report.window_s:g} s stability window{guard}"
        )
    return report


def outcome_line(o: Outcome) -> str:
    unit = {"power_limit_w": " W"}.get(o.field, " MHz" if o.field.startswith("offsets.") else "")
    if o.status == "snapped":
        return (
            f"{o.label}: {o.field}: requested {_v(o.requested)}{unit}, the driver snapped it "
            f"to {_v(o.applied)}{unit}"
        )
    if o.status == "recorded":
        return f"{o.label}: {o.field} = {_v(o.applied)} (set; NVML cannot read locked clocks back)"
    if o.status == "ok":
        return f"{o.label}: {o.field}: {_v(o.before)}{unit} -> {_v(o.applied)}{unit}"
    return o.describe()


def _v(value: Any) -> str:
    if isinstance(value, dict):
        if value.get("policy") == "manual":
            return f"manual {value.get('speed_pct')}%"
        if "policy" in value:
            return str(value["policy"])
        return str(value.get("points", value))
    if isinstance(value, list):
        return f"{value[0]}-{value[1]} MHz"
    if isinstance(value, float):
        return f"{value:g}"
    return "N/A" if value is None else str(value)


def outcomes_json(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    return [o.to_json() for o in outcomes]


def run_direct(
    change: Callable[[GpuManager], Awaitable[list[Outcome]]], *, as_json: bool, nothing: str
) -> None:
    """A direct (non-transactional) change: run, read back, render."""

    async def main() -> list[Outcome]:
        async with open_backend() as manager:
            return await change(manager)

    outcomes = asyncio.run(main())
    if as_json:
        emit_json({"changes": outcomes_json(outcomes)})
        return
    if not outcomes:
        click.echo(nothing)
    for o in outcomes:
        click.echo(outcome_line(o))


async def settled(value: T) -> T:
    """A manager method's value as an awaitable, for :func:`query`, whether the backend's
    method is sync (a local manager's file methods) or a coroutine (a remote one's)."""
    return value


def query(
    fn: Callable[[GpuManager], Awaitable[T]],
    *,
    interruptible: str | None = None,
    gpus: bool = True,
) -> T:
    """Run ``fn`` in a GPU session.  With ``interruptible`` (what to say when stopped),
    SIGTERM and SIGHUP cancel it, so its clean-up runs (a probe's load is taken off, a
    step's transaction rolled back) before the command exits 1.  ``gpus=False``: ``fn``
    needs no NVML (see :func:`~nvcontrol.remote.backend.open_backend`)."""

    async def main() -> T:
        if interruptible is not None:
            loop = asyncio.get_running_loop()
            task = asyncio.current_task()
            assert task is not None
            for sig in (signal.SIGTERM, signal.SIGHUP):
                loop.add_signal_handler(sig, task.cancel)
        async with open_backend(gpus=gpus) as manager:
            value: Any = fn(manager)
            # a local manager's sync methods return values, a remote one's are coroutines
            while inspect.isawaitable(value):
                value = await value
            return value  # type: ignore[no-any-return]

    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        raise NvctlError(f"interrupted by a signal: {interruptible}") from None
