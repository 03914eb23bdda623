"""The transaction state machine: apply → read back → watch → (confirm) → commit, or revert.

Pure logic in the aioquic manner: it is fed outcomes, observations, confirmations and
``now``, and answers with the actions to take.  It never reads a clock, calls NVML or
touches the journal; :mod:`nvcontrol.control.runner` does that and feeds it back.

Lifecycle::

    begin(now)            -> [Apply]
    applied(now, results) -> [Watch(until), AskConfirm(deadline)?]  or [Rollback(cause)]
    observe(now, obs)     -> []  or [Rollback(cause)]
    confirm(now) / decline(now) / tick(now)
                          -> [Commit] when the window is over and the user agreed (if asked),
                             [Rollback(cause)] when the confirm deadline passes or on decline

The stability window and the confirmation run side by side: a change commits only once the
window is over *and* (when asked) the user confirmed; instability at any moment before the
commit reverts it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# Clocks-event reasons that mean the GPU is protecting itself; new ones during the window
# are "unexpected throttling".  Power capping and idling are normal and never count.
DISTRESS_REASONS = frozenset(
    {"hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown"}
)


class Phase(enum.Enum):
    NEW = "new"
    APPLYING = "applying"
    WATCHING = "watching"
    COMMITTED = "committed"
    ROLLING_BACK = "rolling_back"


@dataclass(frozen=True)
class Policy:
    window_s: float = 5.0
    confirm: bool = False
    confirm_timeout_s: float = 15.0


@dataclass(frozen=True)
class Outcome:
    """What one write did, after reading the value back."""

    uuid: str
    label: str  # "GPU 0 (GPU-...)"
    field: str  # dotted setting name, e.g. "offsets.P0.graphics_mhz"
    requested: object
    before: object
    applied: object
    status: str  # "ok" | "snapped" | "ignored" | "recorded" (no NVML getter) | "failed"
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.status in ("ignored", "failed")

    def to_json(self) -> dict[str, object]:
        return {
            "uuid": self.uuid,
            "gpu": self.label,
            "field": self.field,
            "requested": self.requested,
            "before": self.before,
            "applied": self.applied,
            "status": self.status,
            "error": self.error,
        }

    def describe(self) -> str:
        if self.status == "ignored":
            return (
                f"{self.label}: the driver ignored {self.field}={self.requested} "
                f"(it still reads {self.applied})"
            )
        if self.status == "failed":
            return f"{self.label}: setting {self.field}={self.requested} failed: {self.error}"
        return f"{self.label}: {self.field}={self.applied} ({self.status})"


@dataclass(frozen=True)
class Observation:
    """One look at one GPU during the window."""

    uuid: str
    label: str
    lost: bool = False
    temperature_c: float | None = None
    temp_guard_c: float | None = None
    reasons: frozenset[str] = frozenset()
    xids: tuple[int, ...] = ()


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class Apply:
    pass


@dataclass(frozen=True)
class Watch:
    until: float


@dataclass(frozen=True)
class AskConfirm:
    deadline: float


@dataclass(frozen=True)
class Commit:
    pass


@dataclass(frozen=True)
class Rollback:
    cause: str


Action = Apply | Watch | AskConfirm | Commit | Rollback


@dataclass
class Transaction:
    policy: Policy
    baseline_reasons: dict[str, frozenset[str]] = field(default_factory=dict)
    phase: Phase = Phase.NEW
    window_end: float | None = None
    confirm_deadline: float | None = None
    confirmed: bool = False
    cause: str | None = None

    # ------------------------------------------------------------------ inputs

    def begin(self, now: float) -> list[Action]:
        self._expect(Phase.NEW)
        self.phase = Phase.APPLYING
        return [Apply()]

    def applied(self, now: float, outcomes: Sequence[Outcome]) -> list[Action]:
        self._expect(Phase.APPLYING)
        failures = [o for o in outcomes if o.failed]
        if failures:
            return self._rollback("; ".join(o.describe() for o in failures))
        self.phase = Phase.WATCHING
        self.window_end = now + self.policy.window_s
        actions: list[Action] = [Watch(self.window_end)]
        if self.policy.confirm:
            self.confirm_deadline = now + self.policy.confirm_timeout_s
            actions.append(AskConfirm(self.confirm_deadline))
        return actions + self.tick(now)

    def failed(self, now: float, cause: str) -> list[Action]:
        """Anything went wrong outside the machine's view (an exception, a signal)."""
        if self.phase in (Phase.COMMITTED, Phase.ROLLING_BACK):
            return []
        return self._rollback(cause)

    def observe(self, now: float, observations: Iterable[Observation]) -> list[Action]:
        if self.phase is not Phase.WATCHING:
            return []
        problems = [p for o in observations for p in self._problems(o)]
        if problems:
            return self._rollback("; ".join(problems))
        return self.tick(now)

    def confirm(self, now: float) -> list[Action]:
        if self.phase is Phase.WATCHING:
            self.confirmed = True
            return self.tick(now)
        return []

    def decline(self, now: float) -> list[Action]:
        if self.phase is Phase.WATCHING:
            return self._rollback("the change was declined at the prompt")
        return []

    def tick(self, now: float) -> list[Action]:
        if self.phase is not Phase.WATCHING:
            return []
        waiting_for_user = self.policy.confirm and not self.confirmed
        if waiting_for_user and self.confirm_deadline is not None and now >= self.confirm_deadline:
            return self._rollback(
                f"not confirmed within {self.policy.confirm_timeout_s:g} s "
                "(answer the prompt or run `nvctl confirm`)"
            )
        if self.window_end is not None and now >= self.window_end and not waiting_for_user:
            self.phase = Phase.COMMITTED
            return [Commit()]
        return []

    # ------------------------------------------------------------------ queries

    @property
    def done(self) -> bool:
        return self.phase in (Phase.COMMITTED, Phase.ROLLING_BACK)

    def next_deadline(self) -> float | None:
        """When :meth:`tick` may next change something (the runner's wake-up time)."""
        if self.phase is not Phase.WATCHING:
            return None
        times = [t for t in (self.window_end, self.confirm_deadline) if t is not None]
        return min(times) if times else None

    # ------------------------------------------------------------------ internals

    def _problems(self, o: Observation) -> list[str]:
        out: list[str] = []
        if o.lost:
            out.append(f"{o.label} fell off the bus (GPU lost)")
        for code in o.xids:
            out.append(f"{o.label} reported Xid {code}")
        if (
            o.temperature_c is not None
            and o.temp_guard_c is not None
            and o.temperature_c > o.temp_guard_c
        ):
            out.append(
                f"{o.label} reached {o.temperature_c:g} °C, above the {o.temp_guard_c:g} °C guard"
            )
        new = (o.reasons & DISTRESS_REASONS) - self.baseline_reasons.get(o.uuid, frozenset())
        if new:
            out.append(f"{o.label} started throttling unexpectedly ({', '.join(sorted(new))})")
        return out

    def _rollback(self, cause: str) -> list[Action]:
        self.phase = Phase.ROLLING_BACK
        self.cause = cause
        return [Rollback(cause)]

    def _expect(self, phase: Phase) -> None:
        if self.phase is not phase:
            raise RuntimeError(f"transaction is {self.phase.value}, expected {phase.value}")
