"""Image references: ``name[:tag]`` (``name`` alone means ``name:latest``)."""

from __future__ import annotations

import re

from bolt.errors import InvalidInput

DEFAULT_TAG = "latest"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]+)*(?::[0-9]+)?/)?"
_NAME = re.compile(rf"^{_DOMAIN}{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def split(ref: str) -> tuple[str, str]:
    """``(name, tag)`` of a reference; the tag defaults to ``latest``."""
    colon = ref.rfind(":")
    if colon > ref.rfind("/"):
        return ref[:colon], ref[colon + 1 :]
    return ref, DEFAULT_TAG


def is_valid(ref: str) -> bool:
    if "@" in ref:
        return False
    name, tag = split(ref)
    return bool(_NAME.match(name) and _TAG.match(tag))


def normalize(ref: str) -> str:
    """``name:tag`` for a valid reference; anything else is refused with the rules."""
    if not is_valid(ref):
        raise InvalidInput(
            f"invalid image reference {ref!r}",
            hint="use NAME[:TAG]: lowercase letters, digits and . _ - in the name "
            "(path components separated by /), a tag of up to 128 letters, digits, . _ -",
        )
    name, tag = split(ref)
    return f"{name}:{tag}"
