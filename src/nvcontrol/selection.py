"""GPU selection: what ``-i/--gpu`` accepts, resolved against the GPUs the driver lists.

A selector is ``all``, or a comma list of: an index (``0``), a UUID or a unique prefix of
one (``GPU-5f3a``; the ``GPU-`` part may be left out; case-insensitive), or a PCI bus id in
any of its common forms (``01:00.0``, ``0000:01:00.0``, ``00000000:01:00.0``).  Pure logic:
it takes identities and returns the chosen ones, in enumeration order, without duplicates.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol, TypeVar

from nvcontrol.errors import GpuSelectionError

_PCI = re.compile(r"^(?:([0-9a-f]{1,8}):)?([0-9a-f]{1,2}):([0-9a-f]{1,2})\.([0-7])$")


class Identified(Protocol):
    @property
    def index(self) -> int: ...
    @property
    def uuid(self) -> str: ...
    @property
    def pci_bus_id(self) -> str: ...


G = TypeVar("G", bound=Identified)


def normalize_pci(bus_id: str) -> str | None:
    """``0000:01:00.0`` etc. -> ``00000000:01:00.0`` (NVML's form), or None if not a bus id."""
    m = _PCI.match(bus_id.strip().lower())
    if not m:
        return None
    domain, bus, dev, fn = m.groups()
    return f"{int(domain or '0', 16):08x}:{int(bus, 16):02x}:{int(dev, 16):02x}.{fn}"


def _describe(gpus: Sequence[Identified]) -> str:
    return ", ".join(f"{g.index}={g.uuid}" for g in gpus) or "none"


def _match_one(token: str, gpus: Sequence[G]) -> G:
    if token.isascii() and token.isdigit():
        for g in gpus:
            if g.index == int(token):
                return g
        raise GpuSelectionError(
            f"no GPU with index {token}",
            hint=f"this machine has {len(gpus)} GPU(s): {_describe(gpus)}",
        )
    pci = normalize_pci(token)
    if pci is not None:
        for g in gpus:
            if normalize_pci(g.pci_bus_id) == pci:
                return g
        raise GpuSelectionError(
            f"no GPU at PCI bus id {token}",
            hint="GPUs: " + ", ".join(f"{g.index}={g.pci_bus_id}" for g in gpus),
        )
    want = token.lower()
    if not want.startswith("gpu-"):
        want = "gpu-" + want
    found = [g for g in gpus if g.uuid.lower().startswith(want)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise GpuSelectionError(
            f"no GPU matches {token!r} (not an index, UUID or PCI bus id)",
            hint=f"GPUs: {_describe(gpus)}",
        )
    raise GpuSelectionError(
        f"{token!r} matches {len(found)} GPUs: " + ", ".join(g.uuid for g in found),
        hint="give more characters of the UUID",
    )


def parse(selector: str | None) -> list[str] | None:
    """The items of a selector, or ``None`` for every GPU (no selector, or ``all``).

    An empty selector, or one of only whitespace, is an error: ``-i "$UNSET_VAR"`` must
    never turn into "every GPU"."""
    if selector is None:
        return None
    if not selector.strip():
        raise GpuSelectionError(
            f"empty GPU selector {selector!r}",
            hint="give an index, a UUID, a PCI bus id, a comma list, or 'all'",
        )
    tokens = [t.strip() for t in selector.split(",")]
    if any(not t for t in tokens):
        raise GpuSelectionError(f"empty item in GPU selector {selector!r}")
    if any(t.lower() == "all" for t in tokens):
        return None
    return tokens


def select(selector: str | None, gpus: Sequence[G]) -> list[G]:
    """The GPUs a selector names (``None`` or ``all`` = every GPU)."""
    tokens = parse(selector)
    if not gpus:
        raise GpuSelectionError("the driver lists no GPUs")
    if tokens is None:
        return list(gpus)
    chosen: dict[int, G] = {}
    for token in tokens:
        g = _match_one(token, gpus)
        chosen[g.index] = g
    return [chosen[i] for i in sorted(chosen)]
