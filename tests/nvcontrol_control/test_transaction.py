"""The transaction state machine, driven with values and ``now`` (no NVML, no clock)."""

from __future__ import annotations

from nvcontrol.control.transaction import (
    Apply,
    AskConfirm,
    Commit,
    Observation,
    Outcome,
    Policy,
    Rollback,
    Transaction,
    Watch,
)

U = "GPU-aaaa"
LABEL = "GPU 0 (GPU-aaaa)"


def ok(field: str = "offsets.P0.graphics_mhz", applied: object = 100) -> Outcome:
    return Outcome(U, LABEL, field, 100, 0, applied, "ok")


def calm(temp: float = 50.0, reasons: frozenset[str] = frozenset()) -> Observation:
    return Observation(U, LABEL, temperature_c=temp, temp_guard_c=85.0, reasons=reasons)


def started(policy: Policy, outcomes: list[Outcome] | None = None) -> tuple[Transaction, list]:
    tx = Transaction(policy)
    assert tx.begin(0.0) == [Apply()]
    return tx, tx.applied(1.0, outcomes if outcomes is not None else [ok()])


def test_commits_once_the_stability_window_has_passed_quietly() -> None:
    tx, actions = started(Policy(window_s=5))
    assert actions == [Watch(6.0)]
    assert tx.observe(3.0, [calm()]) == []
    assert tx.next_deadline() == 6.0
    assert tx.observe(6.0, [calm()]) == [Commit()]
    assert tx.done


def test_a_zero_window_commits_right_after_the_read_back() -> None:
    _, actions = started(Policy(window_s=0))
    assert actions[-1] == Commit()


def test_an_xid_during_the_window_rolls_back_naming_the_gpu_and_code() -> None:
    tx, _ = started(Policy(window_s=5))
    actions = tx.observe(2.0, [Observation(U, LABEL, xids=(13,))])
    assert actions == [Rollback(f"{LABEL} reported Xid 13")]
    assert tx.observe(7.0, [calm()]) == []  # nothing after the decision


def test_a_lost_gpu_rolls_back() -> None:
    tx, _ = started(Policy(window_s=5))
    [action] = tx.observe(2.0, [Observation(U, LABEL, lost=True)])
    assert isinstance(action, Rollback) and "fell off the bus" in action.cause


def test_temperature_above_the_guard_rolls_back() -> None:
    tx, _ = started(Policy(window_s=5))
    [action] = tx.observe(2.0, [calm(temp=91.0)])
    assert isinstance(action, Rollback) and "91 °C, above the 85 °C guard" in action.cause


def test_only_new_distress_throttling_counts_as_unexpected() -> None:
    tx = Transaction(Policy(window_s=5), baseline_reasons={U: frozenset({"sw_thermal_slowdown"})})
    tx.begin(0.0)
    tx.applied(0.0, [ok()])
    assert tx.observe(1.0, [calm(reasons=frozenset({"sw_thermal_slowdown", "sw_power_cap"}))]) == []
    [action] = tx.observe(2.0, [calm(reasons=frozenset({"hw_slowdown"}))])
    assert isinstance(action, Rollback) and "hw_slowdown" in action.cause


def test_a_value_the_driver_ignored_rolls_back_before_watching() -> None:
    ignored = Outcome(U, LABEL, "power_limit_w", 300.0, 450.0, 450.0, "ignored")
    _, actions = started(Policy(window_s=5), [ok(), ignored])
    [action] = actions
    assert isinstance(action, Rollback)
    assert "ignored power_limit_w=300.0" in action.cause


def test_a_snapped_value_is_not_a_failure() -> None:
    snapped = Outcome(U, LABEL, "offsets.P0.graphics_mhz", 100, 0, 105, "snapped")
    _, actions = started(Policy(window_s=0), [snapped])
    assert actions[-1] == Commit()


def test_unconfirmed_change_reverts_at_the_deadline_even_if_stable() -> None:
    tx, actions = started(Policy(window_s=2, confirm=True, confirm_timeout_s=15))
    assert AskConfirm(16.0) in actions
    assert tx.observe(5.0, [calm()]) == []  # window over, still waiting for the user
    [action] = tx.tick(16.0)
    assert isinstance(action, Rollback) and "not confirmed within 15 s" in action.cause


def test_confirmation_commits_once_the_window_is_over() -> None:
    tx, _ = started(Policy(window_s=5, confirm=True, confirm_timeout_s=15))
    assert tx.confirm(2.0) == []  # confirmed early: the window still runs
    assert tx.tick(6.0) == [Commit()]


def test_instability_after_confirmation_still_rolls_back() -> None:
    tx, _ = started(Policy(window_s=5, confirm=True))
    tx.confirm(2.0)
    [action] = tx.observe(3.0, [Observation(U, LABEL, xids=(43,))])
    assert isinstance(action, Rollback)


def test_declining_at_the_prompt_rolls_back_at_once() -> None:
    tx, _ = started(Policy(window_s=5, confirm=True))
    [action] = tx.decline(2.0)
    assert isinstance(action, Rollback) and "declined" in action.cause
