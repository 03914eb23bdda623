"""``nvctl clocks lock|reset`` — locked graphics and memory clocks."""

from __future__ import annotations

import click

from basis.errors import InvalidInput
from nvcontrol.cli.changes import TxFlags, run_change, run_direct, tx_options
from nvcontrol.cli.common import gpu_option, json_option
from nvcontrol.numbers import parse_int


def _span(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    lo, sep, hi = value.partition(",")
    try:
        if not sep:
            raise InvalidInput(value)
        return parse_int(lo, "MIN"), parse_int(hi, "MAX")
    except InvalidInput:
        raise click.BadParameter(f"{value!r} is not MIN,MAX in MHz (e.g. 1500,2500)") from None


@click.group()
def clocks() -> None:
    """Locked clocks.  NVML cannot read them back, so nvctl records what it set."""


@clocks.command("lock")
@click.option(
    "-i",
    "--select",
    "selector",
    metavar="SEL",
    default=None,
    help="GPUs (index, UUID, PCI bus id, comma list, 'all'); here --gpu is the graphics range.",
)
@click.option(
    "--gpu",
    "graphics",
    callback=_span,
    default=None,
    metavar="MIN,MAX",
    help="Graphics clock range, MHz.",
)
@click.option(
    "--memory", callback=_span, default=None, metavar="MIN,MAX", help="Memory clock range, MHz."
)
@tx_options(window=5.0)
@json_option
def lock_cmd(
    selector: str | None,
    graphics: tuple[int, int] | None,
    memory: tuple[int, int] | None,
    tx: TxFlags,
    as_json: bool,
) -> None:
    """Lock clocks into MIN,MAX (as a transaction)."""
    run_change(
        lambda m, o: m.lock_clocks(selector, graphics, memory, o),
        tx,
        as_json=as_json,
    )


@clocks.command("reset")
@gpu_option
@json_option
def reset_cmd(selector: str | None, as_json: bool) -> None:
    """Unlock graphics and memory clocks."""
    run_direct(lambda m: m.reset_clocks(selector), as_json=as_json, nothing="nothing to unlock")
