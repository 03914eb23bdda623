"""``nvctl`` — the command line over the nvcontrol library.

Commands only parse arguments, call the library and render the result (a Rich table, or
JSON with ``--json``).  Errors are printed as ``error: ...`` / ``hint: ...`` with the exit
codes of the README; a traceback only with ``--debug``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from bolt.errors import BoltError, ExitCode, render


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--debug", is_flag=True, help="Show tracebacks for unexpected errors.")
@click.version_option(package_name="nvcontrol-bolt", prog_name="nvctl")
def cli(debug: bool) -> None:
    """nvcontrol: monitor and control NVIDIA GPUs (real drivers or nvsim).

    Every command that shows something takes --json.  GPUs are selected with -i/--gpu:
    an index, a UUID (or unique prefix), a PCI bus id, a comma list, or `all`.
    """


def _register() -> None:
    from nvcontrol.cli import boot, clocks, confirm, fan, gpu, overclock, power, snapshot

    cli.add_command(gpu.gpu)
    cli.add_command(overclock.overclock)
    cli.add_command(clocks.clocks)
    cli.add_command(power.power)
    cli.add_command(fan.fan)
    cli.add_command(snapshot.snapshot)
    cli.add_command(confirm.confirm)
    cli.add_command(confirm.transactions)
    cli.add_command(boot.boot)


def _repair_first() -> None:
    """Before any command: roll back transactions whose process died and give fans back
    from dead curve controllers (cheap when the journal does not exist)."""
    from nvcontrol.control import paths
    from nvcontrol.control.journal import exists

    if not exists(paths.journal_path()):
        return
    from nvcontrol.control.recovery import repair

    repair(lambda text: click.echo(text, err=True))


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("NVCTL_DEBUG") == "1"
    _register()
    try:
        _repair_first()
        cli.main(args=args, prog_name="nvctl", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except BoltError as exc:
        if debug:
            raise
        click.echo(render(exc), err=True)
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (e.g. `| head`): not an error
        sys.exit(0)
    except Exception as exc:
        if debug:
            raise
        click.echo(f"error: internal error: {exc.__class__.__name__}: {exc}", err=True)
        click.echo("hint: run again with --debug for the traceback", err=True)
        sys.exit(int(ExitCode.FAILURE))
