"""Fan curves: parsing, validation, interpolation and hysteresis (pure)."""

from __future__ import annotations

import pytest

from bolt.errors import InvalidInput
from nvcontrol.control.fancurve import CurveFollower, FanCurve, make_curve, parse_curve


def test_parse_and_interpolate() -> None:
    curve = parse_curve("40:30, 60:50,80:100")
    assert curve.points == ((40, 30), (60, 50), (80, 100))
    assert curve.speed_at(20) == 30  # flat below the first point
    assert curve.speed_at(50) == 40
    assert curve.speed_at(70) == 75
    assert curve.speed_at(95) == 100  # flat above the last


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("40:30", "at least two"),
        ("60:30,40:50", "must rise"),
        ("40:60,60:50", "must not fall"),
        ("40:30,60:150", "not a percentage"),
        ("40-30,60:50", "not TEMP:PCT"),
    ],
)
def test_bad_curves_are_rejected_with_the_reason(text: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        parse_curve(text)


def test_speeds_are_checked_against_the_fans_range() -> None:
    with pytest.raises(InvalidInput, match=r"range 30\.\.100"):
        make_curve([(40, 20), (80, 100)], min_pct=30, max_pct=100)


def test_round_trips_through_its_document_form() -> None:
    curve = parse_curve("30:30,70:80", hysteresis_c=5)
    assert FanCurve.from_dict(curve.to_dict()) == curve
    assert curve.to_dict() == {"points": "30:30,70:80", "hysteresis_c": 5}


def test_speed_rises_at_once_but_falls_only_past_the_hysteresis() -> None:
    follower = CurveFollower(parse_curve("40:30,80:70", hysteresis_c=3))
    assert follower.step(60) == 50
    assert follower.step(62) == 52  # hotter: up immediately
    assert follower.step(60) is None  # 2 °C cooler: hold
    assert follower.step(59.5) is None
    assert follower.step(59) == 49  # 3 °C below where 52 % was chosen
    assert follower.step(59) is None  # steady: nothing to do
