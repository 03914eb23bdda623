"""``nvctl boot set|show|clear`` — restore a snapshot at boot and after resume (systemd)."""

from __future__ import annotations

import click

from nvcontrol.cli.common import emit_json, json_option
from nvcontrol.control.boot import BootStatus, clear_boot, set_boot, show_boot


@click.group()
def boot() -> None:
    """Settings that survive reboot and resume: a systemd unit that restores a snapshot."""
    from nvcontrol.remote.target import local_only

    local_only("boot")


def _render(status: BootStatus, as_json: bool) -> None:
    if as_json:
        emit_json(status.to_json())
        return
    if not status.installed:
        click.echo(f"no boot restore installed ({status.unit})")
    else:
        state = {True: "enabled", False: "not enabled", None: "enablement unknown"}[status.enabled]
        click.echo(f"{status.unit}: restores snapshot {status.snapshot} ({state})")
    if status.note:
        click.echo(f"note: {status.note}")


@boot.command("set")
@click.argument("snapshot")
@json_option
def set_cmd(snapshot: str, as_json: bool) -> None:
    """Install and enable the unit restoring SNAPSHOT at boot and after resume."""
    _render(set_boot(snapshot), as_json)


@boot.command("show")
@json_option
def show_cmd(as_json: bool) -> None:
    """Which snapshot is restored at boot, if any."""
    _render(show_boot(), as_json)


@boot.command("clear")
@json_option
def clear_cmd(as_json: bool) -> None:
    """Disable and remove the unit."""
    _render(clear_boot(), as_json)
