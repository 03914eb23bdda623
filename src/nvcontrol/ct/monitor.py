"""``nvctl ct monitor``'s pure core: gpu-monitor's stream lines in, per-GPU readings and
bounded histories out, and the plain-text line of one reading.

No I/O here: :mod:`nvcontrol.ct.monitor_feed` reads the stream (``GET /api/stream`` on
gpu-monitor's HTTPS listener, see :mod:`nvcontrol.agent.stream`) and
:mod:`nvcontrol.ct.monitor_app` draws it with Textual.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

MONITOR_PORT = 9400
HISTORY = 120  # points per graph

# reading key <- the agent sampler's key
_KEYS = {
    "temperature_c": "temperature_c",
    "power_w": "power_w",
    "power_limit_w": "power_limit_w",
    "utilization_pct": "gpu_util_pct",
    "sm_clock_mhz": "sm_mhz",
    "memory_clock_mhz": "memory_mhz",
    "fan_pct": "fan_pct",
    "memory_used_mib": "memory_used_mib",
    "memory_total_mib": "memory_total_mib",
    "pstate": "pstate",
}


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str


# What each GPU panel graphs, in order (fan only where the GPU has one).
GRAPHS = (
    Metric("temperature_c", "temp", "°C"),
    Metric("power_w", "power", "W"),
    Metric("sm_clock_mhz", "SM clock", "MHz"),
    Metric("utilization_pct", "util", "%"),
    Metric("fan_pct", "fan", "%"),
)


class StreamError(ValueError):
    """A line that is not what gpu-monitor sends."""


def decode(line: str) -> dict[str, Any]:
    """One stream line -> its event (``t`` is hello, sample, ping or error)."""
    try:
        doc = json.loads(line)
    except json.JSONDecodeError:
        raise StreamError(f"not JSON: {line[:80]!r}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("t"), str):
        raise StreamError(f"not a stream event: {line[:80]!r}")
    if doc["t"] == "sample" and not isinstance(doc.get("gpus"), list):
        raise StreamError("a sample without gpus")
    return doc


def readings(sample: dict[str, Any], names: dict[str, Any]) -> list[dict[str, Any]]:
    """Each GPU of one agent sample, with the monitor's keys, ordered by index.  A value
    the GPU does not report is None; a GPU that fell off the bus has ``lost`` True."""
    out = []
    for g in sample.get("gpus") or []:
        if not isinstance(g, dict) or "uuid" not in g:
            continue
        name = names.get(g["uuid"]) or {}
        r: dict[str, Any] = {
            "index": g.get("index"),
            "uuid": g["uuid"],
            "model": name.get("model") if isinstance(name, dict) else None,
            "lost": bool(g.get("lost")),
        }
        for mine, theirs in _KEYS.items():
            r[mine] = g.get(theirs)
        out.append(r)
    return sorted(out, key=lambda r: (r["index"] is None, r["index"]))


def frame(sample: dict[str, Any], names: dict[str, Any]) -> dict[str, Any]:
    """One ``--json`` line: the sample's time and its GPUs' readings."""
    return {"time": sample.get("time"), "gpus": readings(sample, names)}


@dataclass
class History:
    """The last ``size`` values of each GPU's graphed metrics (a gap is None)."""

    size: int = HISTORY
    series: dict[tuple[str, str], deque[float | None]] = field(default_factory=dict)
    times: deque[float] = field(default_factory=deque)

    def add(self, gpus: list[dict[str, Any]], when: float | None = None) -> None:
        if when is not None:
            self.times.append(when)
            while len(self.times) > self.size:
                self.times.popleft()
        for g in gpus:
            for m in GRAPHS:
                key = (g["uuid"], m.key)
                values = self.series.get(key)
                if values is None:
                    values = self.series[key] = deque(maxlen=self.size)
                v = g.get(m.key)
                values.append(float(v) if isinstance(v, int | float) else None)

    def values(self, uuid: str, key: str) -> list[float | None]:
        return list(self.series.get((uuid, key), ()))

    def points(self, uuid: str, key: str) -> list[float]:
        """The graphable points (gaps left out)."""
        return [v for v in self.values(uuid, key) if v is not None]


BARS = "▁▂▃▄▅▆▇█"


def bars(points: list[float], width: int) -> str:
    """A one-line graph of the last ``width`` points, one column per sample, newest on
    the right, scaled from their minimum (lowest bar) to their maximum (full bar)."""
    if width <= 0:
        return ""
    shown = points[-width:]
    if not shown:
        return " " * width
    lo, hi = min(shown), max(shown)
    top = len(BARS) - 1
    cols = [BARS[0] if hi == lo else BARS[round((v - lo) / (hi - lo) * top)] for v in shown]
    return " " * (width - len(cols)) + "".join(cols)


def show(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    return f"{v:g}{unit}" if isinstance(v, int | float) else f"{v}{unit}"


def line(g: dict[str, Any]) -> str:
    """One GPU's reading as a plain-text line."""
    if g.get("lost"):
        return f"GPU {g['index']}  lost (fell off the bus)"
    fan = "" if g.get("fan_pct") is None else f"  fan {show(g['fan_pct'], ' %'):>6}"
    return (
        f"GPU {g['index']}  {show(g.get('temperature_c'), ' °C'):>7}  "
        f"{show(g.get('power_w'), ' W'):>8}  {show(g.get('utilization_pct'), ' %'):>6}  "
        f"sm {show(g.get('sm_clock_mhz'), ' MHz'):>9}  "
        f"mem {show(g.get('memory_clock_mhz'), ' MHz'):>10}{fan}"
    )
