"""``nvctl power status|limit|reset|persistence`` — power limit (watts and percent) and
persistence mode."""

from __future__ import annotations

import click

from nvcontrol.cli.changes import TxFlags, query, run_change, run_direct, tx_options
from nvcontrol.cli.common import emit_json, gpu_option, json_option
from nvcontrol.cli.params import Float
from nvcontrol.lost import lost_line, raise_if_lost


@click.group()
def power() -> None:
    """Power limits (in watts and in percent of the default limit) and persistence mode."""


def _fmt(v: object, unit: str) -> str:
    return "N/A" if v is None else f"{v:g} {unit}"


@power.command("status")
@gpu_option
@json_option
def status_cmd(selector: str | None, as_json: bool) -> None:
    """Draw, limit, default and allowed range, in W and % of default."""
    rows = query(lambda m: m.power_status(selector))
    if as_json:
        emit_json({"gpus": rows})
        raise_if_lost(rows)
        return
    for r in rows:
        if r["lost"]:
            click.echo(lost_line(r))
            continue
        click.echo(
            f"GPU {r['index']} ({r['uuid']}): draw {_fmt(r['usage_w'], 'W')}, "
            f"limit {_fmt(r['limit_w'], 'W')} ({_fmt(r['limit_pct_of_default'], '%')} of "
            f"{_fmt(r['default_limit_w'], 'W')} default), range {_fmt(r['min_limit_w'], 'W')}"
            f"..{_fmt(r['max_limit_w'], 'W')} ({_fmt(r['min_limit_pct'], '%')}.."
            f"{_fmt(r['max_limit_pct'], '%')}), persistence "
            + {True: "on", False: "off", None: "N/A"}[r["persistence_mode"]]
        )
        for t in r["transactions"]:
            click.echo(f"  live transaction {t['id']}: {t['description']} ({t['state']})")
    raise_if_lost(rows)


@power.command("limit")
@gpu_option
@click.option("--watts", type=Float(), default=None, metavar="W", help="Limit in watts.")
@click.option(
    "--percent", type=Float(), default=None, metavar="P", help="Limit in % of the default limit."
)
@tx_options(window=5.0)
@json_option
def limit_cmd(
    selector: str | None,
    watts: float | None,
    percent: float | None,
    tx: TxFlags,
    as_json: bool,
) -> None:
    """Set the power limit (as a transaction): --watts W or --percent P of the default."""
    run_change(
        lambda m, o: m.set_power_limit(selector, watts, percent, o),
        tx,
        as_json=as_json,
    )


@power.command("reset")
@gpu_option
@json_option
def reset_cmd(selector: str | None, as_json: bool) -> None:
    """Back to the default power limit."""
    run_direct(lambda m: m.reset_power(selector), as_json=as_json, nothing="")


@power.command("persistence")
@click.argument("mode", type=click.Choice(["on", "off"]))
@gpu_option
@json_option
def persistence_cmd(mode: str, selector: str | None, as_json: bool) -> None:
    """Turn persistence mode on or off (read back)."""
    run_direct(lambda m: m.set_persistence(selector, mode == "on"), as_json=as_json, nothing="")
