"""``nvctl agent serve|identity|authorize|revoke|list|audit`` — the remote-management agent."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

from basis.errors import InvalidInput
from nvcontrol.cli.common import emit_json, json_option


@click.group()
@click.pass_context
def agent(ctx: click.Context) -> None:
    """Serve this host's GPUs over QUIC (and the dashboard over HTTPS); manage who may."""
    if ctx.invoked_subcommand not in _REMOTE_OK:
        from nvcontrol.remote.target import local_only

        local_only(
            f"agent {ctx.invoked_subcommand}",
            "it runs the agent or manages its identity and dashboard tokens, on the agent's "
            "host (keys and the audit log can be managed remotely by an admin)",
        )


_REMOTE_OK = ("audit", "authorize", "revoke", "list")  # an admin's calls to the agent


def _on_agent(method: str, params: dict[str, object]) -> Any:
    """``method`` run by the agent ``--remote`` names, or None when there is none."""
    from nvcontrol.remote.target import target

    if target() is None:
        return None
    from nvcontrol.cli.changes import query

    # not GpuManager methods: the agent serves them from its own database
    return query(lambda m: m.call(method, params))  # type: ignore[attr-defined]


def _addr(text: str, what: str, default_port: int) -> tuple[str, int]:
    from bolt.network.quic import split_endpoint

    try:
        return split_endpoint(text, default_port, any_port=True)
    except ValueError as err:
        raise InvalidInput(
            f"{what} {text!r}: {err}", hint="give HOST:PORT, e.g. 0.0.0.0:4433"
        ) from None


@agent.command("serve")
@click.option("--listen", default="0.0.0.0:4433", show_default=True, metavar="HOST:PORT",
              help="UDP address of the QUIC API.")  # fmt: skip
@click.option("--http", "http", default=None, metavar="HOST:PORT",
              help="Also serve the dashboard and /metrics over HTTPS here.")  # fmt: skip
@click.option("--max-connections", type=click.IntRange(1, 100000), default=1024, show_default=True)
@click.option("--max-streams", type=click.IntRange(1, 1000), default=32, show_default=True,
              help="Concurrent calls per connection.")  # fmt: skip
@click.option("--max-request", type=click.IntRange(1024, 16 << 20), default=1 << 20,
              show_default=True, help="Largest request frame, in bytes.")  # fmt: skip
@click.option("--idle-timeout", type=click.FloatRange(0.5, 3600), default=10.0, show_default=True,
              help="Seconds of silence before a connection is dropped (and its live "
              "transaction reverted).")  # fmt: skip
@click.option("--no-tunnels", is_flag=True, help="Refuse tunnels to bolt://SERVICE:PORT.")
@click.option("--tunnel-map", "tunnel_map", multiple=True, metavar="NAME=HOST",
              help="Reach bolt://NAME:PORT at HOST (an agent outside a project network); "
              "repeatable.")  # fmt: skip
@click.option("--tunnel-role", type=click.Choice(["operator", "admin"]), default="operator",
              show_default=True, help="The least role that may open tunnels.")  # fmt: skip
@click.option("--max-tunnels", type=click.IntRange(1, 1000), default=16, show_default=True,
              help="Tunnels open at once per connection.")  # fmt: skip
@click.option("--tunnel-idle-timeout", type=click.FloatRange(1, 86400), default=300.0,
              show_default=True, help="Seconds without bytes before a tunnel is closed.")  # fmt: skip
@click.option("--read-cache-ms", type=click.IntRange(0, 10000), default=250, show_default=True,
              help="Serve GPU readings up to this old from memory (0: call NVML for every "
              "read). A change through the agent is always seen at once.")  # fmt: skip
def serve_cmd(
    listen: str,
    http: str | None,
    max_connections: int,
    max_streams: int,
    max_request: int,
    idle_timeout: float,
    no_tunnels: bool,
    tunnel_map: tuple[str, ...],
    tunnel_role: str,
    max_tunnels: int,
    tunnel_idle_timeout: float,
    read_cache_ms: int,
) -> None:
    """Run the agent in the foreground (systemd: packaging/nvcontrol-agent.service)."""
    from bolt.network.quic import Limits
    from nvcontrol.agent.server import ServeOptions, run
    from nvcontrol.agent.tunnel import TunnelRules

    opts = ServeOptions(
        listen=_addr(listen, "--listen", 4433),
        http=_addr(http, "--http", 8443) if http else None,
        limits=Limits(max_connections, max_streams, max_request, idle_timeout),
        tunnels=TunnelRules(
            enabled=not no_tunnels,
            min_role=tunnel_role,
            names=_tunnel_map(tunnel_map),
            max_per_connection=max_tunnels,
            idle_timeout_s=tunnel_idle_timeout,
        ),
        read_max_age_s=read_cache_ms / 1000,
    )
    run(opts)


def _tunnel_map(entries: tuple[str, ...]) -> dict[str, str]:
    from bolt.network.relay import parse_endpoint

    out: dict[str, str] = {}
    for entry in entries:
        name, sep, host = entry.partition("=")
        try:
            if not sep or not host.strip():
                raise ValueError("give NAME=HOST")
            parse_endpoint(f"bolt://{name}:1")
        except ValueError as err:
            raise InvalidInput(
                f"--tunnel-map {entry!r}: {err}", hint="e.g. web=127.0.0.1"
            ) from None
        out[name] = host.strip()
    return out


