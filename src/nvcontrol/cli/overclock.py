"""``nvctl overclock status|apply|reset|test|auto`` — per-pstate clock offsets."""

from __future__ import annotations

import sys
from typing import Any

import click

from basis.errors import InvalidInput
from nvcontrol.cli.changes import TxFlags, outcome_line, query, run_change, run_direct, tx_options
from nvcontrol.cli.common import emit_json, gpu_option, json_option
from nvcontrol.cli.params import Float, Int
from nvcontrol.lost import lost_line, raise_if_lost
from nvcontrol.numbers import pstate_name

UNITS = (
    "Offsets are in NVML's units: MHz of the graphics clock and MHz of the memory clock.  "
    "nvidia-settings' GPUMemoryTransferRateOffset counts the memory transfer rate, which is "
    "twice that: NVML --memory-offset 500 equals nvidia-settings' 1000."
)


def _pstate(value: str) -> str:
    try:
        return pstate_name(value)
    except InvalidInput as err:
        raise click.BadParameter(err.message) from None


@click.group(help=f"Clock offsets per performance state.\n\n{UNITS}")
def overclock() -> None:
    pass


@overclock.command("status")
@gpu_option
@json_option
def status_cmd(selector: str | None, as_json: bool) -> None:
    """Offsets per pstate with the driver's ranges, and any live transaction."""
    rows = query(lambda m: m.offsets_status(selector))
    if as_json:
        emit_json({"gpus": rows})
        raise_if_lost(rows)
        return
    for r in rows:
        if r["lost"]:
            click.echo(lost_line(r))
            continue
        click.echo(f"GPU {r['index']} ({r['uuid']}) {r['name']} — API: {r['api'] or 'none'}")
        for p, entry in r["pstates"].items():
            for domain, info in entry.items():
                if info:
                    click.echo(
                        f"  {p} {domain:8} {info['offset_mhz']:+6d} MHz"
                        f"   range {info['min_mhz']:+d}..{info['max_mhz']:+d} MHz"
                    )
        for t in r["transactions"]:
            click.echo(f"  live transaction {t['id']}: {t['description']} ({t['state']})")
    click.echo("units: NVML MHz (nvidia-settings' memory transfer-rate offset = 2 x memory)")
    raise_if_lost(rows)


@overclock.command("apply", help=f"Apply offsets as a transaction.\n\n{UNITS}")
@gpu_option
@click.option(
    "--gpu-offset", type=Int(), default=None, metavar="MHZ", help="Graphics clock offset."
)
@click.option(
    "--memory-offset",
    type=Int(),
    default=None,
    metavar="MHZ",
    help="Memory clock offset (NVML MHz).",
)
@click.option("--pstate", default="P0", show_default=True, callback=lambda c, p, v: _pstate(v))
@tx_options(window=10.0, confirm_help="default: on when run on a terminal")
@json_option
def apply_cmd(
    selector: str | None,
    gpu_offset: int | None,
    memory_offset: int | None,
    pstate: str,
    tx: TxFlags,
    as_json: bool,
) -> None:
    run_change(
        lambda m, o: m.apply_offsets(selector, gpu_offset, memory_offset, pstate, o),
        tx,
        as_json=as_json,
        confirm_by_default=sys.stdin.isatty(),
    )


@overclock.command("reset")
@gpu_option
@json_option
def reset_cmd(selector: str | None, as_json: bool) -> None:
    """Set every offset back to 0 (read back)."""
    run_direct(lambda m: m.reset_offsets(selector), as_json=as_json, nothing="offsets already 0")


@overclock.command("test")
@gpu_option
@click.option("--duration", type=Float(0.5), default=30.0, show_default=True, metavar="S")
@click.option("--temp-guard", type=Float(), default=None, metavar="C")
@json_option
def test_cmd(
    selector: str | None, duration: float, temp_guard: float | None, as_json: bool
) -> None:
    """Load the GPUs and watch them (Xid errors, lost GPU, heat, throttling).

    On nvsim the simulated load is used; on real hardware a CUDA workload through PyTorch
    or CuPy when installed.  Exit 0 when stable, 1 when not.  Changes no setting."""
    result = query(
        lambda m: m.stability_test(selector, duration, temp_guard),
        interruptible="the test's load is off again",
    )
    if as_json:
        emit_json(result)
    else:
        click.echo(f"load: {result['load']} for {result['duration_s']:g} s")
        for g in result["gpus"]:
            click.echo(
                f"GPU {g['index']} ({g['uuid']}): max {g['max_temperature_c']} °C "
                f"(guard {g['temp_guard_c']:g} °C), reasons seen: "
                + (", ".join(g["clocks_event_reasons_seen"]) or "none")
            )
        click.echo("stable" if result["stable"] else f"UNSTABLE: {result['cause']}")
    if not result["stable"]:
        sys.exit(1)


@overclock.command("auto")
@gpu_option
@click.option("--max-gpu-offset", type=Int(), default=None, metavar="MHZ")
@click.option("--max-memory-offset", type=Int(), default=None, metavar="MHZ")
@click.option("--gpu-step", type=Int(1), default=15, show_default=True, metavar="MHZ")
@click.option("--memory-step", type=Int(1), default=100, show_default=True, metavar="MHZ")
@click.option("--step-duration", type=Float(0.5), default=10.0, show_default=True, metavar="S")
@click.option("--pstate", default="P0", show_default=True, callback=lambda c, p, v: _pstate(v))
@click.option("--save", "save_as", default=None, help="Snapshot name (default: auto-<time>).")
@json_option
def auto_cmd(
    selector: str | None,
    max_gpu_offset: int | None,
    max_memory_offset: int | None,
    gpu_step: int,
    memory_step: int,
    step_duration: float,
    pstate: str,
    save_as: str | None,
    as_json: bool,
) -> None:
    """Find the highest stable offsets: step up under load, each step a transaction that is
    rolled back when unstable; the result stays applied and is saved as a snapshot."""
    import time

    from nvcontrol.control.runner import TxOptions

    def note(event: str, data: dict[str, Any]) -> None:
        if event == "note":
            click.echo(str(data.get("text")), err=True)

    name = save_as or time.strftime("auto-%Y%m%d-%H%M%S")
    result = query(
        lambda m: m.overclock_auto(
            selector,
            max_gpu_offset,
            max_memory_offset,
            gpu_step,
            memory_step,
            step_duration,
            pstate,
            name,
            TxOptions(progress=note),
        ),
        interruptible="the load is off and the unfinished step was rolled back",
    )
    if as_json:
        emit_json(result)
        return
    for g in result["gpus"]:
        click.echo(
            f"GPU {g['index']} ({g['uuid']}): graphics {g['graphics_offset_mhz']} MHz, "
            f"memory {g['memory_offset_mhz']} MHz"
        )
    snap = result["snapshot"]
    click.echo(f"saved as snapshot {snap} (`nvctl boot set {snap}` keeps it)")


__all__ = ["outcome_line", "overclock"]
