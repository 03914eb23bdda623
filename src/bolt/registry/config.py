"""Registry settings: ``$BOLT_ROOT/registries.toml``, else ``/etc/bolt/registries.toml``.

::

    default_registry = "registry.example.com:5000"   # for bolt://NAME:TAG and bare names
    insecure = ["127.0.0.1:5000", "build-cache.lan"]   # unverified HTTPS, or plain HTTP

Without a file, the default registry is Docker Hub and every registry is spoken to over
HTTPS with the system's certificate authorities.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from bolt.errors import InvalidInput
from bolt.registry.reference import DOCKER_HUB, is_registry_host

FILE_NAME = "registries.toml"
SYSTEM_FILE = Path("/etc/bolt") / FILE_NAME
_KEYS = {"default_registry", "insecure"}


@dataclass(frozen=True)
class RegistryConfig:
    default_registry: str = DOCKER_HUB
    insecure: frozenset[str] = field(default_factory=frozenset)
    source: Path | None = None

    def is_insecure(self, registry: str) -> bool:
        return registry in self.insecure


def config_path(root: Path) -> Path | None:
    for path in (root / FILE_NAME, SYSTEM_FILE):
        if path.is_file():
            return path
    return None


def load(root: Path) -> RegistryConfig:
    """The settings that apply under the state directory ``root``."""
    path = config_path(root)
    if path is None:
        return RegistryConfig()
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise InvalidInput(f"{path}: {err}", hint="fix the TOML syntax") from err
    unknown = sorted(set(doc) - _KEYS)
    if unknown:
        raise InvalidInput(
            f"{path}: unknown key {unknown[0]!r}", hint=f"known keys: {', '.join(sorted(_KEYS))}"
        )
    default = doc.get("default_registry", DOCKER_HUB)
    if not isinstance(default, str) or not (default == DOCKER_HUB or is_registry_host(default)):
        raise InvalidInput(
            f"{path}: default_registry = {default!r} is not a registry host",
            hint='use a host name with a dot or a port, e.g. "registry.example.com:5000"',
        )
    insecure = doc.get("insecure", [])
    if not isinstance(insecure, list) or not all(isinstance(h, str) for h in insecure):
        raise InvalidInput(
            f"{path}: insecure must be a list of registry hosts",
            hint='e.g. insecure = ["127.0.0.1:5000"]',
        )
    return RegistryConfig(default, frozenset(insecure), path)
