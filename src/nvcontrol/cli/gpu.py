"""``nvctl gpu list|info|watch`` — monitoring."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import click

from nvcontrol.cli.changes import query
from nvcontrol.cli.common import emit_json, emit_json_line, gpu_option, json_option, session
from nvcontrol.readings import sample_all
from nvcontrol.remote.target import target


@click.group()
def gpu() -> None:
    """List GPUs, read everything about them, watch them live."""


@gpu.command("list")
@gpu_option
@json_option
def list_cmd(selector: str | None, as_json: bool) -> None:
    """One line per GPU: index, name, UUID, PCI bus id, memory."""
    doc = query(lambda m: m.gpu_list(selector))
    system, rows = doc["driver"], doc["gpus"]
    if as_json:
        emit_json(doc)
        return
    from nvcontrol.cli.render import console, gpu_list_table

    console().print(gpu_list_table(system, rows))


@gpu.command("info")
@gpu_option
@json_option
def info_cmd(selector: str | None, as_json: bool) -> None:
    """Everything the driver can tell: identity, clocks, offsets, power, thermals, fans, PCIe,
    processes.  Values the GPU or driver cannot give show as N/A (null in JSON)."""
    infos = query(lambda m: m.gpu_info(selector))
    if as_json:
        emit_json({"gpus": infos})
        return
    from nvcontrol.cli.render import console, info_table

    out = console()
    for info in infos:
        out.print(info_table(info))


@gpu.command("watch")
@gpu_option
@json_option
@click.option(
    "--interval",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Seconds between samples.",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after N samples (default: until Ctrl-C).",
)
def watch_cmd(selector: str | None, as_json: bool, interval: float, count: int | None) -> None:
    """A live table of utilization, memory, temperature, power, clocks, fan and throttling.

    With --json: one JSON object per sample per line ({"time": ..., "gpus": [...]})."""
    if target() is not None:
        _remote_watch(selector, as_json, interval, count)
        return
    with session(selector) as (_nvml, gpus):
        if as_json:
            _loop(lambda: sample_all(gpus), interval, count, emit_json_line)
            return
        from nvcontrol.cli.render import console, watch_table

        names = {g.uuid: g.name for g in gpus}
        out = console()
        if out.is_terminal:
            from rich.live import Live

            with Live(console=out, auto_refresh=False) as live:
                _loop(
                    lambda: sample_all(gpus),
                    interval,
                    count,
                    lambda s: live.update(watch_table(s, names), refresh=True),
                )
        else:

            def show(s: dict[str, Any]) -> None:
                out.print(time.strftime("%H:%M:%S", time.localtime(s["time"])))
                out.print(watch_table(s, names))
                sys.stdout.flush()

            _loop(lambda: sample_all(gpus), interval, count, show)


def _remote_watch(selector: str | None, as_json: bool, interval: float, count: int | None) -> None:
    """Watch over --remote: one connection, one ``sample`` call per tick."""
    import asyncio

    from nvcontrol.remote.backend import open_backend

    async def main() -> None:
        async with open_backend() as m:
            names = {g["uuid"]: g["name"] for g in (await m.gpu_list(selector))["gpus"]}
            n = 0
            next_at = time.monotonic()
            while count is None or n < count:
                s = await m.sample(selector)
                if as_json:
                    emit_json_line(s)
                else:
                    from nvcontrol.cli.render import console, watch_table

                    console().print(watch_table(s, names))
                    sys.stdout.flush()
                n += 1
                if count is not None and n >= count:
                    break
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    asyncio.run(main())


def _loop(
    sample: Callable[[], dict[str, Any]],
    interval: float,
    count: int | None,
    sink: Callable[[dict[str, Any]], None],
) -> None:
    n = 0
    next_at = time.monotonic()
    while count is None or n < count:
        sink(sample())
        n += 1
        if count is not None and n >= count:
            break
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_at = time.monotonic()
