"""The confirm prompt on a terminal: `overclock apply` asks by default, y keeps, n reverts."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time

import pytest

from tests.conftest import NvsimInstance, tool
from tests.nvcontrol_control.helpers import needs_root, settings_of

pytestmark = [pytest.mark.nvsim, pytest.mark.root, needs_root]


def on_terminal(inst: NvsimInstance, answer: bytes, *args: str) -> tuple[int, str]:
    """Run nvctl with a pseudo-terminal as stdin, answer the prompt, return (code, stderr)."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [tool("nvctl"), *args], env=inst.env, stdin=terminal, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    os.close(terminal)
    assert proc.stderr is not None
    seen = ""
    end = time.monotonic() + 20
    while "Keep these settings?" not in seen and time.monotonic() < end:
        ready, _, _ = select.select([proc.stderr], [], [], 0.5)
        if ready:
            seen += os.read(proc.stderr.fileno(), 4096).decode()
    assert "Keep these settings?" in seen, seen
    os.write(controller, answer)
    _, rest = proc.communicate(timeout=30)
    os.close(controller)
    return proc.returncode, seen + rest


def test_yes_at_the_prompt_keeps_the_offset(nvsim_gpus: NvsimInstance) -> None:
    code, err = on_terminal(
        nvsim_gpus,
        b"y\n",
        "overclock",
        "apply",
        "-i",
        "0",
        "--memory-offset",
        "350",
        "--window",
        "0.2",
    )
    assert code == 0, err
    assert "nvctl confirm" in err  # the prompt also says how to confirm from elsewhere
    assert settings_of(nvsim_gpus)[0]["offsets"]["P0"]["mem"] == 350


def test_no_at_the_prompt_reverts_with_exit_5(nvsim_gpus: NvsimInstance) -> None:
    before = settings_of(nvsim_gpus)
    code, err = on_terminal(
        nvsim_gpus,
        b"n\n",
        "overclock",
        "apply",
        "-i",
        "0",
        "--memory-offset",
        "350",
        "--window",
        "0.2",
    )
    assert code == 5
    assert "declined" in err
    assert settings_of(nvsim_gpus) == before
