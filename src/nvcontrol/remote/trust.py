"""Trusting agents: ssh-style pinning in ``$NVCTL_CONFIG_DIR/known_hosts``, an expected
fingerprint given on the command line, or a CA file.

First contact with an unknown agent needs ``--accept-new-host`` or ``--host-fingerprint``
(nothing is trusted silently).  The agent's certificate is then fetched, checked against
the expected fingerprint, and used as the only trust anchor of a second, verified
connection: the agent must prove it holds the certificate's key before it is pinned.  A
pinned agent that presents another identity is refused, with both fingerprints shown.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path

from basis.errors import InvalidInput, PermissionDenied, UserError
from bolt.network import identity, quic
from bolt.network.session import AuthRefused
from nvcontrol.control import paths
from nvcontrol.remote.target import TrustOptions


class HostKeyChanged(PermissionDenied):
    pass


def known_hosts_path() -> Path:
    return paths.config_dir() / "known_hosts"


def canonical(endpoint: str) -> str:
    host, port = quic.split_endpoint(endpoint)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def load_known() -> dict[str, str]:
    """endpoint -> certificate PEM (one line per host: ``ENDPOINT FINGERPRINT BASE64-PEM``)."""
    out: dict[str, str] = {}
    try:
        text = known_hosts_path().read_text()
    except FileNotFoundError:
        return out
    import base64

    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and not line.startswith("#"):
            with contextlib.suppress(ValueError):
                out[parts[0]] = base64.b64decode(parts[2]).decode()
    return out


_pin_lock = threading.Lock()  # fan-out pins from many threads at once


def pin(endpoint: str, cert_pem: str) -> None:
    """Add or replace one entry (read-modify-write under a lock: threads and processes)."""
    path = known_hosts_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with _pin_lock, open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        known = load_known()
        known[canonical(endpoint)] = cert_pem
        _write(path, known)


def _write(path: Path, known: dict[str, str]) -> None:
    import base64

    lines = ["# nvctl known agents: endpoint, identity fingerprint, certificate"]
    for ep, pem in sorted(known.items()):
        fp = identity.cert_fingerprint(identity.load_cert(pem))
        lines.append(f"{ep} {fp} {base64.b64encode(pem.encode()).decode()}")
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)


def forget(endpoint: str) -> bool:
    path = known_hosts_path()
    with _pin_lock, open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        known = load_known()
        if canonical(endpoint) not in known:
            return False
        del known[canonical(endpoint)]
        _write(path, known)
    return True


async def connect(endpoint: str, key: object, trust: TrustOptions) -> quic.QuicClient:
    """An authenticated connection to the agent at ``endpoint``, or a clear error."""
    try:
        quic.split_endpoint(endpoint)
    except ValueError as err:
        raise InvalidInput(f"--remote {endpoint!r}: {err}") from None
    try:
        if trust.ca_file is not None:
            return await quic.QuicClient.connect(endpoint, key=key, cafile=trust.ca_file)
        pinned = load_known().get(canonical(endpoint))
        if pinned is not None:
            return await _pinned(endpoint, key, pinned)
        return await _first_contact(endpoint, key, trust)
    except AuthRefused as err:
        raise PermissionDenied(
            f"{endpoint}: the agent refused this client: {err}",
            hint="print your key with `nvctl remote keygen --show` and have an admin run "
            "`nvctl agent authorize PUBKEY --role ROLE` on the agent",
        ) from None
    except quic.QuicError as err:
        raise UserError(f"cannot reach the agent: {err}") from None


async def _pinned(endpoint: str, key: object, pinned: str) -> quic.QuicClient:
    try:
        return await quic.QuicClient.connect(endpoint, key=key, pinned_cert=pinned)
    except quic.QuicError:
        presented = await _presented(endpoint)
        if presented is None:
            raise
        old = identity.cert_fingerprint(identity.load_cert(pinned))
        new = identity.cert_fingerprint(identity.load_cert(presented))
        if old == new:
            raise
        raise HostKeyChanged(
            f"WARNING: the identity of agent {endpoint} has CHANGED: it was {old}, it now "
            f"presents {new}. Someone may be intercepting the connection, or the agent's "
            "key was replaced. Nothing was sent.",
            hint=f"if the change is expected, check the new fingerprint on the agent "
            f"(`nvctl agent identity`), then `nvctl remote forget {endpoint}` and connect "
            "again with --host-fingerprint",
        ) from None


async def _presented(endpoint: str) -> str | None:
    try:
        return await quic.fetch_certificate(endpoint, timeout_s=3.0)
    except (quic.QuicError, OSError, ValueError):
        return None


async def _first_contact(endpoint: str, key: object, trust: TrustOptions) -> quic.QuicClient:
    if not trust.accept_new_host and trust.host_fingerprint is None:
        presented = await _presented(endpoint)
        shown = (
            f" (it presents {identity.cert_fingerprint(identity.load_cert(presented))})"
            if presented
            else ""
        )
        raise PermissionDenied(
            f"agent {endpoint} is not a known host{shown}; nothing was sent",
            hint="compare the fingerprint with `nvctl agent identity` on the agent, then "
            "connect with --host-fingerprint FP (or --accept-new-host to trust it on first use)",
        )
    presented = await quic.fetch_certificate(endpoint)
    fp = identity.cert_fingerprint(identity.load_cert(presented))
    if trust.host_fingerprint is not None and trust.host_fingerprint.strip() != fp:
        raise HostKeyChanged(
            f"agent {endpoint} presents identity {fp}, not the expected "
            f"{trust.host_fingerprint}; nothing was sent",
            hint="check the fingerprint with `nvctl agent identity` on the agent",
        )
    client = await quic.QuicClient.connect(endpoint, key=key, pinned_cert=presented)
    pin(endpoint, presented)
    return client
