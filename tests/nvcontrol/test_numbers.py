"""Numbers typed by users or read from snapshot files: ASCII digits, finite, or exit 2."""

from __future__ import annotations

import pytest

from basis.errors import ExitCode, InvalidInput
from nvcontrol.numbers import check_float, parse_float, parse_int, pstate_name


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("+120", 120), ("-2000", -2000), (" 7 ", 7)])
def test_whole_numbers_in_ascii_digits_parse(text: str, value: int) -> None:
    assert parse_int(text, "--gpu-offset") == value


@pytest.mark.parametrize(
    "text", ["", "1.5", "1_000", "\u0663", "\uff11\uff12", "0x10", "nan", "1e3", "9" * 40]
)
def test_anything_else_is_not_a_whole_number(text: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_int(text, "--gpu-offset")
    assert err.value.exit_code == ExitCode.INVALID_INPUT
    assert "--gpu-offset" in err.value.message


@pytest.mark.parametrize(
    ("text", "value"), [("2.5", 2.5), ("30", 30.0), (".5", 0.5), ("1e2", 100.0)]
)
def test_finite_floats_parse(text: str, value: float) -> None:
    assert parse_float(text, "--window") == value


@pytest.mark.parametrize(
    "text", ["nan", "NaN", "inf", "-inf", "Infinity", "1e400", "\u0663.5", "1_0", "", "2,5"]
)
def test_nan_infinity_and_odd_spellings_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_float(text, "--temp-guard")
    assert "--temp-guard" in err.value.message


def test_a_float_value_from_a_file_must_be_finite() -> None:
    assert check_float(400.0, "power_limit_w") == 400.0
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(InvalidInput):
            check_float(bad, "power_limit_w")


def test_pstate_names() -> None:
    assert pstate_name("p2") == "P2"
    assert pstate_name(" P02 ") == "P2"
    for bad in ("P16", "P", "2", "P\u0663", "PP0"):
        with pytest.raises(InvalidInput):
            pstate_name(bad)
