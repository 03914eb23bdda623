"""The agent's own identity: an ECDSA key and self-signed certificate in
``$NVCTL_STATE_DIR/agent``, created on first use and kept (clients pin it).

In a Surge project on a ``quic`` network the identity is the project listener's, made and
mounted read-only by Surge (``$BOLT_QUIC_IDENTITY``: ``key.pem`` and ``cert.pem``), so a
recreated container keeps it and the project's other services can verify it."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from basis.errors import NotFound, fs_errors
from bolt.network import identity
from nvcontrol.agent.db import agent_dir

PROVIDED_ENV = "BOLT_QUIC_IDENTITY"


def paths() -> tuple[Path, Path]:
    provided = os.environ.get(PROVIDED_ENV)
    d = Path(provided) if provided else agent_dir()
    return d / "key.pem", d / "cert.pem"


def ensure() -> tuple[Path, Path, str]:
    """(key path, certificate path, fingerprint), creating the identity if there is none."""
    key_path, cert_path = paths()
    with fs_errors(cert_path):
        if not (key_path.exists() and cert_path.exists()):
            if os.environ.get(PROVIDED_ENV):
                raise NotFound(
                    f"${PROVIDED_ENV} names {key_path.parent}, which holds no key.pem and cert.pem",
                    hint="Surge mounts them for the quic network's listener; unset the variable "
                    "to let the agent make its own",
                )
            host = socket.gethostname()
            key, cert = identity.new_server_identity(
                f"nvcontrol agent {host}", [host, "localhost", "127.0.0.1", "::1"]
            )
            identity.save_server_identity(key, cert, key_path, cert_path)
        pem = cert_path.read_text()
    return key_path, cert_path, identity.cert_fingerprint(identity.load_cert(pem))
