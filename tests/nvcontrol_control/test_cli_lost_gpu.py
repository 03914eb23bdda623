"""A lost GPU never hides the healthy ones: every listing shows them, marks the lost one,
and exits with GPU_LOST (6)."""

from __future__ import annotations

import json

import pytest

from basis.errors import ExitCode
from tests.conftest import NvsimInstance, tool
from tests.nvcontrol_control.helpers import needs_root

pytestmark = [pytest.mark.nvsim, pytest.mark.root, needs_root]

COMMANDS = [
    ("gpu", "list"),
    ("gpu", "info"),
    ("power", "status"),
    ("fan", "status"),
    ("overclock", "status"),
]


def test_every_listing_shows_the_healthy_gpu_and_marks_the_lost_one(
    nvsim_gpus: NvsimInstance,
) -> None:
    lost, healthy = (g["uuid"] for g in nvsim_gpus.status()["gpus"])
    nvsim_gpus.run("fault", "0", "lost")
    for args in COMMANDS:
        done = nvsim_gpus.nvctl(*args, "--json")
        assert done.returncode == ExitCode.GPU_LOST, (args, done.stderr)
        rows = {g["uuid"]: g for g in json.loads(done.stdout)["gpus"]}
        assert rows[lost]["lost"] is True and rows[healthy]["lost"] is False, args
        assert len(rows[healthy]) > 5  # the healthy GPU's real readings, not a stub
        assert "is lost" in done.stderr and "Traceback" not in done.stderr
        text = nvsim_gpus.nvctl(*args)
        assert text.returncode == ExitCode.GPU_LOST
        assert healthy in text.stdout and "LOST" in text.stdout, args


def test_snapshot_create_saves_the_healthy_gpus_and_says_which_is_missing(
    nvsim_gpus: NvsimInstance,
) -> None:
    lost, healthy = (g["uuid"] for g in nvsim_gpus.status()["gpus"])
    nvsim_gpus.run("fault", "0", "lost")
    done = nvsim_gpus.nvctl("snapshot", "create", "partial")
    assert done.returncode == ExitCode.GPU_LOST, done.stderr
    assert lost in done.stderr and "not in it" in done.stderr
    shown = json.loads(nvsim_gpus.nvctl("snapshot", "show", "partial", "--json").stdout)
    assert list(shown["gpus"]) == [healthy]
    nvsim_gpus.run("fault", "1", "lost")
    done = nvsim_gpus.nvctl("snapshot", "create", "none")
    assert done.returncode == ExitCode.GPU_LOST and "nothing was saved" in done.stderr
    assert nvsim_gpus.nvctl("snapshot", "show", "none").returncode == 2


def test_bolt_gpu_list_shows_the_healthy_gpu_and_marks_the_lost_one(
    nvsim_gpus: NvsimInstance,
) -> None:
    import subprocess

    lost, healthy = (g["uuid"] for g in nvsim_gpus.status()["gpus"])
    nvsim_gpus.run("fault", "0", "lost")
    done = subprocess.run(
        [tool("bolt"), "gpu", "list", "--json"], env=nvsim_gpus.env, capture_output=True,
        text=True,
    )  # fmt: skip
    assert done.returncode == ExitCode.GPU_LOST, done.stderr
    rows = {g["uuid"]: g for g in json.loads(done.stdout)}
    assert rows[lost]["lost"] is True
    assert rows[healthy]["lost"] is False and rows[healthy]["memory_total"] > 0
    assert "lost" in done.stderr
