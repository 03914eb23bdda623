"""Bad numbers and selectors on the command line: exit 2, nothing changed, no traceback."""

from __future__ import annotations

import pytest

from tests.conftest import NvsimInstance
from tests.nvcontrol_control.helpers import fails, needs_root, ok_json, settings_of

pytestmark = [pytest.mark.nvsim, pytest.mark.root, needs_root]

BAD_NUMBERS = [
    ("overclock", "apply", "-i", "0", "--gpu-offset", "50", "--temp-guard", "nan"),
    ("overclock", "apply", "-i", "0", "--gpu-offset", "50", "--window", "nan"),
    ("overclock", "apply", "-i", "0", "--gpu-offset", "50", "--window", "inf"),
    ("overclock", "apply", "-i", "0", "--gpu-offset", "50", "--confirm-timeout", "-inf"),
    ("overclock", "apply", "-i", "0", "--gpu-offset", "\u0665\u0660"),  # Arabic-Indic 50
    ("overclock", "apply", "-i", "0", "--gpu-offset", "50", "--pstate", "P\u0660"),
    ("overclock", "test", "-i", "0", "--duration", "nan"),
    ("overclock", "test", "-i", "0", "--temp-guard", "nan"),
    ("overclock", "auto", "-i", "0", "--step-duration", "inf"),
    ("power", "limit", "-i", "0", "--watts", "nan"),
    ("power", "limit", "-i", "0", "--percent", "inf"),
    ("clocks", "lock", "-i", "0", "--gpu", "1\u0660\u0660\u0660,2000"),
    ("fan", "set", "\u0660", "50"),
    ("fan", "curve", "set", "40:30,60:\u0665\u0660"),
    ("fan", "curve", "run", "--interval", "nan"),
    ("gpu", "watch", "--interval", "inf", "--count", "1"),
]


@pytest.mark.parametrize("args", BAD_NUMBERS, ids=lambda a: " ".join(a))
def test_nan_infinity_and_non_ascii_digits_are_refused_with_exit_2(
    nvsim_gpus: NvsimInstance, args: tuple[str, ...]
) -> None:
    before = settings_of(nvsim_gpus)
    extra = ("--no-confirm",) if args[1] in ("apply", "limit") else ()
    done = fails(nvsim_gpus, 2, *args, *extra)
    assert "rror" in done.stderr
    assert settings_of(nvsim_gpus) == before


@pytest.mark.parametrize("selector", ["", " ", "\t"])
def test_an_empty_selector_selects_nothing_and_changes_nothing(
    nvsim_gpus: NvsimInstance, selector: str
) -> None:
    before = settings_of(nvsim_gpus)
    done = fails(nvsim_gpus, 2, "power", "limit", "-i", selector, "--watts", "300", "--no-confirm")
    assert "empty GPU selector" in done.stderr
    assert settings_of(nvsim_gpus) == before
    assert "empty GPU selector" in fails(nvsim_gpus, 2, "gpu", "list", "-i", selector).stderr


def test_the_power_hint_offers_exactly_the_percents_that_are_accepted(
    nvsim_gpus: NvsimInstance,
) -> None:
    import re

    done = fails(nvsim_gpus, 2, "power", "limit", "-i", "0", "--percent", "200", "--no-confirm")
    lo, hi = re.search(r"--percent between ([0-9.]+) and ([0-9.]+)", done.stderr).groups()  # type: ignore[union-attr]
    status = ok_json(nvsim_gpus, "power", "status", "-i", "0")["gpus"][0]
    assert (status["min_limit_pct"], status["max_limit_pct"]) == (float(lo), float(hi))
    for pct in (lo, hi):  # both ends are accepted ...
        ok_json(nvsim_gpus, "power", "limit", "-i", "0", "--percent", pct, "--no-confirm",
                "--window", "0")  # fmt: skip
    for pct in (f"{float(lo) - 0.1:.1f}", f"{float(hi) + 0.1:.1f}"):  # ... and nothing beyond
        fails(nvsim_gpus, 2, "power", "limit", "-i", "0", "--percent", pct, "--no-confirm")
