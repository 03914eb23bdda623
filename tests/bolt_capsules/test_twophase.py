"""The pure restore machine: every prepare before any commit, roll back before the decision,
roll forward after it, all or nothing."""

from __future__ import annotations

from bolt.capsules.twophase import (
    Abort,
    Commit,
    Decide,
    Done,
    Finish,
    Phase,
    Prepare,
    Restore,
    Step,
)


def test_every_provider_prepares_before_any_commits_and_the_decision_comes_first() -> None:
    m = Restore(("fs", "gpu"))
    assert m.begin() == [Prepare("fs")]
    assert m.prepared("fs") == [Prepare("gpu")]
    assert m.prepared("gpu") == [Decide(), Commit("fs")]
    assert m.phase is Phase.COMMITTING
    assert m.committed("fs") == [Commit("gpu")]
    assert m.committed("gpu") == [Finish("fs"), Finish("gpu"), Done(restored=True)]
    assert m.done


def test_a_failed_prepare_aborts_what_was_prepared_without_undoing_anything() -> None:
    m = Restore(("fs", "gpu"))
    m.begin()
    m.prepared("fs")
    actions = m.failed("gpu", "GPU-1 is gone")
    assert actions == [
        Abort("gpu", committed=False),
        Abort("fs", committed=False),
        Finish("fs"),
        Finish("gpu"),
        Done(restored=False, cause="GPU-1 is gone"),
    ]


def test_a_failed_commit_undoes_the_providers_already_committed_newest_first() -> None:
    m = Restore(("fs", "gpu", "extra"))
    m.begin()
    for p in ("fs", "gpu", "extra"):
        m.prepared(p)
    m.committed("fs")
    actions = m.failed("gpu", "unstable")
    assert actions[:3] == [
        Abort("extra", committed=False),
        Abort("gpu", committed=True),  # its commit ran part-way
        Abort("fs", committed=True),
    ]
    assert actions[-1] == Done(restored=False, cause="unstable")


def test_a_process_killed_before_the_decision_is_rolled_back() -> None:
    steps = {"fs": Step.PREPARED, "gpu": Step.PENDING}
    _, actions = Restore.resume(["fs", "gpu"], Phase.PREPARING, steps, None)
    assert Abort("fs", committed=False) in actions
    assert Abort("gpu", committed=False) in actions  # it may have staged a part
    assert isinstance(actions[-1], Done) and not actions[-1].restored


def test_a_process_killed_after_the_decision_is_rolled_forward() -> None:
    steps = {"fs": Step.COMMITTED, "gpu": Step.PREPARED}
    m, actions = Restore.resume(["fs", "gpu"], Phase.COMMITTING, steps, None)
    assert actions == [Commit("gpu")]
    assert m.committed("gpu") == [Finish("fs"), Finish("gpu"), Done(restored=True)]


def test_an_interrupted_rollback_runs_its_undo_again() -> None:
    steps = {"fs": Step.COMMITTED, "gpu": Step.PREPARED}
    _, actions = Restore.resume(["fs", "gpu"], Phase.ABORTING, steps, "unstable")
    assert actions[:2] == [Abort("gpu", committed=True), Abort("fs", committed=True)]
    assert actions[-1] == Done(restored=False, cause="unstable")


def test_a_finished_restore_needs_nothing() -> None:
    steps = {"fs": Step.COMMITTED}
    _, actions = Restore.resume(["fs"], Phase.DONE, steps, None)
    assert actions == []


def test_steps_out_of_order_are_refused() -> None:
    m = Restore(("fs",))
    m.begin()
    try:
        m.committed("fs")
    except RuntimeError as err:
        assert "expected committing" in str(err)
    else:
        raise AssertionError("a commit before the decision was accepted")
