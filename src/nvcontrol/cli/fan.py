"""``nvctl fan status|set|auto|curve`` — fan speeds, automatic control, fan curves."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import click

from basis.errors import InvalidInput
from nvcontrol.cli.changes import TxFlags, query, run_change, run_direct, tx_options
from nvcontrol.cli.common import emit_json, emit_json_line, gpu_option, json_option
from nvcontrol.cli.params import Float, Int
from nvcontrol.lost import lost_line, raise_if_lost
from nvcontrol.numbers import parse_int


@click.group()
def fan() -> None:
    """Fans: status, manual speed, automatic control, and curves."""


@fan.command("status")
@gpu_option
@json_option
def status_cmd(selector: str | None, as_json: bool) -> None:
    """Speed, target and policy per fan; the curve and its controller, if any."""
    rows = query(lambda m: m.fan_status(selector))
    if as_json:
        emit_json({"gpus": rows})
        raise_if_lost(rows)
        return
    for r in rows:
        if r["lost"]:
            click.echo(lost_line(r))
            continue
        ctl = (
            f", curve controller pid {r['curve_controller_pid']}"
            if r["curve_controller_pid"]
            else ""
        )
        curve = f", curve {r['curve']['points']}" if r["curve"] else ""
        click.echo(f"GPU {r['index']} ({r['uuid']}): {r['temperature_c']} °C{curve}{ctl}")
        for f in r["fans"]:
            click.echo(
                f"  fan {f['index']}: {f['speed_pct']}% (target {f['target_pct']}%), {f['policy']}"
            )
    raise_if_lost(rows)


def _fan_and_pct(args: tuple[str, ...]) -> tuple[int | None, int]:
    if len(args) == 1:
        which, pct = "all", args[0]
    elif len(args) == 2:
        which, pct = args
    else:
        raise click.UsageError("usage: nvctl fan set [FAN|all] PERCENT")
    try:
        speed = parse_int(pct.removesuffix("%"), "PERCENT")
        fan_index = None if which == "all" else parse_int(which, "FAN")
    except InvalidInput as err:
        raise click.UsageError(f"expected [FAN|all] PERCENT ({err.message})") from None
    return fan_index, speed


@fan.command("set")
@click.argument("args", nargs=-1, required=True, metavar="[FAN|all] PERCENT")
@gpu_option
@tx_options(window=5.0)
@json_option
def set_cmd(
    args: tuple[str, ...],
    selector: str | None,
    tx: TxFlags,
    as_json: bool,
) -> None:
    """Set a manual fan speed (one fan or all), as a transaction."""
    index, pct = _fan_and_pct(args)
    run_change(
        lambda m, o: m.set_fans(selector, index, pct, o),
        tx,
        as_json=as_json,
    )


@fan.command("auto")
@gpu_option
@json_option
def auto_cmd(selector: str | None, as_json: bool) -> None:
    """Give the fans back to the driver's automatic control."""
    run_direct(lambda m: m.fans_auto(selector), as_json=as_json, nothing="")


@fan.group("curve")
def curve() -> None:
    """Fan curves: set one per GPU, then run the controller that follows it."""


@curve.command("set")
@click.argument("points", metavar='"TEMP:PCT,..."')
@click.option("--hysteresis", type=Int(), default=3, show_default=True, metavar="C")
@gpu_option
@json_option
def curve_set_cmd(points: str, hysteresis: int, selector: str | None, as_json: bool) -> None:
    """Store a curve, e.g. "40:30,60:50,80:100" (temperatures rising, speeds never falling)."""
    from nvcontrol.control.fancurve import parse_curve

    parsed = parse_curve(points, hysteresis)
    rows = query(lambda m: m.set_fan_curve(selector, parsed))
    if as_json:
        emit_json({"gpus": rows})
        return
    for r in rows:
        click.echo(f"GPU {r['index']} ({r['uuid']}): curve {parsed.describe()}")
    click.echo("run `nvctl fan curve run` to follow it")


@curve.command("run")
@gpu_option
@click.option("--interval", type=Float(0.1), default=1.0, show_default=True, metavar="S")
@json_option
def curve_run_cmd(selector: str | None, interval: float, as_json: bool) -> None:
    """Follow the curves until stopped; the fans go back to automatic control when this
    stops, is killed or crashes (after SIGKILL: at the next nvctl command).  With
    --remote the agent follows them for as long as this command runs (and connected)."""
    from nvcontrol.control.runner import TxOptions
    from nvcontrol.remote.backend import open_backend

    def report(event: str, data: dict[str, Any]) -> None:
        if event != "fan":
            return
        if as_json:
            emit_json_line({k: data.get(k) for k in ("uuid", "temperature_c", "speed_pct")})
        else:
            click.echo(f"{data.get('gpu')}: {data.get('temperature_c'):g} °C -> fans "
                       f"{data.get('speed_pct')}%")  # fmt: skip

    async def main() -> None:
        stop: asyncio.Queue[bool] = asyncio.Queue()  # an answer stops the controller
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, stop.put_nowait, False)
        options = TxOptions(progress=report, answers=stop)
        async with open_backend() as m:
            await m.fan_curve_run(selector, interval, options)

    asyncio.run(main())
    if not as_json:
        click.echo("stopped; fans are under automatic control again")
