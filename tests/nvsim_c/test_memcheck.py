"""A C client exercising the library runs clean under valgrind: no invalid reads or writes,
no uninitialised values, nothing leaked."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from nvsim import build
from tests.nvsim_c.fakestate import FakeState

EXERCISER = Path(__file__).with_name("exerciser.c")

pytestmark = pytest.mark.slow


def test_c_client_is_clean_under_valgrind(
    libnvml: ctypes.CDLL, fake: FakeState, tmp_path: Path
) -> None:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        pytest.fail("valgrind is not installed (apt-get install valgrind)")
    lib = build.library_path()
    exe = tmp_path / "exerciser"
    subprocess.run(
        ["gcc", "-O1", "-g", "-Wall", "-Wextra", "-Wno-deprecated-declarations",
         f"-I{build.fetch_nvml_header().parent}", "-o", str(exe), str(EXERCISER),
         f"-L{lib.parent}", f"-l:{build.LIB_NAME}"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    env = dict(os.environ, LD_LIBRARY_PATH=str(lib.parent), NVSIM_STATE=str(fake.directory))
    proc = subprocess.run(
        [valgrind, "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=all",
         "-q", str(exe)],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "2 GPUs exercised, 0 failures" in proc.stdout
