"""``nvctl remote keygen|hosts|forget`` — this client's key and the agents it trusts."""

from __future__ import annotations

import click

from nvcontrol.cli.common import emit_json, json_option


@click.group()
def remote() -> None:
    """The client side of remote management (use `nvctl --remote HOST COMMAND` to run one)."""
    from nvcontrol.remote.target import local_only

    local_only("remote", "it manages this client's own key and the agents it trusts")


@remote.command("keygen")
@click.option("--force", is_flag=True, help="Replace an existing key.")
@click.option("--show", is_flag=True, help="Only print the existing key's public line.")
def keygen_cmd(force: bool, show: bool) -> None:
    """Create this client's key; the last line printed is its public key (for
    `nvctl agent authorize`)."""
    from nvcontrol.remote import keys

    if show:
        click.echo(keys.public_line())
        return
    line = keys.keygen(force=force)
    click.echo(f"created {keys.key_path()}")
    click.echo(line)


@remote.command("hosts")
@json_option
def hosts_cmd(as_json: bool) -> None:
    """Agents whose identity this client has pinned."""
    from bolt.network import identity
    from nvcontrol.remote import trust

    known = {
        ep: identity.cert_fingerprint(identity.load_cert(p)) for ep, p in trust.load_known().items()
    }
    if as_json:
        emit_json({"hosts": [{"endpoint": e, "fingerprint": f} for e, f in known.items()]})
        return
    for e, f in known.items():
        click.echo(f"{e}  {f}")


@remote.command("forget")
@click.argument("endpoint")
def forget_cmd(endpoint: str) -> None:
    """Drop ENDPOINT's pinned identity (the next contact must trust it again)."""
    from nvcontrol.remote import trust

    if trust.forget(endpoint):
        click.echo(f"forgot {trust.canonical(endpoint)}")
    else:
        click.echo(f"{trust.canonical(endpoint)} was not a known host")
