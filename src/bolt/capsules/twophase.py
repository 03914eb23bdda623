"""The restore of a capsule snapshot as one two-phase operation across providers.

Pure logic in the manner of :mod:`aioquic`'s connection (and nvcontrol's GPU transaction):
it is fed what happened and answers with the actions to take.  It never touches a
provider, a file or the journal; :mod:`bolt.capsules.executor` runs the actions, records
each step in the journal *before* it acts, and feeds the outcome back.

Lifecycle, for providers ``p1..pn`` in order::

    begin()                    -> [Prepare(p1)]
    prepared(p)                -> [Prepare(next)]  or, after the last one, [Decide(), Commit(p1)]
    committed(p)               -> [Commit(next)]   or, after the last one, [Finish(p1..pn), Done]
    failed(p, cause)           -> [Abort(q, committed=...) for every q touched, newest first,
                                   then Finish(all touched), Done(rolled_back)]

``Decide`` is the commit point: the executor makes the decision durable before the first
``Commit``.  A process killed before it is rolled back (every prepared provider aborts:
nothing was changed yet); one killed after it is rolled forward (every commit runs again, so
``commit`` must be idempotent).  :meth:`Restore.resume` rebuilds the machine from the
journal's record and answers with the actions that repair it.

A commit that fails after the decision (a GPU that turns unstable, a container that will
not start again) rolls the whole restore back: the providers already committed are undone
with what they kept at ``prepare`` — a restore is all or nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field


class Phase(enum.Enum):
    PREPARING = "preparing"
    COMMITTING = "committing"  # the decision is durable: roll forward
    ABORTING = "aborting"  # undoing: roll back
    DONE = "done"


class Step(enum.Enum):
    """What the journal knows of one provider."""

    PENDING = "pending"
    PREPARED = "prepared"
    COMMITTED = "committed"


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class Prepare:
    provider: str


@dataclass(frozen=True)
class Decide:
    """Record the commit decision durably before the first commit."""


@dataclass(frozen=True)
class Commit:
    provider: str


@dataclass(frozen=True)
class Abort:
    provider: str
    committed: bool  # its commit ran (perhaps partly): undo it, not only drop its staging


@dataclass(frozen=True)
class Finish:
    """Forget what the provider kept for an undo (staged copies, previous upper dirs)."""

    provider: str


@dataclass(frozen=True)
class Done:
    restored: bool
    cause: str | None = None


Action = Prepare | Decide | Commit | Abort | Finish | Done


@dataclass
class Restore:
    providers: tuple[str, ...]
    phase: Phase = Phase.PREPARING
    steps: dict[str, Step] = field(default_factory=dict)
    cause: str | None = None

    def __post_init__(self) -> None:
        if len(set(self.providers)) != len(self.providers):
            raise ValueError(f"providers named twice: {self.providers}")
        for p in self.providers:
            self.steps.setdefault(p, Step.PENDING)

    # ------------------------------------------------------------------ inputs

    def begin(self) -> list[Action]:
        self._expect(Phase.PREPARING)
        return self._next_prepare()

    def prepared(self, provider: str) -> list[Action]:
        self._expect(Phase.PREPARING)
        self._advance(provider, Step.PENDING, Step.PREPARED)
        return self._next_prepare()

    def committed(self, provider: str) -> list[Action]:
        self._expect(Phase.COMMITTING)
        self._advance(provider, Step.PREPARED, Step.COMMITTED)
        return self._next_commit()

    def failed(self, provider: str | None, cause: str) -> list[Action]:
        """A prepare or commit raised (or the process is being interrupted): roll back.
        ``provider`` is the one that failed; its own step counts as touched."""
        if self.phase in (Phase.ABORTING, Phase.DONE):
            return []
        return self._rollback(provider, cause, changed=self.phase is Phase.COMMITTING)

    # ------------------------------------------------------------------ crash repair

    @classmethod
    def resume(
        cls, providers: Sequence[str], phase: Phase, steps: dict[str, Step], cause: str | None
    ) -> tuple[Restore, list[Action]]:
        """The machine of a restore whose process died, and the actions that finish it:
        before the decision, roll back; after it, roll forward."""
        machine = cls(tuple(providers), phase, dict(steps), cause)
        if phase is Phase.PREPARING:
            # The provider being prepared when the process died may have staged something.
            current = next((p for p in machine.providers if steps[p] is Step.PENDING), None)
            return machine, machine.failed(current, "the restoring process died before its commit")
        if phase is Phase.COMMITTING:
            return machine, machine._next_commit()
        if phase is Phase.ABORTING:
            # Run the undo again (aborts are idempotent).  Which provider failed is not
            # known any more, so every prepared one is undone as if its commit had run.
            return machine, machine._rollback(
                None, cause or "an earlier rollback was interrupted", changed=True
            )
        return machine, []

    # ------------------------------------------------------------------ queries

    @property
    def done(self) -> bool:
        return self.phase is Phase.DONE

    # ------------------------------------------------------------------ internals

    def _next_prepare(self) -> list[Action]:
        for p in self.providers:
            if self.steps[p] is Step.PENDING:
                return [Prepare(p)]
        self.phase = Phase.COMMITTING
        return [Decide(), *self._next_commit()]

    def _next_commit(self) -> list[Action]:
        for p in self.providers:
            if self.steps[p] is not Step.COMMITTED:
                return [Commit(p)]
        return [*(Finish(p) for p in self.providers), self._done(restored=True)]

    def _rollback(self, provider: str | None, cause: str, *, changed: bool) -> list[Action]:
        """Abort every provider touched, newest first; ``changed``: a prepared provider may
        have changed live state (its commit ran or was running), so undo it fully."""
        self.cause = cause
        self.phase = Phase.ABORTING
        aborts: list[Abort] = []
        for p in reversed(self.providers):
            step = self.steps[p]
            if step is Step.COMMITTED:
                aborts.append(Abort(p, committed=True))
            elif step is Step.PREPARED:
                aborts.append(Abort(p, committed=changed and (provider in (None, p))))
            elif p == provider:
                aborts.append(Abort(p, committed=False))  # its prepare may have staged a part
        return [
            *aborts,
            *(Finish(a.provider) for a in reversed(aborts)),
            self._done(restored=False),
        ]

    def _done(self, *, restored: bool) -> Done:
        self.phase = Phase.DONE
        return Done(restored, None if restored else self.cause)

    def _advance(self, provider: str, before: Step, after: Step) -> None:
        if provider not in self.steps:
            raise RuntimeError(f"unknown provider {provider!r}")
        if self.steps[provider] is not before:
            raise RuntimeError(
                f"provider {provider} is {self.steps[provider].value}, expected {before.value}"
            )
        self.steps[provider] = after

    def _expect(self, phase: Phase) -> None:
        if self.phase is not phase:
            raise RuntimeError(f"restore is {self.phase.value}, expected {phase.value}")
