"""Remote image references: ``[bolt://][REGISTRY/]REPOSITORY[:TAG][@DIGEST]``.

A first path component with a ``.`` or ``:`` in it, or ``localhost``, names a registry; a
reference without one goes to the default registry (Docker Hub unless configured), and so
does every ``bolt://NAME:TAG``.  On Docker Hub a one-component repository lives under
``library/``.  The image's local name in the store is the reference as written, without
``bolt://`` and without Docker Hub's ``docker.io/`` and ``library/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bolt.errors import InvalidInput
from bolt.images import refs
from bolt.images.digests import is_digest

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
SCHEME = "bolt://"
_REPO = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
_HOST = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$"
)
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class RemoteRef:
    registry: str  # "docker.io", "127.0.0.1:5000", "ghcr.io"
    repository: str  # "library/alpine", "team/app"
    tag: str | None
    digest: str | None
    local: str  # the name in the image store: "alpine:latest", "127.0.0.1:5000/app:1"

    @property
    def api_host(self) -> str:
        """Where the API lives (Docker Hub serves it from another host)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def reference(self) -> str:
        """What the manifest endpoint is asked for: the digest if given, else the tag."""
        return self.digest or self.tag or refs.DEFAULT_TAG

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def is_registry_host(component: str) -> bool:
    return ("." in component or ":" in component or component == "localhost") and bool(
        _HOST.match(component)
    )


def parse(text: str, default_registry: str = DOCKER_HUB) -> RemoteRef:
    """Parse a remote reference; anything malformed is refused with the rules."""
    original = text
    text = text.removeprefix(SCHEME)
    forced_default = original.startswith(SCHEME)
    name, _, digest = text.partition("@")
    if digest and not is_digest(digest):
        raise _invalid(original, "a digest is sha256:<64 hex digits>")
    tag: str | None = None
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.match(tag):
            raise _invalid(original, "a tag is up to 128 letters, digits, '_', '.', '-'")
    first, slash, rest = name.partition("/")
    if slash and is_registry_host(first) and not forced_default:
        registry, repository, local_name = first, rest, name
    else:
        registry, repository, local_name = default_registry, name, name
    if registry == DOCKER_HUB:
        local_name = repository
        if local_name.startswith("library/") and local_name.count("/") == 1:
            local_name = local_name.removeprefix("library/")
        if "/" not in repository:
            repository = f"library/{repository}"
    if not _REPO.match(repository):
        raise _invalid(
            original, "a repository is lowercase letters, digits and . _ - in /-separated parts"
        )
    if tag is None and not digest:
        tag = refs.DEFAULT_TAG
    local_tag = tag if tag is not None else "sha256-" + digest.removeprefix("sha256:")[:12]
    return RemoteRef(registry, repository, tag, digest or None, f"{local_name}:{local_tag}")


def _invalid(text: str, rule: str) -> InvalidInput:
    return InvalidInput(
        f"invalid image reference {text!r}",
        hint=f"use [bolt://][REGISTRY/]REPOSITORY[:TAG][@DIGEST]; {rule}",
    )


def registry_host(text: str) -> str:
    """A registry as ``bolt login`` takes it: ``HOST[:PORT]``, a URL (``https://HOST/…``)
    or one of Docker Hub's names, which all mean ``docker.io``."""
    host = text.split("://", 1)[-1].split("/", 1)[0]
    if host in ("docker.io", "index.docker.io", DOCKER_HUB_API):
        return DOCKER_HUB
    if not is_registry_host(host):
        raise InvalidInput(
            f"{text!r} is not a registry",
            hint="give a host name with a dot or a port (registry.example.com, "
            "127.0.0.1:5000), localhost, or docker.io",
        )
    return host
