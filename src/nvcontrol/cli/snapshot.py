"""``nvctl snapshot create|list|show|diff|restore|delete|export|import``."""

from __future__ import annotations

from typing import Any

import click

from nvcontrol.cli.changes import TxFlags, query, run_change, settled, tx_options
from nvcontrol.cli.common import emit_json, gpu_option, json_option


@click.group()
def snapshot() -> None:
    """Snapshots of GPU configuration, keyed by GPU UUID, as TOML in the state directory:
    offsets per pstate, locked clocks, power limit, fans and curve, persistence and compute
    mode."""


@snapshot.command("create")
@click.argument("name")
@gpu_option
@json_option
def create_cmd(name: str, selector: str | None, as_json: bool) -> None:
    """Capture the selected GPUs' configuration as NAME."""
    snap = query(lambda m: m.snapshot_create(name, selector))
    if as_json:
        emit_json(snap.to_dict())
        return
    click.echo(
        f"snapshot {name}: " + ", ".join(f"GPU {e.index} ({u})" for u, e in snap.gpus.items())
    )


@snapshot.command("list")
@json_option
def list_cmd(as_json: bool) -> None:
    """Snapshots, newest names first."""
    doc = query(lambda m: settled(m.snapshot_list()))
    for warning in doc["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    snaps = doc["snapshots"]
    if as_json:
        emit_json({"snapshots": snaps})
        return
    if not snaps:
        click.echo("no snapshots")
    for s in snaps:
        click.echo(f"{s['name']:<24} {s['created']:<26} {len(s['gpus'])} GPU(s)")


@snapshot.command("show")
@click.argument("name")
@json_option
def show_cmd(name: str, as_json: bool) -> None:
    """The snapshot's content (TOML, or JSON with --json)."""
    snap = query(lambda m: settled(m.snapshot_show(name)))
    if as_json:
        emit_json(snap.to_dict())
    else:
        click.echo(snap.to_toml(), nl=False)


@snapshot.command("diff")
@click.argument("name")
@gpu_option
@json_option
def diff_cmd(name: str, selector: str | None, as_json: bool) -> None:
    """Where the live state differs from NAME, per GPU and field."""

    async def both(m: Any) -> tuple[list[dict[str, Any]], list[str]]:
        return await m.snapshot_diff(name, selector), await m.snapshot_notes(name, selector)

    differences, notes = query(both)
    if as_json:
        emit_json({"snapshot": name, "differences": differences, "notes": notes})
        return
    for note in notes:
        click.echo(f"note: {note}", err=True)
    if not differences:
        click.echo(f"the GPUs match snapshot {name}")
    for d in differences:
        if d["field"] == "gpu":
            click.echo(f"{d['uuid']}: in the snapshot, not in this machine")
            continue
        click.echo(
            f"GPU {d['index']} ({d['uuid']}) {d['field']}: snapshot {d['snapshot']!r}, "
            f"live {d['live']!r}"
        )


@snapshot.command("restore")
@click.argument("name")
@gpu_option
@tx_options(window=5.0)
@json_option
def restore_cmd(
    name: str,
    selector: str | None,
    tx: TxFlags,
    as_json: bool,
) -> None:
    """Restore NAME (by GPU UUID, whatever the enumeration order) as one transaction."""
    for note in query(lambda m: m.snapshot_notes(name, selector)):
        click.echo(f"note: {note}", err=True)
    run_change(
        lambda m, o: m.snapshot_restore(name, selector, o),
        tx,
        as_json=as_json,
    )


@snapshot.command("delete")
@click.argument("name")
def delete_cmd(name: str) -> None:
    """Delete NAME."""
    query(lambda m: settled(m.snapshot_delete(name)))  # type: ignore[func-returns-value]
    click.echo(f"deleted snapshot {name}")


@snapshot.command("export")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
def export_cmd(name: str, file: str) -> None:
    """Write NAME to FILE (TOML).  With --remote, the agent's snapshot to a file here."""
    from basis.errors import fs_errors

    document = query(lambda m: settled(m.snapshot_document(name)), gpus=False)
    with fs_errors(file), open(file, "w") as f:
        f.write(document)
    click.echo(f"exported snapshot {name} to {file}")


@snapshot.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--name", default=None, help="Store under this name instead of the file's.")
@click.option("--force", is_flag=True, help="Replace a snapshot of the same name.")
@json_option
def import_cmd(file: str, name: str | None, force: bool, as_json: bool) -> None:
    """Import a snapshot file (validated before it is stored).  With --remote, a file here
    is stored on the agent."""
    from nvcontrol.control.snapshots import GpuSnapshot, read_text_limited

    document = read_text_limited(file)
    GpuSnapshot.from_toml(document, source=file)  # errors name this file, before any call
    snap = query(lambda m: settled(m.snapshot_store(document, name, force)), gpus=False)
    if as_json:
        emit_json(snap.summary())
    else:
        click.echo(f"imported snapshot {snap.name} ({len(snap.gpus)} GPU(s))")
