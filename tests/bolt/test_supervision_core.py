"""The restart and health decisions, fed values and ``now`` (no processes)."""

from __future__ import annotations

import pytest

from bolt.runtime.supervision import BACKOFF_CAP, HealthState, restart_delay


@pytest.mark.parametrize(
    ("policy", "retries", "code", "restarts", "stopped", "restarts_again"),
    [
        ("no", None, 1, 0, False, False),
        ("on-failure", 3, 3, 0, False, True),
        ("on-failure", 3, 3, 3, False, False),
        ("on-failure", None, 0, 0, False, False),
        ("always", None, 0, 50, False, True),
        ("always", None, 1, 0, True, False),
        ("unless-stopped", None, 0, 0, False, True),
        ("unless-stopped", None, 0, 0, True, False),
    ],
)
def test_restart_decision(
    policy: str, retries: int | None, code: int, restarts: int, stopped: bool, restarts_again: bool
) -> None:
    delay = restart_delay(policy, retries, code, restarts, restarts, stopped)
    assert (delay is not None) == restarts_again


def test_backoff_doubles_and_is_capped() -> None:
    delays = [restart_delay("always", None, 1, n, n, False) for n in range(12)]
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8]
    assert max(d for d in delays if d is not None) == BACKOFF_CAP


def test_health_turns_unhealthy_after_retries_failures_and_healthy_on_a_pass() -> None:
    h = HealthState(interval=1.0, retries=3, start_period=0.0, started=0.0)
    assert h.poll(0.5).run is False
    changes = []
    t = 1.0
    for passed in (False, False, False, True):
        assert h.poll(t).run is True
        changes.append(h.result(passed, t))
        t += 1.0
    assert changes == [None, None, "unhealthy", "healthy"]


def test_failures_in_the_start_period_do_not_count() -> None:
    h = HealthState(interval=1.0, retries=1, start_period=5.0, started=0.0)
    assert h.result(False, 2.0) is None and h.status == "starting"
    assert h.result(False, 6.0) == "unhealthy"