@agent.command("identity")
@json_option
def identity_cmd(as_json: bool) -> None:
    """The agent's identity fingerprint (clients pin it), created if there is none."""
    from nvcontrol.agent import identity

    _key, cert, fp = identity.ensure()
    if as_json:
        emit_json({"fingerprint": fp, "certificate": str(cert)})
    else:
        click.echo(fp)


@agent.command("authorize")
@click.argument("pubkey")
@click.option("--role", type=click.Choice(["viewer", "operator", "admin"]), required=True)
@json_option
def authorize_cmd(pubkey: str, role: str, as_json: bool) -> None:
    """Let the client with PUBKEY (the line `nvctl remote keygen` printed) in, as ROLE."""
    k = _on_agent("key_authorize", {"pubkey": pubkey, "role": role})
    if k is None:
        from nvcontrol.agent import db, keyadmin

        k = keyadmin.authorize(db.connect(), pubkey, role, who="local", who_role="admin",
                               origin="local")  # fmt: skip
    if as_json:
        emit_json(k)
    else:
        click.echo(f"authorized {k['fingerprint']} as {k['role']}")


@agent.command("revoke")
@click.argument("key")
@json_option
def revoke_cmd(key: str, as_json: bool) -> None:
    """Refuse KEY (a fingerprint, its unique prefix, or the public-key line) from now on."""
    k = _on_agent("key_revoke", {"key": key})
    if k is None:
        from nvcontrol.agent import db, keyadmin

        k = keyadmin.revoke(db.connect(), key, who="local", who_role="admin", origin="local")
    if as_json:
        emit_json(k)
    else:
        click.echo(f"revoked {k['fingerprint']} ({k['role']})")


@agent.command("list")
@json_option
def list_cmd(as_json: bool) -> None:
    """Authorized client keys and their roles."""
    rows = _on_agent("key_list", {})
    if rows is None:
        from nvcontrol.agent import db, keyadmin

        rows = keyadmin.listing(db.connect())
    if as_json:
        emit_json({"keys": rows})
        return
    if not rows:
        click.echo("no authorized keys (add one with `nvctl agent authorize PUBKEY --role ROLE`)")
    for k in rows:
        state = "active" if k["revoked"] is None else "revoked"
        click.echo(f"{k['fingerprint']}  {k['role']:<8} {state:<8} {k['comment']}")


@agent.command("audit")
@click.option("--limit", type=click.IntRange(1, 100000), default=50, show_default=True)
@json_option
def audit_cmd(limit: int, as_json: bool) -> None:
    """The audit log of mutating commands, newest first: who, when, what, before and after."""
    entries = _on_agent("audit", {"limit": limit})
    if entries is None:
        from nvcontrol.agent import audit, db

        entries = audit.read(db.connect(), limit)
    if as_json:
        emit_json({"audit": entries})
        return
    if not entries:
        click.echo("the audit log is empty")
    for e in entries:
        when = dt.datetime.fromtimestamp(e["time"], dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        click.echo(
            f"{e['id']:>5} {when} {e['key']} ({e['role']}, {e['origin']}) {e['action']} "
            f"{json.dumps(e['params'], separators=(',', ':'))} -> {e['result']}"
            + (f": {e['message']}" if e["message"] else "")
        )
        for uuid, fields in e["before"].items():
            for f, v in fields.items():
                click.echo(f"        {uuid} {f}: {v!r} -> {e['after'].get(uuid, {}).get(f)!r}")


@agent.group("token")
def token() -> None:
    """Dashboard login tokens, each tied to a role."""


@token.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["viewer", "operator", "admin"]), required=True)
def token_create_cmd(name: str, role: str) -> None:
    """Create a login token NAME for ROLE; the token is printed once, on the last line."""
    from nvcontrol.agent import audit, db, tokens

    conn = db.connect()
    value = tokens.create(conn, name, role)
    audit.append(conn, audit.Entry("local", "admin", "local", "token create", {"name": name},
                                   {}, {"role": role}, "ok", 0))  # fmt: skip
    click.echo(f"token {name} ({role}); it is not shown again:")
    click.echo(value)


@token.command("revoke")
@click.argument("name")
def token_revoke_cmd(name: str) -> None:
    """Revoke the login token NAME."""
    from nvcontrol.agent import audit, db, tokens

    conn = db.connect()
    tokens.revoke(conn, name)
    audit.append(conn, audit.Entry("local", "admin", "local", "token revoke", {"name": name},
                                   {}, {}, "ok", 0))  # fmt: skip
    click.echo(f"revoked token {name}")


@token.command("list")
@json_option
def token_list_cmd(as_json: bool) -> None:
    """Login tokens (names and roles; the tokens themselves are not stored)."""
    from nvcontrol.agent import db, tokens

    rows = tokens.all_tokens(db.connect())
    if as_json:
        emit_json({"tokens": rows})
        return
    for t in rows:
        click.echo(f"{t['name']:<20} {t['role']:<8} {'active' if t['active'] else 'revoked'}")
