"""``nvctl remote keygen|hosts|forget|forward`` — this client's key, the agents it trusts,
and tunnels through them."""

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


@remote.command("forward")
@click.argument("local", metavar="[LOCAL_ADDR:]LOCAL_PORT")
@click.argument("target_text", metavar="bolt://SERVICE:PORT")
@click.option("--remote", "remote_host", metavar="HOST[:PORT]",
              help="The agent to tunnel through (or give nvctl's global --remote).")  # fmt: skip
@click.option("--accept-new-host", is_flag=True, help="Trust an unknown agent on first use.")
@click.option("--host-fingerprint", metavar="FP", help="The agent identity to expect.")
@click.option("--ca-file", metavar="FILE", help="Verify the agent against this CA instead.")
def forward_cmd(
    local: str,
    target_text: str,
    remote_host: str | None,
    accept_new_host: bool,
    host_fingerprint: str | None,
    ca_file: str | None,
) -> None:
    """Forward LOCAL_PORT to bolt://SERVICE:PORT in the agent's project network, like
    `ssh -L`: every TCP connection to the local port is a tunnel through the agent's QUIC
    listener (operator role or above).  Runs until interrupted."""
    import asyncio

    from basis.errors import InvalidInput
    from nvcontrol.remote import forward, keys
    from nvcontrol.remote.target import TrustOptions, target

    listen = forward.local_address(local)
    service = forward.target(target_text)
    chosen = target()
    if remote_host is not None:
        trust = TrustOptions(accept_new_host, host_fingerprint, ca_file)
        endpoint = remote_host
    elif chosen is not None:
        trust, endpoint = chosen.trust, chosen.endpoint
    else:
        raise InvalidInput("no agent given", hint="add --remote HOST[:PORT]")
    fwd = forward.Forward(endpoint, trust, listen, service)

    def say(text: str) -> None:
        click.echo(text, err=True)

    def ready(host: str, port: int) -> None:
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        click.echo(f"forwarding {shown} -> {service} through {endpoint}")

    runner = forward.Forwarder(fwd, keys.load(), say)
    asyncio.run(runner.run(ready))
