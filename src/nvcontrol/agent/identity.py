"""The agent's own identity: an ECDSA key and self-signed certificate in
``$NVCTL_STATE_DIR/agent``, created on first use and kept (clients pin it)."""

from __future__ import annotations

import socket
from pathlib import Path

from basis.errors import fs_errors
from bolt.network import identity
from nvcontrol.agent.db import agent_dir


def paths() -> tuple[Path, Path]:
    d = agent_dir()
    return d / "key.pem", d / "cert.pem"


def ensure() -> tuple[Path, Path, str]:
    """(key path, certificate path, fingerprint), creating the identity if there is none."""
    key_path, cert_path = paths()
    with fs_errors(cert_path):
        if not (key_path.exists() and cert_path.exists()):
            host = socket.gethostname()
            key, cert = identity.new_server_identity(
                f"nvcontrol agent {host}", [host, "localhost", "127.0.0.1", "::1"]
            )
            identity.save_server_identity(key, cert, key_path, cert_path)
        pem = cert_path.read_text()
    return key_path, cert_path, identity.cert_fingerprint(identity.load_cert(pem))
