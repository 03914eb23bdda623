"""Snapshot documents: TOML round trip, UUID keying, diff and restore plan (pure)."""

from __future__ import annotations

import tomllib

import pytest

from nvcontrol.control.errors import SnapshotError
from nvcontrol.control.snapshots import GpuEntry, GpuSnapshot, SnapshotStore, diff, plan_restore

A, B = "GPU-aaaaaaaa-0000", "GPU-bbbbbbbb-1111"


def config(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "offsets.P0.graphics_mhz": 105,
        "offsets.P0.memory_mhz": 500,
        "locked_clocks.graphics_mhz": [1000, 2000],
        "locked_clocks.memory_mhz": "unlocked",
        "power_limit_w": 360.0,
        "persistence_mode": True,
        "compute_mode": "Default",
        "fans.0": {"policy": "manual", "speed_pct": 60},
        "fans.1": {"policy": "auto"},
        "fan_curve": {"points": "40:30,80:100", "hysteresis_c": 3},
    }
    base.update(over)
    return base


def snap() -> GpuSnapshot:
    s = GpuSnapshot("stable", "2026-01-01T00:00:00+00:00")
    s.gpus[A] = GpuEntry(A, "RTX", 0, "00000000:01:00.0", config())
    s.gpus[B] = GpuEntry(B, "RTX", 1, "00000000:02:00.0", config(power_limit_w=450.0))
    return s


def test_toml_is_human_readable_and_round_trips() -> None:
    text = snap().to_toml()
    doc = tomllib.loads(text)
    assert doc["gpus"][A]["offsets"]["P0"]["graphics_mhz"] == 105
    assert doc["gpus"][A]["fans"]["0"] == {"policy": "manual", "speed_pct": 60}
    assert doc["gpus"][A]["fan_curve"]["points"] == "40:30,80:100"
    back = GpuSnapshot.from_toml(text, source="x")
    assert back.gpus[A].config == config()
    assert back.gpus[B].config["power_limit_w"] == 450.0


def test_diff_is_keyed_by_uuid_not_index() -> None:
    s = snap()
    # The live machine enumerates the two GPUs the other way round.
    live = {A: (1, config()), B: (0, config(power_limit_w=450.0))}
    assert diff(s, live) == []


def test_diff_names_gpu_field_and_both_values() -> None:
    live = {
        A: (0, config(power_limit_w=300.0, **{"fans.0": {"policy": "auto"}})),
        B: (1, config(power_limit_w=450.0)),
    }
    got = diff(snap(), live)
    assert [(d["uuid"], d["field"], d["snapshot"], d["live"]) for d in got] == [
        (A, "power_limit_w", 360.0, 300.0),
        (A, "fans.0", {"policy": "manual", "speed_pct": 60}, {"policy": "auto"}),
    ]
    assert [w[1] for w in plan_restore(got)] == ["power_limit_w", "fans.0"]


def test_restore_refuses_a_snapshot_of_gpus_that_are_not_here() -> None:
    got = diff(snap(), {A: (0, config())})
    with pytest.raises(SnapshotError, match=B):
        plan_restore(got)


def test_store_rejects_bad_names_and_duplicates(tmp_path) -> None:
    store = SnapshotStore(tmp_path)
    store.save(snap())
    assert store.names() == ["stable"]
    with pytest.raises(SnapshotError, match="already exists"):
        store.save(snap())
    with pytest.raises(SnapshotError, match="invalid snapshot name"):
        store.path("../etc/passwd")
    with pytest.raises(SnapshotError, match="no snapshot named 'nope'"):
        store.load("nope")


def test_a_file_that_is_not_a_snapshot_is_refused() -> None:
    with pytest.raises(SnapshotError, match="unsupported snapshot format"):
        GpuSnapshot.from_toml('name = "x"\n', source="f.toml")
    with pytest.raises(SnapshotError, match="not valid TOML"):
        GpuSnapshot.from_toml("[[[", source="f.toml")
