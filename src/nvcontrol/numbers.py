"""The one parser of numbers typed by users or read from files: ASCII digits only, finite.

Python's ``int()`` and ``float()`` accept any Unicode digit (``int("٣") == 3``), digit
group underscores, and ``float()`` takes ``nan`` and ``inf``.  A setting must never come
from text like that: ``--temp-guard nan`` would disable the thermal guard and
``--window inf`` would watch for ever.  Every command-line option and every snapshot value
goes through :func:`parse_int` / :func:`parse_float` / :func:`check_float`, which raise
:class:`~basis.errors.InvalidInput` (exit 2) naming what was wrong.
"""

from __future__ import annotations

import math
import re

from basis.errors import InvalidInput

_INT = re.compile(r"[+-]?[0-9]+\Z")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
# Big enough for any MHz, watt or second a GPU setting takes; small enough that a typo of
# many digits is refused instead of overflowing a C integer in the driver.
INT_LIMIT = 10**9


def parse_int(text: str, what: str) -> int:
    """``"+120"`` -> 120; anything but ASCII digits with an optional sign is refused."""
    cleaned = text.strip()
    if not _INT.match(cleaned):
        raise InvalidInput(f"{what}: {text!r} is not a whole number (digits 0-9)")
    value = int(cleaned)
    if abs(value) > INT_LIMIT:
        raise InvalidInput(f"{what}: {text!r} is out of range (at most {INT_LIMIT:,} in size)")
    return value


def parse_float(text: str, what: str) -> float:
    """``"2.5"`` -> 2.5; NaN, infinity, Unicode digits and other spellings are refused."""
    cleaned = text.strip()
    if not _FLOAT.match(cleaned):
        raise InvalidInput(f"{what}: {text!r} is not a finite number (digits 0-9, '.')")
    return check_float(float(cleaned), what)


def check_float(value: float, what: str) -> float:
    """A float that came as a value (TOML, JSON): finite and not absurdly large."""
    if not math.isfinite(value):
        raise InvalidInput(f"{what}: {value!r} is not a finite number")
    if abs(value) > INT_LIMIT:
        raise InvalidInput(f"{what}: {value!r} is out of range (at most {INT_LIMIT:,} in size)")
    return value


_PSTATE = re.compile(r"[Pp]([0-9]{1,2})\Z")


def pstate_name(text: str) -> str:
    """``"p2"`` / ``" P02 "`` -> ``"P2"``; the names NVML knows are P0..P15."""
    m = _PSTATE.match(text.strip())
    if not m or int(m.group(1)) > 15:
        raise InvalidInput(f"{text!r} is not a pstate (P0..P15)")
    return f"P{int(m.group(1))}"
