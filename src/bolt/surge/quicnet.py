"""The ``quic`` network driver: ``[network] driver = "quic", encryption = true``.

On this host the project network is the bridge network (``intents.network_mode``).  What
the driver adds is the way in from other hosts: one service holds the project's QUIC
listener, and its UDP port is published on the host, so a remote client reaches that
listener, and through it (tunnels) any ``bolt://SERVICE:PORT`` of the project.

* **Which service.** The one whose image carries the label ``bolt.quic.listener=PORT``:
  the process in that image listens for QUIC on UDP ``PORT`` (the stack's gpu-manager runs
  the nvcontrol agent on 3000).  A Boltfile needs no new key for it.
* **Where it is published.** ``[network] publish = "[HOST_IP:]PORT"`` (0: a free port),
  or ``false``; by default on every address at the listener's own port, as ``ports``
  publishes ``"8080:8080"``.
* **Identity.** The listener's TLS key and certificate belong to the project, not to one
  container: they are made once in ``$BOLT_ROOT/quic/PROJECT/`` and mounted read-only
  into the listener (``BOLT_QUIC_IDENTITY``), so a recreated container keeps the identity
  that remote clients pinned.  The certificate alone is mounted into every service of the
  project (``BOLT_QUIC_TRUST``), so services verify the listener inside the project
  instead of trusting whatever answers.

:func:`extend` is pure (values in, an intent out); :func:`ensure_identity` writes files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bolt.config import Boltfile
from bolt.runtime.intent import ContainerIntent, MountIntent, PortMapping
from bolt.surge import intents

LISTENER_LABEL = "bolt.quic.listener"
PUBLISHED_LABEL = f"{intents.LABEL}.quic_listener"  # "HOST_IP:PORT/udp" as asked
IDENTITY_ENV = "BOLT_QUIC_IDENTITY"
TRUST_ENV = "BOLT_QUIC_TRUST"
IDENTITY_IN = "/etc/bolt/quic/listener"
TRUST_IN = "/etc/bolt/quic/trust"


def active(boltfile: Boltfile) -> bool:
    return boltfile.network.driver == "quic" and boltfile.network.encryption


def identity_dir(root: Path, project: str) -> Path:
    return Path(root) / "quic" / project


def listener_port(image_config: dict[str, Any] | None) -> int | None:
    """The UDP port an image's ``bolt.quic.listener`` label names, or None."""
    labels = (image_config or {}).get("Labels") or {}
    text = str(labels.get(LISTENER_LABEL, "")).strip().removesuffix("/udp")
    if text.isdigit() and 1 <= int(text) <= 65535:
        return int(text)
    return None


def image_config(root: Path, ref: str) -> dict[str, Any] | None:
    """The image's config object (its labels), or None when it is not in the store yet."""
    from bolt.errors import NotFound
    from bolt.images.store import ImageStore

    try:
        return ImageStore(root).resolve(ref).config
    except NotFound:
        return None


def extend(
    intent: ContainerIntent,
    boltfile: Boltfile,
    root: Path,
    image_config: dict[str, Any] | None,
) -> ContainerIntent:
    """A service's intent with what the quic driver adds (unchanged for other networks)."""
    if not active(boltfile):
        return intent
    base = identity_dir(root, boltfile.name)
    mounts = [*intent.mounts, MountIntent("bind", TRUST_IN, str(base / "trust"), True)]
    env = {**intent.env, TRUST_ENV: f"{TRUST_IN}/cert.pem"}
    labels = dict(intent.labels)
    ports = list(intent.ports)
    port = listener_port(image_config)
    if port is not None:
        mounts.append(MountIntent("bind", IDENTITY_IN, str(base / "listener"), True))
        env[IDENTITY_ENV] = IDENTITY_IN
        publish = boltfile.network.publish
        if publish is not False:
            where = publish if isinstance(publish, str) else f"0.0.0.0:{port}"
            host_ip, _, host_port = where.rpartition(":")
            # the engine turns 0.0.0.0 into netavark's "every address"
            ports.append(PortMapping(host_ip, int(host_port), port, "udp"))
            labels[PUBLISHED_LABEL] = f"{host_ip}:{host_port}/udp"
    return intent.replace(mounts=tuple(mounts), env=env, labels=labels, ports=tuple(ports))


def ensure_identity(root: Path, boltfile: Boltfile) -> None:
    """The project listener's key and certificate, made when missing (kept across
    ``down``, like volumes: remote clients pin them)."""
    if not active(boltfile):
        return
    from bolt.network import identity

    base = identity_dir(root, boltfile.name)
    key_path, cert_path = base / "listener" / "key.pem", base / "listener" / "cert.pem"
    trust = base / "trust" / "cert.pem"
    if not (key_path.is_file() and cert_path.is_file()):
        (base / "listener").mkdir(parents=True, exist_ok=True, mode=0o700)
        key, cert = identity.new_server_identity(f"{boltfile.name} quic listener", [boltfile.name])
        identity.save_server_identity(key, cert, key_path, cert_path)
    pem = cert_path.read_text()
    if not trust.is_file() or trust.read_text() != pem:
        trust.parent.mkdir(parents=True, exist_ok=True)
        tmp = trust.with_name("cert.pem.tmp")
        tmp.write_text(pem)
        tmp.replace(trust)
