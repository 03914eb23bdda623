"""Manifests as the distribution API serves them: OCI image manifests and indexes, Docker
v2 schema 2 manifests and manifest lists.  Pure: bytes in, checked values out."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from bolt.errors import InvalidInput, Unsupported
from bolt.images.digests import is_digest
from bolt.images.errors import CorruptBlob
from bolt.images.layout import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    INDEX_MEDIA_TYPE,
    INDEX_TYPES,
    MANIFEST_MEDIA_TYPE,
    MANIFEST_TYPES,
    platform_name,
)

ACCEPT = ", ".join((MANIFEST_MEDIA_TYPE, INDEX_MEDIA_TYPE, DOCKER_MANIFEST, DOCKER_LIST))
DOCKER_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
MAX_MANIFEST = 4 << 20

Descriptor = dict[str, Any]


@dataclass(frozen=True)
class Fetched:
    """A manifest or index as served: its exact bytes, digest and media type."""

    data: bytes
    digest: str
    media_type: str
    doc: dict[str, Any]

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    def descriptor(self) -> Descriptor:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check(data: bytes, content_type: str, where: str, expected: str | None) -> Fetched:
    """Parse a served manifest; ``expected`` (the digest asked for or announced) must be
    the digest of the bytes."""
    digest = digest_of(data)
    if expected is not None and digest != expected:
        raise CorruptBlob(
            f"manifest of {where} does not match its digest: expected {expected}, got {digest}",
            hint="the registry or something between us and it served damaged data",
        )
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptBlob(f"manifest of {where} is not JSON: {err}") from err
    if not isinstance(doc, dict):
        raise CorruptBlob(f"manifest of {where} is not a JSON object")
    media = str(doc.get("mediaType") or content_type.split(";")[0].strip())
    if media in DOCKER_SCHEMA1 or doc.get("schemaVersion") == 1:
        raise Unsupported(
            f"{where} is a Docker schema 1 manifest, which Bolt does not read",
            hint="push the image again with a current client (schema 2 or OCI)",
        )
    if media not in MANIFEST_TYPES and media not in INDEX_TYPES:
        if "manifests" in doc:
            media = INDEX_MEDIA_TYPE
        elif "layers" in doc:
            media = MANIFEST_MEDIA_TYPE
        else:
            raise Unsupported(f"{where}: unsupported manifest media type {media!r}")
    if media in MANIFEST_TYPES:
        _check_image_manifest(doc, where)
    return Fetched(data, digest, media, doc)


def _check_image_manifest(doc: dict[str, Any], where: str) -> None:
    config = doc.get("config")
    layers = doc.get("layers")
    if not isinstance(config, dict) or not isinstance(layers, list):
        raise CorruptBlob(f"manifest of {where} lacks its config or layers")
    for desc in (config, *layers):
        if not isinstance(desc, dict) or not is_digest(str(desc.get("digest", ""))):
            raise CorruptBlob(f"manifest of {where} has a descriptor without a sha256 digest")
        if not isinstance(desc.get("size"), int) or desc["size"] < 0:
            raise CorruptBlob(f"manifest of {where} has a descriptor without a valid size")


@dataclass(frozen=True)
class Platform:
    """An index entry's platform, as ``--platform`` names it: ``OS/ARCH[/VARIANT]``."""

    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def matches(self, plat: dict[str, Any]) -> bool:
        """Whether an index entry's ``platform`` object is this one (any variant when
        none is asked for)."""
        return (
            plat.get("os") == self.os
            and plat.get("architecture") == self.architecture
            and (self.variant is None or plat.get("variant") == self.variant)
        )


_PLATFORM_PART = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-")


def parse_platform(text: str) -> Platform:
    """``linux/arm64``, ``linux/arm/v7``: lower-case words; raises InvalidInput."""
    parts = text.split("/")
    if not 2 <= len(parts) <= 3 or not all(p and set(p) <= _PLATFORM_PART for p in parts):
        raise InvalidInput(
            f"--platform {text!r} is not OS/ARCH[/VARIANT]",
            hint="e.g. linux/amd64, linux/arm64 or linux/arm/v7 (lower case)",
        )
    return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


def pick_platform(index: dict[str, Any], wanted: Platform | str, where: str) -> Descriptor:
    """The entry of an index or manifest list for ``wanted`` (a platform, or an
    architecture under linux); the first if several match."""
    if isinstance(wanted, str):
        wanted = Platform("linux", wanted)
    seen: list[str] = []
    for child in index.get("manifests") or []:
        if not isinstance(child, dict):
            continue
        seen.append(platform_name(child))
        if wanted.matches(child.get("platform") or {}):
            if not is_digest(str(child.get("digest", ""))):
                raise CorruptBlob(f"{where}: the {wanted} entry has no sha256 digest")
            return child
    raise Unsupported(
        f"{where} has no image for {wanted}",
        hint=f"it has: {', '.join(seen) or 'no platforms'}",
    )


def diff_ids(config: dict[str, Any], layers: int, where: str) -> list[str]:
    ids = (config.get("rootfs") or {}).get("diff_ids")
    if not isinstance(ids, list) or len(ids) != layers or not all(is_digest(str(i)) for i in ids):
        raise CorruptBlob(
            f"image config of {where} names {len(ids) if isinstance(ids, list) else 0} "
            f"diff ids for {layers} layers"
        )
    return [str(i) for i in ids]
