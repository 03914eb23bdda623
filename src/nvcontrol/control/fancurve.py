"""Fan curves: parsing ``"TEMP:PCT,..."``, interpolation, and a hysteresis follower.

Pure logic: :class:`CurveFollower` is fed temperatures and answers with the fan speed to
set (or ``None`` to leave the fans alone).  Hysteresis works on temperature: the speed
goes up as soon as the curve asks for more, but comes down only once the temperature has
fallen ``hysteresis_c`` below the point where the current speed was chosen — so fans do
not hunt around a breakpoint.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from basis.errors import InvalidInput
from nvcontrol.numbers import parse_int


@dataclass(frozen=True)
class FanCurve:
    points: tuple[tuple[int, int], ...]  # (temperature °C, speed %), temperatures ascending
    hysteresis_c: int = 3

    def speed_at(self, temp_c: float) -> int:
        """Linear interpolation between points; flat beyond the ends."""
        pts = self.points
        if temp_c <= pts[0][0]:
            return pts[0][1]
        for (t0, s0), (t1, s1) in itertools.pairwise(pts):
            if temp_c <= t1:
                return round(s0 + (s1 - s0) * (temp_c - t0) / (t1 - t0))
        return pts[-1][1]

    @property
    def text(self) -> str:
        """The points in the command-line form, ``"40:30,60:50,80:100"``."""
        return ",".join(f"{t}:{s}" for t, s in self.points)

    def to_dict(self) -> dict[str, object]:
        return {"points": self.text, "hysteresis_c": self.hysteresis_c}

    @classmethod
    def from_dict(cls, doc: dict[str, object]) -> FanCurve:
        raw = doc.get("points")
        hyst = doc.get("hysteresis_c", 3)
        if not isinstance(raw, str) or not isinstance(hyst, int):
            raise InvalidInput(
                'a fan curve needs points = "TEMP:PCT,..." and an integer hysteresis_c'
            )
        return parse_curve(raw, hyst)

    def describe(self) -> str:
        return f"{self.text} (hysteresis {self.hysteresis_c} °C)"


def make_curve(
    points: Sequence[tuple[int, int]],
    hysteresis_c: int = 3,
    *,
    min_pct: int = 0,
    max_pct: int = 100,
) -> FanCurve:
    """A validated curve: at least two points, temperatures strictly rising, speeds within
    the fan's range and never falling as temperature rises."""
    if len(points) < 2:
        raise InvalidInput(
            "a fan curve needs at least two TEMP:PCT points", hint='e.g. "40:30,60:50,80:100"'
        )
    for (t0, s0), (t1, s1) in itertools.pairwise(points):
        if t1 <= t0:
            raise InvalidInput(
                f"fan curve temperatures must rise: {t1} °C comes after {t0} °C",
                hint="list the points from coolest to hottest",
            )
        if s1 < s0:
            raise InvalidInput(
                f"fan curve speeds must not fall as temperature rises ({t0}:{s0} then {t1}:{s1})"
            )
    for t, s in points:
        if not 0 <= t <= 120:
            raise InvalidInput(f"fan curve temperature {t} °C is outside 0..120 °C")
        if not 0 <= s <= 100:
            raise InvalidInput(f"fan curve speed {s}% is not a percentage (0..100)")
        if not min_pct <= s <= max_pct:
            raise InvalidInput(
                f"fan curve speed {s}% is outside the fans' range {min_pct}..{max_pct}%",
                hint=f"use speeds between {min_pct} and {max_pct}",
            )
    if not 0 <= hysteresis_c <= 20:
        raise InvalidInput(f"hysteresis {hysteresis_c} °C is outside 0..20 °C")
    return FanCurve(tuple((int(t), int(s)) for t, s in points), int(hysteresis_c))


def parse_curve(text: str, hysteresis_c: int = 3) -> FanCurve:
    """``"40:30,60:50,80:100"`` -> a validated :class:`FanCurve`."""
    points = []
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        temp, sep, pct = item.partition(":")
        try:
            if not sep:
                raise ValueError(item)
            points.append(
                (
                    parse_int(temp.strip().removesuffix("C"), "temperature"),
                    parse_int(pct.strip().removesuffix("%"), "speed"),
                )
            )
        except (ValueError, InvalidInput):
            raise InvalidInput(
                f"fan curve point {item!r} is not TEMP:PCT", hint='e.g. "40:30,60:50,80:100"'
            ) from None
    return make_curve(points, hysteresis_c)


@dataclass
class CurveFollower:
    """Chooses fan speeds from temperatures, with hysteresis on the way down."""

    curve: FanCurve
    current_pct: int | None = None
    chosen_at_c: float | None = None

    def step(self, temp_c: float) -> int | None:
        """The speed to set now, or ``None`` if the fans should stay as they are."""
        want = self.curve.speed_at(temp_c)
        if self.current_pct is None or want > self.current_pct:
            return self._choose(want, temp_c)
        if want < self.current_pct:
            assert self.chosen_at_c is not None
            if temp_c <= self.chosen_at_c - self.curve.hysteresis_c:
                return self._choose(want, temp_c)
        return None

    def _choose(self, pct: int, temp_c: float) -> int:
        self.current_pct = pct
        self.chosen_at_c = temp_c
        return pct
