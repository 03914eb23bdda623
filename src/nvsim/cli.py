"""The ``nvsim`` command: start, inspect, drive and stop a virtual NVIDIA driver.

A thin shell over :mod:`nvsim.instance`, :mod:`nvsim.control` and :mod:`nvsim.status`:
it parses arguments, calls them and renders the result.  Errors print one line
(``error: ...`` and maybe ``hint: ...``) and exit with the shared codes: 1 failure,
2 invalid input, 3 no instance, 4 permission denied; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from basis.errors import ExitCode, UserError, render
from nvsim import build, bundle, control, driver, instance, status

F = TypeVar("F", bound=Callable[..., Any])
_debug = False


class _Ctx:
    def __init__(self, state: Path | None) -> None:
        self.state = state


def _with_state(func: F) -> F:
    """Accept ``--state`` after the subcommand too; it wins over the global one."""
    return click.option(
        "--state",
        "state_here",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="State directory (same as the global --state).",
    )(func)  # type: ignore[return-value]


def _state_dir(state_here: Path | None) -> Path:
    obj = click.get_current_context().find_object(_Ctx)
    chosen = state_here or (obj.state if obj else None)
    return Path(chosen) if chosen else instance.default_state_dir()


def _note(text: str) -> None:
    click.echo(f"note: {text}", err=True)


def _json_flag(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="One JSON document.")(func)  # type: ignore[return-value]


def _report(changes: list[control.Change], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"changes": [c.as_dict() for c in changes]}))
    else:
        for change in changes:
            click.echo(str(change))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--state",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="State directory of the instance (default: $NVSIM_STATE, else /run/nvsim).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, state: Path | None, debug: bool) -> None:
    """nvsim: a virtual NVIDIA driver (libnvidia-ml.so.1 + device nodes + a GPU model)."""
    global _debug
    _debug = _debug or debug
    ctx.obj = _Ctx(state)


@cli.command()
@click.option("--gpus", type=int, default=1, show_default=True, help="Number of GPUs.")
@click.option(
    "--model",
    default="rtx4090",
    show_default=True,
    help="GPU model, or a comma list with one per GPU (rtx4090, rtx5090, rtx3060, h100).",
)
@click.option(
    "--driver",
    default=instance.DEFAULT_DRIVER,
    show_default=True,
    help="Driver version to report; sets the NVML and CUDA versions to match.",
)
@click.option(
    "--time-scale",
    type=float,
    default=1.0,
    show_default=True,
    help="Simulated seconds per real second.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of UUIDs, serials, PCI buses and silicon quality.",
)
@click.option(
    "--sensor-noise",
    type=float,
    default=instance.DEFAULT_SENSOR_NOISE_PCT,
    show_default=True,
    help="Noise on the power and temperature readings, in percent (0: exact readings).",
)
@_json_flag
@_with_state
def up(
    gpus: int,
    model: str,
    driver: str,
    time_scale: float,
    seed: int,
    sensor_noise: float,
    as_json: bool,
    state_here: Path | None,
) -> None:
    """Create the instance and start its model."""
    state_dir = _state_dir(state_here)
    chosen = instance.resolve_models(model, gpus)
    result = instance.up(
        state_dir,
        chosen,
        instance.parse_driver(driver),
        time_scale=time_scale,
        seed=seed,
        sensor_noise_pct=sensor_noise,
    )
    for note in result.notes:
        _note(note)
    if as_json:
        with instance.open_state(state_dir) as sf:
            view = status.snapshot(sf)
        view["notes"] = result.notes
        click.echo(json.dumps(view, indent=2))
        return
    names = sorted({m.name for m in chosen})
    click.echo(
        f"nvsim up: {gpus} GPU(s) ({', '.join(names)}) at {state_dir}, "
        f"driver {driver}, daemon pid {result.daemon_pid}"
    )
    click.echo(f'point a process at it with: eval "$(nvsim --state {state_dir} env)"')


@cli.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["shell", "json"]),
    default="shell",
    show_default=True,
    help="shell: export lines for eval; json: one object.",
)
@_with_state
def env(fmt: str, state_here: Path | None) -> None:
    """Print the environment that points processes at the instance."""
    variables = instance.environment(_state_dir(state_here), os.environ.get("LD_LIBRARY_PATH"))
    if fmt == "json":
        click.echo(json.dumps(variables))
        return
    click.echo(f"export NVSIM_STATE={variables['NVSIM_STATE']}")
    lib = variables["LD_LIBRARY_PATH"].split(":", 1)[0]
    click.echo(f"export LD_LIBRARY_PATH={lib}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}")


@cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@_with_state
def status_cmd(as_json: bool, state_here: Path | None) -> None:
    """Show every GPU as the simulator sees it."""
    with instance.open_state(_state_dir(state_here), require_daemon=False, readonly=True) as sf:
        view = status.snapshot(sf)
    if as_json:
        click.echo(json.dumps(view, indent=2))
        return
    from nvsim.render import print_status

    print_status(view)


@cli.command()
@click.argument("gpu")
@click.argument("percent", type=int)
@click.option(
    "--memory", "memory_mib", type=int, default=None, help="MiB the load holds (default 300)."
)
@click.option(
    "--pid",
    type=int,
    default=None,
    help="Process listed as holding the load, with its utilization (default: none listed).",
)
@_json_flag
@_with_state
def load(
    gpu: str,
    percent: int,
    memory_mib: int | None,
    pid: int | None,
    as_json: bool,
    state_here: Path | None,
) -> None:
    """Put PERCENT load on GPU (index, UUID or PCI bus id); 0 clears it."""
    with instance.open_state(_state_dir(state_here)) as sf:
        change = control.set_load(sf, gpu, percent, memory_mib=memory_mib, pid=pid)
    _report([change], as_json)


@cli.command()
@click.argument("gpu")
@click.argument("kind", type=click.Choice(control.FAULT_KINDS))
@click.argument("code", type=int, required=False)
@_json_flag
@_with_state
def fault(gpu: str, kind: str, code: int | None, as_json: bool, state_here: Path | None) -> None:
    """Inject a fault: 'xid CODE', 'lost' (falls off the bus) or 'thermal' (cooling fails)."""
    with instance.open_state(_state_dir(state_here)) as sf:
        change = control.inject_fault(sf, gpu, kind, code)
    _report([change], as_json)


@cli.command()
@click.argument("gpus", nargs=-1)
@_json_flag
@_with_state
def reset(gpus: tuple[str, ...], as_json: bool, state_here: Path | None) -> None:
    """Reset GPUs (all by default): clear faults, restore default settings, drop load."""
    with instance.open_state(_state_dir(state_here)) as sf:
        changes = control.reset(sf, gpus)
    _report(changes, as_json)


@cli.command()
@_json_flag
@_with_state
def down(as_json: bool, state_here: Path | None) -> None:
    """Stop the model and remove what 'up' created."""
    done = instance.down(_state_dir(state_here))
    if as_json:
        click.echo(json.dumps({"done": done}))
        return
    for line in done:
        click.echo(line)


@cli.command("build")
@click.option("--force", is_flag=True, help="Rebuild even if the sources did not change.")
def build_cmd(force: bool) -> None:
    """Build libnvidia-ml.so.1 and print its path."""
    try:
        click.echo(str(build.build(force=force)))
    except build.BuildError as err:
        raise UserError(str(err)) from None


# ---------------------------------------------------------------------------- driver


@cli.group("driver")
def driver_group() -> None:
    """Driver bundles: pack one, check one, install it (switching the virtual driver's
    version), roll back to the previous driver."""


def _show_driver(doc: dict[str, Any], as_json: bool, verb: str) -> None:
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    cur, prev = doc["current"], doc["previous"]
    broken = f" (fault: {cur['fault']})" if cur.get("fault") else ""
    click.echo(f"{verb}driver {cur['version']}{broken}")
    if cur.get("unbound"):
        click.echo(f"  not bound by this driver: {', '.join(cur['unbound'])}")
    click.echo(f"  previous: {prev['version'] if prev else 'none'}")


@driver_group.command("pack")
@click.argument("version")
@click.option("--arch", "archs", multiple=True, metavar="ARCH",
              help="An architecture the bundle supports (repeat; default: every one the "
              "branch supports: " + ", ".join(bundle.ARCH_SINCE) + ").")  # fmt: skip
@click.option("--fault", type=click.Choice(bundle.FAULTS), default=None,
              help="Make a broken driver whose post-install health check fails.")  # fmt: skip
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Bundle file (default: ./nvsim-driver-VERSION.tar.gz).")  # fmt: skip
@_json_flag
def driver_pack(
    version: str, archs: tuple[str, ...], fault: str | None, output: Path | None, as_json: bool
) -> None:
    """Write the bundle of driver VERSION and its FILE.sha256 checksum."""
    out = output or Path(bundle.default_name(version))
    path, manifest = bundle.pack(version, out, architectures=archs, fault=fault)
    if as_json:
        click.echo(json.dumps({"bundle": str(path), "manifest": manifest.to_json()}))
        return
    click.echo(f"{path}: driver {manifest.version} for {', '.join(manifest.architectures)}"
               + (f" (fault: {fault})" if fault else ""))  # fmt: skip


@driver_group.command("verify")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@_json_flag
def driver_verify(file: Path, as_json: bool) -> None:
    """Check FILE against FILE.sha256 and its members against SHA256SUMS."""
    digest = bundle.check_sidecar(file)
    manifest, _ = bundle.read(file)
    if as_json:
        click.echo(json.dumps({"bundle": str(file), "sha256": digest,
                               "manifest": manifest.to_json()}))  # fmt: skip
        return
    click.echo(f"{file}: intact, driver {manifest.version}")


@driver_group.command("install")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@_json_flag
@_with_state
def driver_install(file: Path, as_json: bool, state_here: Path | None) -> None:
    """Install the bundle FILE: the instance reports its driver version from now on."""
    _show_driver(driver.install(_state_dir(state_here), file), as_json, "installed ")


@driver_group.command("rollback")
@_json_flag
@_with_state
def driver_rollback(as_json: bool, state_here: Path | None) -> None:
    """Switch back to the driver installed before the current one."""
    _show_driver(driver.rollback(_state_dir(state_here)), as_json, "rolled back to ")


@driver_group.command("status")
@_json_flag
@_with_state
def driver_status(as_json: bool, state_here: Path | None) -> None:
    """The installed driver and the previous one."""
    _show_driver(driver.status(_state_dir(state_here)), as_json, "")


def main(argv: list[str] | None = None) -> None:
    global _debug
    args = sys.argv[1:] if argv is None else argv
    _debug = "--debug" in args
    code: int = ExitCode.OK
    try:
        result = cli.main(args=args, prog_name="nvsim", standalone_mode=False)
        if isinstance(result, int):
            code = result
    except click.ClickException as err:
        err.show()
        code = ExitCode.INVALID_INPUT if isinstance(err, click.UsageError) else err.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        code = ExitCode.FAILURE
    except UserError as err:
        if _debug:
            traceback.print_exc()
        click.echo(render(err), err=True)
        code = err.exit_code
    except PermissionError as err:
        if _debug:
            traceback.print_exc()
        click.echo(f"error: {err.filename or err}: permission denied", err=True)
        code = ExitCode.PERMISSION
    except Exception as err:
        if _debug:
            traceback.print_exc()
        click.echo(f"error: {type(err).__name__}: {err}", err=True)
        click.echo("hint: run again with --debug for the traceback", err=True)
        code = ExitCode.FAILURE
    sys.exit(int(code))
