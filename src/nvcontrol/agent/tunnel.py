"""Tunnels: an authenticated client asks the agent for a byte stream to
``bolt://SERVICE:PORT``, and the agent relays it to that TCP port in its project network.

:func:`decide` and :func:`check_address` are the pure rules (role, limits, which names may
be reached); :class:`Tunnels` does the I/O: resolve, connect, upgrade the call's QUIC
stream (:meth:`bolt.network.quic.CallContext.upgrade`), relay, audit.

Which names are reached, and how:

* inside a Surge container (the stack's gpu-manager) SERVICE is resolved by the system
  resolver, which is the project network's DNS: every service answers to its name;
* ``--tunnel-map NAME=HOST`` maps a name to a host explicitly (an agent outside any
  container, whose services listen on its own addresses);
* an unmapped name must be a service name, not an address, and must not resolve to the
  agent's own loopback or to a link-local, multicast or unspecified address, so a tunnel
  cannot reach the agent host's private ports by accident (``localhost``, ``127.0.0.1``).

A refused tunnel never opens a connection to the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from basis.errors import ExitCode, InvalidInput, PermissionDenied, Unsupported, UserError
from bolt.network import quic, relay
from nvcontrol.agent import audit, keys
from nvcontrol.remote.api import ROLES, role_allows


@dataclass(frozen=True)
class TunnelRules:
    enabled: bool = True
    min_role: str = "operator"
    names: Mapping[str, str] = field(default_factory=dict)  # --tunnel-map NAME=HOST
    max_per_connection: int = 16
    idle_timeout_s: float = 300.0
    connect_timeout_s: float = 5.0


@dataclass(frozen=True)
class Refuse:
    error: UserError


@dataclass(frozen=True)
class Connect:
    endpoint: relay.ServiceEndpoint
    host: str  # what to resolve: the mapped host, or the service name itself
    mapped: bool


def decide(
    rules: TunnelRules, role: str, params: dict[str, Any], open_now: int
) -> Refuse | Connect:
    """Whether a client of ``role`` with ``open_now`` tunnels on its connection may open
    the tunnel ``params`` asks for, and to what."""
    if not rules.enabled:
        return Refuse(Unsupported("this agent does not open tunnels (started with --no-tunnels)"))
    if not role_allows(role, rules.min_role):
        return Refuse(
            PermissionDenied(
                f"role {role} may not open tunnels (it needs {rules.min_role})",
                hint="an admin can change the key's role with `nvctl agent authorize`",
            )
        )
    if set(params) != {"target"} or not isinstance(params["target"], str):
        return Refuse(
            InvalidInput("a tunnel call takes one argument: target (bolt://SERVICE:PORT)")
        )
    try:
        endpoint = relay.parse_endpoint(params["target"])
    except ValueError as err:
        return Refuse(InvalidInput(str(err)))
    if open_now >= rules.max_per_connection:
        return Refuse(
            UserError(
                f"this connection already has {open_now} tunnels open "
                f"(the agent allows {rules.max_per_connection})",
                hint="close one, or open another connection",
            )
        )
    mapped = rules.names.get(endpoint.service)
    if mapped is not None:
        return Connect(endpoint, mapped, True)
    if _is_address(endpoint.service) or endpoint.service.lower() == "localhost":
        return Refuse(
            InvalidInput(
                f"{endpoint}: tunnels reach services by name, not {endpoint.service!r}",
                hint="on an agent outside a project network, map names with --tunnel-map NAME=HOST",
            )
        )
    return Connect(endpoint, endpoint.service, False)


def check_address(connect: Connect, address: str) -> UserError | None:
    """Refuse an unmapped name that resolved to the agent's own or a special address."""
    if connect.mapped:
        return None
    ip = ipaddress.ip_address(address.split("%")[0])
    if ip.is_loopback or ip.is_unspecified or ip.is_link_local or ip.is_multicast:
        return PermissionDenied(
            f"{connect.endpoint}: {connect.endpoint.service} resolves to {address}, "
            "which is not a project service's address",
            hint="map it explicitly with --tunnel-map NAME=HOST if that is meant",
        )
    return None


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class Tunnels:
    """The agent's ``tunnel`` call."""

    def __init__(self, rules: TunnelRules, db: sqlite3.Connection) -> None:
        self.rules = rules
        self.db = db
        self.open: dict[int, int] = {}  # connection id -> tunnels open on it

    async def serve(self, ctx: quic.CallContext, params: dict[str, Any]) -> None:
        shown = {"target": params.get("target")}
        role, why = keys.role_of(self.db, ctx.key_fp)  # read again: a revoked key stops here
        if role is None:
            gone = PermissionDenied(f"key {ctx.key_fp} is no longer authorized ({why})")
            self._audit(ctx, ctx.principal, shown, "denied", gone)
            raise gone
        decision = decide(self.rules, role, params, self.open.get(ctx.connection, 0))
        if isinstance(decision, Refuse):
            self._audit(ctx, role, shown, _result(decision.error), decision.error)
            raise decision.error
        ep = decision.endpoint
        try:
            reader, writer, address = await self._connect(decision)
        except UserError as err:
            self._audit(ctx, role, shown, _result(err), err)
            raise
        assert ctx.upgrade is not None
        self.open[ctx.connection] = self.open.get(ctx.connection, 0) + 1
        try:
            stream = ctx.upgrade({"target": str(ep), "address": address})
            self._audit(ctx, role, {**shown, "address": address}, "ok", None)
            stats = await relay.relay(
                stream, reader, writer, idle_timeout_s=self.rules.idle_timeout_s
            )
            note = (f"{stats.from_stream} bytes to the service, {stats.to_stream} back; "
                    f"ended: {stats.ended}")  # fmt: skip
            self._audit(ctx, role, {**shown, "address": address}, "ok", None, "tunnel_closed", note)
        finally:
            left = self.open.get(ctx.connection, 1) - 1
            if left:
                self.open[ctx.connection] = left
            else:
                self.open.pop(ctx.connection, None)
            writer.close()

    async def _connect(
        self, decision: Connect
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
        ep = decision.endpoint
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(decision.host, ep.port, type=socket.SOCK_STREAM),
                self.rules.connect_timeout_s,
            )
        except (OSError, TimeoutError) as err:
            raise UserError(f"{ep}: cannot resolve {decision.host}: {_text(err)}") from None
        for _family, _type, _proto, _name, sockaddr in infos:
            refused = check_address(decision, str(sockaddr[0]))
            if refused is not None:
                raise refused
        last = "no address"
        for _family, _type, _proto, _name, sockaddr in infos:
            host, port = str(sockaddr[0]), int(sockaddr[1])
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port), self.rules.connect_timeout_s
                )
            except (OSError, TimeoutError) as err:
                last = _text(err)
                continue
            shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            return reader, writer, shown
        raise UserError(f"{ep}: cannot connect to {decision.host}:{ep.port}: {last}")

    def _audit(
        self,
        ctx: quic.CallContext,
        role: str,
        params: dict[str, Any],
        result: str,
        error: UserError | None,
        action: str = "tunnel",
        note: str | None = None,
    ) -> None:
        code = int(error.exit_code) if error is not None else 0
        message = error.message if error is not None else note
        entry = audit.Entry(ctx.key_fp, role, "quic", action, params, {}, {}, result, code, message)
        with contextlib.suppress(sqlite3.Error):  # an audit failure must not kill the relay
            audit.append(self.db, entry)


def _result(err: UserError) -> str:
    return "denied" if err.exit_code == ExitCode.PERMISSION else "error"


def _text(err: BaseException) -> str:
    if isinstance(err, TimeoutError):
        return "timed out"
    return getattr(err, "strerror", None) or str(err) or err.__class__.__name__


__all__ = ["ROLES", "Connect", "Refuse", "TunnelRules", "Tunnels", "check_address", "decide"]
