"""The library under AddressSanitizer and ThreadSanitizer: 8 reader threads with init/shutdown
churn, a setter thread and a writer process playing the model (see stress.c).

Both the library and the stress program are built with the sanitizer; any report makes the
run exit non-zero.  A reader that sees half of a model write (the two utilization fields of
one tick disagreeing) fails the run too, which is what the header's seqlock prevents.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from nvsim import build
from tests.nvsim_c import fakestate

STRESS = Path(__file__).with_name("stress.c")
SANITIZERS = {
    "address": ["-fsanitize=address", "-fno-omit-frame-pointer"],
    "thread": ["-fsanitize=thread"],
}
RUN_S = "2"


def build_stress(tmp: Path, sanitizer: str) -> tuple[Path, Path]:
    flags = [*SANITIZERS[sanitizer], "-g", "-O1"]
    lib = build.compile_library(tmp / "lib" / build.LIB_NAME, extra=flags)
    include = build.write_generated(tmp)
    exe = tmp / "stress"
    subprocess.run(
        ["gcc", *flags, "-std=gnu11", "-Wall", "-Wno-deprecated-declarations",
         f"-I{include}", f"-I{build.fetch_nvml_header().parent}", "-o", str(exe), str(STRESS),
         f"-L{lib.parent}", f"-l:{build.LIB_NAME}", "-lpthread"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return exe, lib


@pytest.mark.parametrize("sanitizer", sorted(SANITIZERS))
def test_readers_setters_and_churn_are_clean_under_the_sanitizer(
    tmp_path: Path, sanitizer: str
) -> None:
    exe, lib = build_stress(tmp_path, sanitizer)
    st = fakestate.create(tmp_path / "nvsim", (fakestate.GEFORCE, fakestate.DATACENTER))
    st.close()
    env = dict(
        os.environ,
        LD_LIBRARY_PATH=str(lib.parent),
        NVSIM_STATE=str(tmp_path / "nvsim"),
        ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=99",
        TSAN_OPTIONS="halt_on_error=1:exitcode=99:second_deadlock_stack=1",
    )
    # TSan needs the lower-entropy address layout; setarch -R turns randomisation off.
    cmd = ["setarch", "-R", str(exe)] if sanitizer == "thread" else [str(exe)]
    proc = subprocess.run(
        [*cmd, str(tmp_path / "nvsim" / "state"), RUN_S],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr[-6000:]
    assert "0 torn readings, 0 failures" in proc.stdout
    assert "WARNING: ThreadSanitizer" not in proc.stderr
    assert "ERROR: AddressSanitizer" not in proc.stderr
