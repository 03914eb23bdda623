"""The client's own key (``nvctl remote keygen``), kept in ``$NVCTL_CONFIG_DIR``."""

from __future__ import annotations

import socket
from pathlib import Path

from basis.errors import InvalidInput, UserError
from bolt.network import identity
from nvcontrol.control import paths


def key_path() -> Path:
    return paths.config_dir() / "client_key.pem"


def keygen(path: Path | None = None, *, force: bool = False) -> str:
    """Create the key; returns its public line."""
    path = path or key_path()
    if path.exists() and not force:
        raise InvalidInput(
            f"a client key already exists at {path}",
            hint="give --force to replace it (agents that trust the old key will refuse the new one)",
        )
    key = identity.new_client_key()
    try:
        identity.save_private(key, path)
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror}") from None
    return identity.public_line(key, f"nvctl@{socket.gethostname()}")


def load(path: Path | None = None) -> identity.Ed25519PrivateKey:
    path = path or key_path()
    if not path.exists():
        raise InvalidInput(
            f"no client key at {path}",
            hint="create one with `nvctl remote keygen`, then have an admin run "
            "`nvctl agent authorize PUBKEY --role ROLE` on the agent",
        )
    try:
        return identity.load_client_key(path)
    except identity.KeyError_ as err:
        raise InvalidInput(str(err)) from None


def public_line(path: Path | None = None) -> str:
    return identity.public_line(load(path), f"nvctl@{socket.gethostname()}")
