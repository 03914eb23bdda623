"""State providers: what a capsule snapshot holds, one provider per kind of state.

A provider is registered under the entry point group ``bolt.snapshot_providers`` (name =
the provider's name, value = a class made with no arguments).  Bolt registers its own
``containers`` provider (:mod:`bolt.capsules.filesystem`) that way; nvcontrol registers
``nvcontrol.gpu-config``.  Bolt never imports a provider's package by name.

The protocol is a two-phase one, so that a restore across providers is all or nothing
(:mod:`bolt.capsules.twophase`):

* ``capture(ctx)`` — the provider's document (a JSON object), or None when it has nothing
  to hold here (no GPU driver, no container selected).  Large data goes into ``ctx.files``.
* ``check(doc)`` — validate a document read back from the database (synchronous, no
  I/O); raise an error naming the damaged field.  Runs before a restore is journaled.
* ``prepare(doc, ctx)`` — check that the document can be restored and stage what can be
  staged, *without changing live state*; returns a record (JSON object) of what it staged
  and what it needs to undo a commit.  The record is journaled before ``commit`` runs.
* ``commit(doc, record, ctx)`` — make the live state match the document.  Idempotent: after a
  crash it runs again.
* ``abort(doc, record, ctx, committed)`` — drop what ``prepare`` staged; with ``committed``,
  also undo what ``commit`` may have done (back to the state ``prepare`` saw).  Idempotent.
* ``finish(doc, record, ctx)`` — forget the undo data once the outcome is final.
* ``discard(doc, ctx)`` (synchronous: files only) — release what a capture holds: its files when the snapshot is
  deleted, or (``doc`` None) whatever a capture killed half-way left behind.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from bolt.errors import InvalidInput, UserError

GROUP = "bolt.snapshot_providers"
BUILTIN = {"containers": "bolt.capsules.filesystem:ContainerFilesystems"}

Document = dict[str, Any]


@dataclass(frozen=True)
class Selection:
    """Which containers a snapshot covers: given ones, a project's, or (neither) all."""

    containers: tuple[str, ...] = ()
    project: str | None = None


@dataclass(frozen=True)
class Context:
    root: Path  # $BOLT_ROOT
    files: Path  # the snapshot's own directory (capture writes, prepare reads)
    selection: Selection = field(default_factory=Selection)
    # Progress for the user: (provider, message)
    say: Any = None

    def tell(self, provider: str, message: str) -> None:
        if self.say is not None:
            self.say(provider, message)


@runtime_checkable
class StateProvider(Protocol):
    name: str

    async def capture(self, ctx: Context) -> Document | None: ...

    def check(self, doc: Document) -> None: ...

    async def prepare(self, doc: Document, ctx: Context) -> Document: ...

    async def commit(self, doc: Document, record: Document, ctx: Context) -> None: ...

    async def abort(
        self, doc: Document, record: Document, ctx: Context, committed: bool
    ) -> None: ...

    async def finish(self, doc: Document, record: Document, ctx: Context) -> None: ...

    def discard(self, doc: Document | None, ctx: Context) -> None: ...


class ProviderError(UserError):
    """A provider could not be loaded, or does not follow the protocol."""


@functools.cache
def _entry_points() -> dict[str, str]:
    """The registered providers (scanning installed distributions costs ~0.1 s: once)."""
    found = dict(BUILTIN)
    for ep in metadata.entry_points(group=GROUP):
        found[ep.name] = ep.value
    return found


def available() -> list[str]:
    """Names of the registered providers, Bolt's own first."""
    names = list(_entry_points())
    return sorted(names, key=lambda n: (n not in BUILTIN, n))


def load(name: str) -> StateProvider:
    spec = _entry_points().get(name)
    if spec is None:
        raise ProviderError(
            f"snapshot provider {name!r} is not installed",
            hint="installed providers: " + ", ".join(available()),
        )
    module_name, _, attr = spec.partition(":")
    try:
        import importlib

        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise ProviderError(f"snapshot provider {name!r} ({spec}) cannot be loaded: {err}") from err
    provider = obj()
    if not isinstance(provider, StateProvider):
        raise ProviderError(f"snapshot provider {name!r} ({spec}) does not follow the protocol")
    if provider.name != name:
        raise ProviderError(
            f"snapshot provider registered as {name!r} calls itself {provider.name!r}"
        )
    return provider


def load_many(names: Sequence[str] | None) -> list[StateProvider]:
    """The providers ``names`` (None: every installed one)."""
    if names is not None:
        unknown = [n for n in names if n not in _entry_points()]
        if unknown:
            raise InvalidInput(
                f"unknown snapshot provider {unknown[0]!r}",
                hint="installed providers: " + ", ".join(available()),
            )
    return [load(n) for n in (available() if names is None else names)]
