"""A small root file system that runs this interpreter with nvidia-ml-py, built by copying
the interpreter and the shared libraries it (and ctypes) needs; the standard library is
bind-mounted read-only at run time (``STDLIB_VOLUME``), so nothing heavy is copied."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pynvml

INTERPRETER = os.path.realpath(sys.executable)
STDLIB = sysconfig.get_paths()["stdlib"]
STDLIB_VOLUME = f"{STDLIB}:{STDLIB}:ro"
PYLIB = "/opt/pylib"


def _needed_libraries(binary: str) -> list[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    return re.findall(r"(/\S+) \(0x", out)


def _copy(path: str, root: Path) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(os.path.realpath(path), target)


def add_python(root: Path) -> Path:
    """Add the interpreter, its libraries and pynvml to the busybox rootfs at ``root``."""
    _copy(INTERPRETER, root)
    import _ctypes

    binaries = [INTERPRETER, _ctypes.__file__]
    for binary in binaries:
        for lib in _needed_libraries(binary):
            _copy(lib, root)
    (root / PYLIB.lstrip("/")).mkdir(parents=True)
    shutil.copy2(pynvml.__file__, root / PYLIB.lstrip("/") / "pynvml.py")
    return root
