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


def gpu_doc(**fields: object) -> dict[str, object]:
    doc = snap().to_dict()
    body = doc["gpus"][A]  # type: ignore[index]
    body.update(fields)
    return doc


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"persistence_mode": "false"}, "persistence_mode: expected true or false"),
        ({"power_limit_w": "400"}, "power_limit_w: expected a power limit"),
        ({"power_limit_w": float("nan")}, "not a finite number"),
        ({"power_limit_w": -5.0}, "outside 0..10000 W"),
        ({"compute_mode": "Turbo"}, "unknown compute mode"),
        ({"offsets": {"P0": {"graphics_mhz": 1.5}}}, "offsets.P0.graphics_mhz: expected an offset"),
        ({"offsets": {"P0": {"graphics_mhz": True}}}, "offsets.P0.graphics_mhz"),
        ({"offsets": {"P99": {"graphics_mhz": 10}}}, "unknown setting 'offsets.P99.graphics_mhz'"),
        ({"offsets": {"P0": {"shader_mhz": 10}}}, "unknown setting"),
        ({"locked_clocks": {"graphics_mhz": [2000, 1000]}}, "MIN 2000 is above MAX 1000"),
        ({"locked_clocks": {"graphics_mhz": "locked"}}, "locked_clocks.graphics_mhz: expected"),
        ({"locked_clocks": {"graphics_mhz": [1, 2, 3]}}, "locked_clocks.graphics_mhz"),
        ({"fans": {"0": {"policy": "manual", "speed_pct": 150}}}, "not a percentage (0..100)"),
        ({"fans": {"0": {"policy": "manual"}}}, "fans.0: expected"),
        ({"fans": {"0": {"policy": "turbo"}}}, "fans.0: expected"),
        ({"fan_curve": {"points": "40:80,60:30", "hysteresis_c": 3}}, "must not fall"),
        ({"fan_curve": {"points": "60:30,40:80", "hysteresis_c": 3}}, "must rise"),
        ({"fan_curve": "off"}, "fan_curve: expected"),
        ({"voltage_mv": 900}, "unknown setting 'voltage_mv'"),
        ({"index": "0"}, "index: expected a GPU index"),
    ],
)
def test_a_snapshot_value_of_the_wrong_type_or_range_is_refused_naming_the_key(
    fields: dict[str, object], words: str
) -> None:
    with pytest.raises(SnapshotError) as err:
        GpuSnapshot.from_dict(gpu_doc(**fields), source="f.toml")
    assert words in err.value.message
    assert err.value.message.startswith(f'f.toml: gpus."{A}"')


def test_what_create_writes_is_what_import_accepts() -> None:
    text = snap().to_toml()
    assert GpuSnapshot.from_toml(text, source="x").to_toml() == text


def test_unknown_top_level_keys_and_bad_names_are_refused() -> None:
    doc = snap().to_dict()
    with pytest.raises(SnapshotError, match="unknown key 'extra'"):
        GpuSnapshot.from_dict({**doc, "extra": 1}, source="f")
    with pytest.raises(SnapshotError, match="not a valid snapshot name"):
        GpuSnapshot.from_dict({**doc, "name": "../x"}, source="f")


def test_huge_input_and_dev_zero_are_refused_without_reading_them_whole(tmp_path) -> None:
    from nvcontrol.control.snapshots import MAX_BYTES, read_text_limited

    with pytest.raises(SnapshotError, match="larger than"):
        read_text_limited("/dev/zero")
    big = tmp_path / "big.toml"
    big.write_text("#" * (MAX_BYTES + 10))
    with pytest.raises(SnapshotError, match="larger than"):
        read_text_limited(big)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"name = \xff\xfe")
    with pytest.raises(SnapshotError, match="not UTF-8"):
        read_text_limited(binary)


def test_one_unreadable_file_does_not_hide_the_other_snapshots(tmp_path) -> None:
    store = SnapshotStore(tmp_path)
    store.save(snap())
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "garbage.toml").write_text("[[[ not toml")
    (tmp_path / "adir.toml").mkdir()
    (tmp_path / "wrongtype.toml").write_text(
        snap().to_toml().replace("persistence_mode = true", 'persistence_mode = "false"')
    )
    snaps, warnings = store.all()
    assert [s.name for s in snaps] == ["stable"]
    joined = "\n".join(warnings)
    assert len(warnings) == 4
    for name in ("binary.toml", "garbage.toml", "adir.toml", "wrongtype.toml"):
        assert name in joined
