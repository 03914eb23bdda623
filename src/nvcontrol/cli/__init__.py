"""``nvctl`` — the command line over the nvcontrol library.

Commands only parse arguments, call the library and render the result (a Rich table, or
JSON with ``--json``).  Errors are printed as ``error: ...`` / ``hint: ...`` with the exit
codes of the README; a traceback only with ``--debug``.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

import click

from basis.errors import ExitCode, UserError
from basis.errors import render as render_error  # (the name `render` is the submodule)

# Command groups, imported only when used: a command does not pay for the others' imports.
_COMMANDS = {
    "gpu": ("nvcontrol.cli.gpu", "gpu"),
    "overclock": ("nvcontrol.cli.overclock", "overclock"),
    "clocks": ("nvcontrol.cli.clocks", "clocks"),
    "power": ("nvcontrol.cli.power", "power"),
    "fan": ("nvcontrol.cli.fan", "fan"),
    "snapshot": ("nvcontrol.cli.snapshot", "snapshot"),
    "confirm": ("nvcontrol.cli.confirm", "confirm"),
    "transactions": ("nvcontrol.cli.confirm", "transactions"),
    "boot": ("nvcontrol.cli.boot", "boot"),
    "agent": ("nvcontrol.cli.agent", "agent"),
    "remote": ("nvcontrol.cli.remote", "remote"),
    "ct": ("nvcontrol.cli.ct", "ct"),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(_COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _COMMANDS:
            module, attr = _COMMANDS[cmd_name]
            self.add_command(getattr(importlib.import_module(module), attr), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option("--debug", is_flag=True, help="Show tracebacks for unexpected errors.")
# The remote options are taken out of argv by nvcontrol.remote.fanout before click parses
# it; they are declared here for --help.
@click.option("--remote", metavar="HOST[:PORT],...", help="Run the command on these agents.")
@click.option("--hosts-file", metavar="FILE", help="Agents to run the command on, one a line.")
@click.option("--accept-new-host", is_flag=True, help="Trust an unknown agent on first use.")
@click.option("--host-fingerprint", metavar="FP", help="The agent identity to expect.")
@click.option("--ca-file", metavar="FILE", help="Verify agents against this CA instead.")
@click.version_option(package_name="nvcontrol-bolt", prog_name="nvctl")
def cli(debug: bool, **_remote: object) -> None:
    """nvcontrol: monitor and control NVIDIA GPUs (real drivers or nvsim).

    Every command that shows something takes --json.  GPUs are selected with -i/--gpu:
    an index, a UUID (or unique prefix), a PCI bus id, a comma list, or `all`.
    With --remote HOST[:PORT] (or a comma list, or --hosts-file) any command runs on
    nvcontrol agents instead (`nvctl agent serve`), with the same output and exit codes.
    """


def _register() -> None:
    """Make every command group known (they load lazily; this is for callers that walk
    ``cli.commands``)."""
    for name in _COMMANDS:
        cli.get_command(click.Context(cli), name)


def _repair_first() -> None:
    """Before any command: roll back transactions whose process died and give fans back
    from dead curve controllers (cheap when the journal does not exist)."""
    from nvcontrol.control import paths
    from nvcontrol.control.journal import exists

    if exists(paths.journal_path()):
        from nvcontrol.control.recovery import repair

        repair(lambda text: click.echo(text, err=True))


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("NVCTL_DEBUG") == "1"
    try:
        from nvcontrol.remote import fanout
        from nvcontrol.remote import target as backend

        remote, args = fanout.split_global(args)
    except UserError as exc:
        click.echo(render_error(exc), err=True)
        sys.exit(int(exc.exit_code))
    if len(remote.hosts) > 1:
        sys.exit(fanout.run(remote.hosts, remote.trust, args, lambda a: _run(a, debug, False)))
    if remote.hosts:
        backend.set_target(backend.RemoteTarget(remote.hosts[0], remote.trust))
    sys.exit(_run(args, debug, not remote.hosts))


def _run(args: list[str], debug: bool, repair: bool) -> int:
    """One command; returns its exit code (errors rendered as the README says)."""
    try:
        if repair:
            _repair_first()
        cli.main(args=args, prog_name="nvctl", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return int(exc.exit_code)
    except UserError as exc:
        if debug:
            raise
        click.echo(render_error(exc), err=True)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return 130
    except PermissionError as exc:
        # A file this user may not write (a state or config directory of root's): the
        # same exit code and advice as a refused NVML setter, never an internal error.
        if debug:
            raise
        click.echo(f"error: permission denied: {exc.filename or exc}", err=True)
        click.echo(
            "hint: run nvctl with sudo, or point NVCTL_STATE_DIR / NVCTL_CONFIG_DIR "
            "at directories you own",
            err=True,
        )
        return int(ExitCode.PERMISSION)
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (e.g. `| head`): not an error
        return 0
    except Exception as exc:
        if debug:
            raise
        click.echo(f"error: internal error: {exc.__class__.__name__}: {exc}", err=True)
        click.echo("hint: run again with --debug for the traceback", err=True)
        return int(ExitCode.FAILURE)
    return 0
