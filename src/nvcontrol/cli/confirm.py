"""``nvctl confirm [ID]`` — keep a change that is waiting for confirmation (from any shell),
and ``nvctl transactions`` — what the journal holds."""

from __future__ import annotations

import click

from nvcontrol.cli.changes import query
from nvcontrol.cli.common import emit_json, json_option
from nvcontrol.cli.params import Int
from nvcontrol.control.errors import RolledBack
from nvcontrol.control.journal import TxRecord
from nvcontrol.control.manager import GpuManager


@click.command("confirm")
@click.argument("tx_id", type=Int(), required=False, metavar="[ID]")
@json_option
def confirm(tx_id: int | None, as_json: bool) -> None:
    """Confirm a live transaction (the only one if ID is left out)."""

    async def go(m: GpuManager) -> TxRecord:
        return m.confirm(tx_id)

    rec = query(go)
    if as_json:
        emit_json(rec.to_json())
        return
    if rec.state in ("rolled_back", "rollback_pending"):
        raise RolledBack(f"transaction {rec.id} ({rec.description}): {rec.result}")
    if rec.state == "committed":
        click.echo(f"transaction {rec.id} ({rec.description}) confirmed and committed")
    else:
        click.echo(
            f"transaction {rec.id} ({rec.description}) confirmed; it commits when its "
            f"stability window ends (state: {rec.state})"
        )


@click.command("transactions")
@click.option("--limit", type=Int(), default=20, show_default=True)
@json_option
def transactions(limit: int, as_json: bool) -> None:
    """Recent transactions from the journal, newest first."""

    async def go(m: GpuManager) -> list[TxRecord]:
        return m.transactions(limit)

    recs = query(go)
    if as_json:
        emit_json({"transactions": [r.to_json() for r in recs]})
        return
    if not recs:
        click.echo("no transactions yet")
    for r in recs:
        tail = f" — {r.result}" if r.result else ""
        click.echo(f"{r.id:>4}  {r.state:<16} {r.description}{tail}")
