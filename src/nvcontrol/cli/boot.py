"""``nvctl boot set|show|clear`` — restore a snapshot at boot and after resume (systemd)."""

from __future__ import annotations

from typing import Any

import click

from nvcontrol.cli.changes import query, settled
from nvcontrol.cli.common import emit_json, json_option
from nvcontrol.control.boot import BootStatus


@click.group()
def boot() -> None:
    """Settings that survive reboot and resume: a systemd unit that restores a snapshot.
    With --remote, the agent host's unit."""


def _render(doc: dict[str, Any], as_json: bool) -> None:
    status = BootStatus(**doc)
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
    _render(query(lambda m: settled(m.boot_set(snapshot)), gpus=False), as_json)


@boot.command("show")
@json_option
def show_cmd(as_json: bool) -> None:
    """Which snapshot is restored at boot, if any."""
    _render(query(lambda m: settled(m.boot_show()), gpus=False), as_json)


@boot.command("clear")
@json_option
def clear_cmd(as_json: bool) -> None:
    """Disable and remove the unit."""
    _render(query(lambda m: settled(m.boot_clear()), gpus=False), as_json)
