"""Builds nvsim's ``libnvidia-ml.so.1`` from ``native/nvml.c``.

The official ``nvml.h`` comes from the PyPI wheel ``nvidia-nvml-dev``, fetched at build
time with pip into a cache directory and never committed.  The layout header is generated
from :mod:`nvsim.layout`.  The result lands in ``nvsim/_lib/`` beside this package.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from nvsim import layout

PACKAGE_DIR = Path(__file__).resolve().parent
NATIVE_DIR = PACKAGE_DIR / "native"
LIB_DIR = PACKAGE_DIR / "_lib"
LIB_NAME = "libnvidia-ml.so.1"
NVML_DEV_REQ = "nvidia-nvml-dev>=12.4"


class BuildError(Exception):
    """The library could not be built; the message says why and what to do."""


def cache_dir() -> Path:
    base = os.environ.get("NVSIM_BUILD_CACHE") or os.environ.get("XDG_CACHE_HOME")
    return Path(base or Path.home() / ".cache") / "nvsim-build"


def library_path() -> Path:
    """Where the built library lives (it may not exist yet)."""
    return LIB_DIR / LIB_NAME


def fetch_nvml_header() -> Path:
    """Return the path of the official nvml.h, downloading the wheel if needed."""
    target = cache_dir() / "include" / "nvml.h"
    if target.exists():
        return target
    wheels = cache_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        "--dest",
        str(wheels),
        NVML_DEV_REQ,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(wheels.glob("nvidia_nvml_dev-*.whl"))
    if not found:
        raise BuildError(
            f"could not download {NVML_DEV_REQ} from PyPI (pip said: {proc.stderr.strip()[-400:]})"
        )
    with zipfile.ZipFile(found[-1]) as zf:
        names = [n for n in zf.namelist() if n.endswith("/nvml.h")]
        if not names:
            raise BuildError(f"{found[-1].name} has no nvml.h")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(zf.read(names[0]))
    return target


def _sources_digest(header: Path, layout_h: str) -> str:
    h = hashlib.sha256()
    for src in sorted(NATIVE_DIR.glob("*.[ch]")):
        h.update(src.name.encode())
        h.update(src.read_bytes())
    h.update(header.read_bytes())
    h.update(layout_h.encode())
    return h.hexdigest()


def build(force: bool = False, cc: str | None = None) -> Path:
    """Compile the library if its sources changed; return its path."""
    header = fetch_nvml_header()
    layout_h = layout.c_header()
    digest = _sources_digest(header, layout_h)
    out = library_path()
    stamp = LIB_DIR / ".digest"
    if not force and out.exists() and stamp.exists() and stamp.read_text() == digest:
        return out
    LIB_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        gen = Path(tmp)
        (gen / "nvsim_layout.h").write_text(layout_h)
        sources = sorted(str(p) for p in NATIVE_DIR.glob("*.c"))
        if not sources:
            raise BuildError(f"no C sources in {NATIVE_DIR}")
        tmp_out = gen / LIB_NAME
        cmd = [
            cc or os.environ.get("CC", "gcc"),
            "-shared",
            "-fPIC",
            "-O2",
            "-std=gnu11",
            "-Wall",
            "-Wextra",
            "-Werror=implicit-function-declaration",
            "-Wno-unused-parameter",
            "-Wno-deprecated-declarations",
            "-fvisibility=default",
            f"-I{gen}",
            f"-I{header.parent}",
            f"-I{NATIVE_DIR}",
            "-Wl,-soname," + LIB_NAME,
            "-o",
            str(tmp_out),
            *sources,
            "-lpthread",
            "-lm",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BuildError("compiling libnvidia-ml.so.1 failed:\n" + proc.stderr[-4000:])
        os.replace(tmp_out, out)
    stamp.write_text(digest)
    return out
