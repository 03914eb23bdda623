"""The [snapshots] policy: one validator naming the dotted key, and pruning by keep rules."""

from __future__ import annotations

import datetime as dt

import pytest

from bolt.capsules.retention import Candidate, PolicyError, SnapshotPolicy, plan_prune


def _at(day: int, hour: int = 12) -> float:
    return dt.datetime(2026, 11, day, hour, tzinfo=dt.UTC).timestamp()


def test_a_boltfile_table_becomes_a_policy() -> None:
    policy = SnapshotPolicy.from_table(
        {"keep_last": 3, "keep_daily": 7, "before_surge_up": True, "before_driver_update": False}
    )
    assert policy == SnapshotPolicy(keep_last=3, keep_daily=7, before_surge_up=True)


@pytest.mark.parametrize(
    ("table", "key", "words"),
    [
        ({"keep_lats": 3}, "snapshots.keep_lats", "unknown key"),
        ({"keep_daily": "7"}, "snapshots.keep_daily", "whole number"),
        ({"keep_daily": 7.5}, "snapshots.keep_daily", "whole number"),
        ({"keep_daily": float("nan")}, "snapshots.keep_daily", "NaN"),
        ({"keep_daily": True}, "snapshots.keep_daily", "whole number"),
        ({"keep_weekly": -1}, "snapshots.keep_weekly", "between 0"),
        ({"keep_weekly": 10**12}, "snapshots.keep_weekly", "between 0"),
        ({"before_surge_up": "yes"}, "snapshots.before_surge_up", "true or false"),
    ],
)
def test_a_wrong_value_names_its_dotted_key(table: dict, key: str, words: str) -> None:
    with pytest.raises(PolicyError) as err:
        SnapshotPolicy.from_table(table)
    assert err.value.key == key
    assert words in err.value.message and err.value.exit_code == 2


def test_keep_last_keeps_the_newest() -> None:
    snaps = [Candidate(f"s{d}", _at(d)) for d in range(1, 6)]
    assert plan_prune(snaps, SnapshotPolicy(keep_last=2)) == ["s3", "s2", "s1"]


def test_keep_daily_keeps_the_newest_of_each_day() -> None:
    snaps = [
        Candidate("d1-early", _at(1, 8)),
        Candidate("d1-late", _at(1, 20)),
        Candidate("d2", _at(2)),
        Candidate("d3-early", _at(3, 1)),
        Candidate("d3-late", _at(3, 23)),
    ]
    doomed = plan_prune(snaps, SnapshotPolicy(keep_daily=2))
    assert sorted(doomed) == ["d1-early", "d1-late", "d3-early"]


def test_rules_add_up_and_no_rule_keeps_everything() -> None:
    snaps = [Candidate(f"s{d}", _at(d)) for d in range(1, 30)]
    doomed = plan_prune(snaps, SnapshotPolicy(keep_last=1, keep_weekly=2))
    kept = {s.name for s in snaps} - set(doomed)
    assert "s29" in kept and len(kept) == 2  # the newest also stands for its week
    assert plan_prune(snaps, SnapshotPolicy()) == []


@pytest.mark.root
@pytest.mark.runtime
def test_before_surge_up_snapshots_the_project_and_prunes_by_the_policy(
    capsules_no_gpu: object,
) -> None:
    import asyncio
    import os

    from bolt.capsules import retention
    from bolt.capsules.snapshots import Snapshot

    c = capsules_no_gpu
    c.ok(
        "run",
        "-d",
        "--name",
        "cap-proj",
        "--label",
        "bolt.surge.project=demo",  # type: ignore[attr-defined]
        "busybox",
        "sleep",
        "100000",
    )
    c.run_container("cap-other")  # type: ignore[attr-defined]
    root = c.bolt.root  # type: ignore[attr-defined]
    policy = SnapshotPolicy(keep_last=1, before_surge_up=True)
    first = asyncio.run(retention.before_surge_up("demo", policy, root=root))
    second = asyncio.run(retention.before_surge_up("demo", policy, root=root))
    assert first.name != second.name
    left = Snapshot.list(root=root)
    assert [s.name for s in left] == [second.name]  # the older automatic one was pruned
    assert left[0].trigger == "before_surge_up" and left[0].project == "demo"
    assert left[0].summary()["containers"] == ["cap-proj"]
    off = SnapshotPolicy(keep_last=1)
    assert asyncio.run(retention.before_surge_up("demo", off, root=root)) is None
    assert os.path.isdir(root)
