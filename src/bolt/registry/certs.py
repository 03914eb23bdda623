"""Per-registry TLS material, in the ``certs.d`` layout docker and podman use:

::

    certs.d/HOST[:PORT]/ca.crt           a certificate authority for that registry only
    certs.d/HOST[:PORT]/*.crt            more of them
    certs.d/HOST[:PORT]/client.cert      a client certificate ...
    certs.d/HOST[:PORT]/client.key       ... with its key (same base name)

The directory is looked for under ``$BOLT_ROOT/certs.d``, then ``/etc/bolt/certs.d``,
``/etc/containers/certs.d`` and ``/etc/docker/certs.d``; the first one that exists for the
registry is used.  Its authorities are trusted on top of the system's.  A ``.cert``
without its ``.key`` (or the other way round), or a file that is not a PEM certificate, is
refused with the file named (exit 2): a registry must never be reached with half of its
configuration silently dropped.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from bolt.errors import InvalidInput

SYSTEM_DIRS = (
    Path("/etc/bolt/certs.d"),
    Path("/etc/containers/certs.d"),
    Path("/etc/docker/certs.d"),
)


def registry_dir(root: Path, registry: str) -> Path | None:
    """The certs.d directory of ``registry`` (``host`` or ``host:port``), if any."""
    if not registry or "/" in registry or registry in (".", ".."):
        return None
    for base in (root / "certs.d", *SYSTEM_DIRS):
        path = base / registry
        if path.is_dir():
            return path
    return None


def tls_context(root: Path, registry: str) -> ssl.SSLContext:
    """The system's trust, plus what ``certs.d`` holds for ``registry``."""
    context = ssl.create_default_context()
    where = registry_dir(root, registry)
    if where is None:
        return context
    files = sorted(p for p in where.iterdir() if p.is_file())
    for ca in (p for p in files if p.suffix == ".crt"):
        try:
            context.load_verify_locations(cafile=str(ca))
        except (ssl.SSLError, ValueError, UnicodeDecodeError) as err:
            raise InvalidInput(
                f"{ca} is not a PEM certificate: {err}",
                hint="a .crt file in certs.d must hold one or more PEM CA certificates",
            ) from None
    certs = {p.stem: p for p in files if p.suffix == ".cert"}
    keys = {p.stem: p for p in files if p.suffix == ".key"}
    for stem in sorted(set(certs) ^ set(keys)):
        lone = certs.get(stem) or keys[stem]
        other = ".key" if lone.suffix == ".cert" else ".cert"
        raise InvalidInput(
            f"{lone} has no {stem}{other} beside it",
            hint="a client certificate needs both NAME.cert and NAME.key",
        )
    for stem in sorted(certs):
        try:
            context.load_cert_chain(str(certs[stem]), str(keys[stem]))
        except (ssl.SSLError, ValueError) as err:
            raise InvalidInput(
                f"{certs[stem]} and {keys[stem]} are not a certificate and its key: {err}",
                hint="both must be PEM; the key must not need a passphrase",
            ) from None
    return context
