"""Pure cores of what a monitor decides after the container starts: whether and when to
restart it (``restart_delay``), and how health probes move its health (``HealthState``).

Both take values and ``now`` and return decisions; the monitor (``bolt.runtime.monitor``)
runs the probes, sleeps the back-off and records the results.
"""

from __future__ import annotations

from typing import NamedTuple

BACKOFF_FIRST = 0.1  # seconds before the first restart, doubled for each quick exit
BACKOFF_CAP = 30.0
STEADY_AFTER = 10.0  # a run this long resets the back-off, as docker does


def restart_delay(
    policy: str,
    max_retries: int | None,
    exit_code: int,
    restarts: int,
    quick_exits: int,
    stopped: bool,
) -> float | None:
    """Seconds to wait before the next run, or None for no restart.

    ``restarts`` counts the restarts so far; ``quick_exits`` the runs in a row that
    ended before ``STEADY_AFTER``; ``stopped``: a user stopped or killed it."""
    if stopped or policy == "no":
        return None
    if policy == "on-failure":
        if exit_code == 0:
            return None
        if max_retries is not None and restarts >= max_retries:
            return None
    elif policy not in ("always", "unless-stopped"):
        return None
    return min(BACKOFF_CAP, BACKOFF_FIRST * (2 ** min(quick_exits, 16)))


class Probe(NamedTuple):
    """What the monitor must do now: run a probe (``run``), or nothing until ``next_at``."""

    run: bool
    next_at: float


class HealthState:
    """Health from probe results: ``starting`` until a probe passes (failures during the
    start period do not count), ``unhealthy`` after ``retries`` failures in a row,
    ``healthy`` after any pass."""

    def __init__(self, interval: float, retries: int, start_period: float, started: float) -> None:
        self.interval = interval
        self.retries = retries
        self.grace_until = started + start_period
        self.status = "starting"
        self.failures = 0
        self.next_at = started + interval
        self.running = False

    def poll(self, now: float) -> Probe:
        if not self.running and now >= self.next_at:
            self.running = True
            return Probe(True, self.next_at)
        return Probe(False, self.next_at)

    def result(self, passed: bool, now: float) -> str | None:
        """Record a finished probe; the new status when it changed."""
        self.running = False
        self.next_at = now + self.interval
        before = self.status
        if passed:
            self.failures = 0
            self.status = "healthy"
        elif now >= self.grace_until or self.status != "starting":
            self.failures += 1
            if self.failures >= self.retries:
                self.status = "unhealthy"
        return self.status if self.status != before else None
