"""The registry operations as the CLI and the builder use them: a reference is parsed with
the configured default registry, a client is opened with the stored credentials and the
right scheme, and the work is done against the image store under ``root``.

``pull_image(root, "bolt://alpine:latest")`` is what ``FROM bolt://alpine:latest`` needs.
"""

from __future__ import annotations

from pathlib import Path

from bolt.images.store import ImageRecord, ImageStore
from bolt.registry import config as registry_config
from bolt.registry.auth import AuthFile, Credentials
from bolt.registry.client import RegistryClient
from bolt.registry.progress import Progress
from bolt.registry.reference import DOCKER_HUB, DOCKER_HUB_API, RemoteRef, parse, registry_host


def parse_ref(root: Path, text: str) -> RemoteRef:
    """A remote reference, with bare names and ``bolt://`` going to the default registry."""
    return parse(text, registry_config.load(root).default_registry)


def open_client(
    root: Path,
    registry: str,
    *,
    insecure: bool = False,
    credentials: Credentials | None = None,
) -> RegistryClient:
    """A client for ``registry``: plain HTTP if ``insecure`` or configured so, else HTTPS
    trusting the system's and the registry's own authorities (``certs.d``); and the
    credentials given, else those ``bolt login`` stored."""
    from bolt.registry.certs import tls_context

    settings = registry_config.load(root)
    api_host = DOCKER_HUB_API if registry == DOCKER_HUB else registry
    insecure = insecure or settings.is_insecure(registry)
    return RegistryClient(
        registry,
        api_host,
        insecure=insecure,
        credentials=credentials or AuthFile.under(root).get(registry),
        tls=None if insecure else tls_context(root, registry),
    )


def pull_image(
    root: Path,
    text: str,
    *,
    insecure: bool = False,
    progress: Progress | None = None,
    platform: str | None = None,
) -> ImageRecord:
    """Pull ``text``; from an index, the image for ``platform`` (``OS/ARCH[/VARIANT]``,
    default: this machine's)."""
    from bolt.registry.manifest import parse_platform
    from bolt.registry.pull import pull

    wanted = parse_platform(platform) if platform is not None else None
    ref = parse_ref(root, text)
    with open_client(root, ref.registry, insecure=insecure) as client:
        return pull(ImageStore(root), ref, client, progress=progress, platform=wanted)


def push_image(
    root: Path,
    source: str,
    dest: str | None = None,
    *,
    insecure: bool = False,
    progress: Progress | None = None,
    chunk_size: int | None = None,
) -> tuple[RemoteRef, str]:
    """Push the local image ``source`` to ``dest`` (default: the reference ``source``
    itself names); returns where it went and its manifest digest."""
    from bolt.registry.push import push

    store = ImageStore(root)
    record = store.resolve(source)
    ref = parse_ref(root, dest or record.ref)
    with open_client(root, ref.registry, insecure=insecure) as client:
        digest = push(store, record.ref, ref, client, progress=progress, chunk_size=chunk_size)
    return ref, digest


def login(root: Path, registry: str, credentials: Credentials, *, insecure: bool = False) -> None:
    """Check ``credentials`` against ``registry``, then store them."""
    registry = registry_host(registry)
    with open_client(root, registry, insecure=insecure, credentials=credentials) as client:
        client.ping()
    AuthFile.under(root).set(registry, credentials)


def logout(root: Path, registry: str) -> bool:
    return AuthFile.under(root).remove(registry_host(registry))
