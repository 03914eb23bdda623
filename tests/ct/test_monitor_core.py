"""``nvctl ct monitor``'s pure core: stream lines -> readings, bounded histories, text."""

from __future__ import annotations

import json

import pytest

from nvcontrol.ct import monitor

NAMES = {"GPU-a": {"model": "M", "pci_bus_id": "0000:01:00.0"}}


def _sample(t: float, temp: int | None, uuid: str = "GPU-a", index: int = 0) -> dict:
    return {"time": t, "gpus": [{"index": index, "uuid": uuid, "lost": False,
                                  "temperature_c": temp, "power_w": 100.5, "sm_mhz": 2500,
                                  "gpu_util_pct": 50, "memory_mhz": 10501, "fan_pct": None}]}  # fmt: skip


def test_readings_use_the_monitor_keys_in_index_order() -> None:
    s = {"time": 1.0, "gpus": [*_sample(1, 41, "GPU-b", 1)["gpus"], *_sample(1, 40)["gpus"]]}
    got = monitor.readings(s, NAMES)
    assert [g["uuid"] for g in got] == ["GPU-a", "GPU-b"]
    assert got[0]["model"] == "M" and got[1]["model"] is None
    assert got[0]["temperature_c"] == 40 and got[0]["sm_clock_mhz"] == 2500
    assert got[0]["utilization_pct"] == 50 and got[0]["fan_pct"] is None


def test_decode_accepts_stream_events_and_rejects_anything_else() -> None:
    assert monitor.decode(json.dumps({"t": "ping", "time": 3}))["t"] == "ping"
    for bad in ("not json", "[1, 2]", '{"x": 1}', '{"t": "sample"}'):
        with pytest.raises(monitor.StreamError):
            monitor.decode(bad)


def test_history_is_bounded_and_keeps_gaps_out_of_the_graph() -> None:
    h = monitor.History(size=3)
    for t, temp in enumerate([30, None, 32, 33, 34]):
        h.add(monitor.readings(_sample(t, temp), NAMES), float(t))
    assert h.values("GPU-a", "temperature_c") == [32.0, 33.0, 34.0]
    assert len(h.times) == 3
    h.add(monitor.readings(_sample(9, None), NAMES), 9.0)
    assert h.points("GPU-a", "temperature_c") == [33.0, 34.0]
    assert h.points("GPU-a", "fan_pct") == []


def test_bars_draw_one_column_per_sample_newest_right_scaled_min_to_max() -> None:
    assert monitor.bars([0, 50, 100], 5) == "  ▁▅█"
    assert monitor.bars([float(v) for v in range(20)], 4) == "▁▃▆█"  # the last 4 only
    assert monitor.bars([7, 7], 3) == " ▁▁"  # flat: the lowest bar
    assert monitor.bars([], 3) == "   " and monitor.bars([1], 0) == ""


def test_text_line_shows_values_units_and_missing_ones() -> None:
    g = monitor.readings(_sample(1, None), NAMES)[0]
    text = monitor.line(g)
    assert text.startswith("GPU 0") and " - " in text and "100.5 W" in text
    assert "fan" not in text  # this GPU has no fan
    assert "lost" in monitor.line({**g, "lost": True})


def test_nvctl_does_not_import_textual_unless_it_shows_the_full_screen_view() -> None:
    import subprocess
    import sys

    code = (
        "import sys\nsys.argv = ['nvctl', 'ct', 'monitor', '--help']\n"
        "from nvcontrol.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
        "import nvcontrol.ct.monitor, nvcontrol.ct.monitor_feed\n"
        "print('textual' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"
