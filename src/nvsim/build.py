"""Builds nvsim's ``libnvidia-ml.so.1`` (from ``native/*.c``) and ``nvidia-smi`` (from
``native/smi/*.c``).

The official ``nvml.h`` comes from the PyPI wheel ``nvidia-nvml-dev``, fetched at build
time with pip into a cache directory and never committed.  The layout header is generated
from :mod:`nvsim.layout`, the gating table from :mod:`nvsim.gating`.  The results land in
``nvsim/_lib/`` beside this package: the newest library, one variant per older driver
branch (``_lib/r535/libnvidia-ml.so.1`` exports only what R535 has), and ``nvidia-smi``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from nvsim import gating, layout

PACKAGE_DIR = Path(__file__).resolve().parent
NATIVE_DIR = PACKAGE_DIR / "native"
LIB_DIR = PACKAGE_DIR / "_lib"
SMI_DIR = NATIVE_DIR / "smi"
LIB_NAME = "libnvidia-ml.so.1"
SMI_NAME = "nvidia-smi"
NVML_DEV_REQ = "nvidia-nvml-dev>=12.4"


class BuildError(Exception):
    """The library could not be built; the message says why and what to do."""


def cache_dir() -> Path:
    base = os.environ.get("NVSIM_BUILD_CACHE") or os.environ.get("XDG_CACHE_HOME")
    return Path(base or Path.home() / ".cache") / "nvsim-build"


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


def _sources_digest(header: Path, generated: dict[str, str]) -> str:
    h = hashlib.sha256()
    for src in sorted([*NATIVE_DIR.glob("*.[ch]"), *SMI_DIR.glob("*.[ch]")]):
        h.update(src.name.encode())
        h.update(src.read_bytes())
    h.update(header.read_bytes())
    for name, text in sorted(generated.items()):
        h.update(name.encode())
        h.update(text.encode())
    return h.hexdigest()


def generated_headers() -> dict[str, str]:
    """The headers the build writes from Python: the state layout and the gating table."""
    return {"nvsim_layout.h": layout.c_header(), "nvsim_gates.h": gating.c_header()}


def write_generated(directory: Path) -> Path:
    """Write the generated headers into ``directory`` (for the build and native tests)."""
    for name, text in generated_headers().items():
        (directory / name).write_text(text)
    return directory


def compiler_flags(include: Path, header: Path) -> list[str]:
    return [
        "-std=gnu11",
        "-Wall",
        "-Wextra",
        "-Werror=implicit-function-declaration",
        "-Wno-unused-parameter",
        "-Wno-deprecated-declarations",
        f"-I{include}",
        f"-I{header.parent}",
        f"-I{NATIVE_DIR}",
    ]


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"{what} failed:\n" + proc.stderr[-4000:])


def _compile_objects(gen: Path, extra: Sequence[str], cc: str | None) -> list[Path]:
    """Compile every library source once (in parallel) into objects under ``gen``."""
    header = fetch_nvml_header()
    sources = sorted(NATIVE_DIR.glob("*.c"))
    if not sources:
        raise BuildError(f"no C sources in {NATIVE_DIR}")
    compiler = cc or os.environ.get("CC", "gcc")
    flags = ["-c", "-fPIC", "-O2", *compiler_flags(gen, header), "-fvisibility=default", *extra]

    def start(src: Path) -> subprocess.Popen[str]:
        obj = gen / f"{src.stem}.o"
        cmd = [compiler, *flags, "-o", str(obj), str(src)]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    jobs = [(src, gen / f"{src.stem}.o", start(src)) for src in sources]
    errors = []
    for src, _, proc in jobs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            errors.append(f"{src.name}:\n{err}")
    if errors:
        raise BuildError(f"compiling {LIB_NAME} failed:\n" + "\n".join(errors)[-4000:])
    return [obj for _, obj, _ in jobs]


def _link(gen: Path, objects: list[Path], out: Path, extra: Sequence[str],
          version_script: str | None, cc: str | None) -> Path:  # fmt: skip
    link = []
    if version_script is not None:
        script = gen / f"exports-{out.parent.name}.map"
        script.write_text(version_script)
        link.append(f"-Wl,--version-script={script}")
    tmp_out = gen / f"{out.parent.name}-{LIB_NAME}"
    _run(
        [cc or os.environ.get("CC", "gcc"), "-shared", *extra, "-Wl,-soname," + LIB_NAME,
         *link, "-o", str(tmp_out), *(str(o) for o in objects), "-lpthread", "-lm"],
        f"linking {LIB_NAME}",
    )  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp_out, out)
    return out


def compile_library(
    out: Path,
    *,
    extra: Sequence[str] = (),
    variants: dict[Path, str] | None = None,
    cc: str | None = None,
) -> Path:
    """Compile one ``libnvidia-ml.so.1`` at ``out`` (``extra``: e.g. sanitizer flags) and,
    from the same objects, each variant in ``variants`` (path -> linker version script)."""
    with tempfile.TemporaryDirectory() as tmp:
        gen = write_generated(Path(tmp))
        objects = _compile_objects(gen, extra, cc)
        _link(gen, objects, out, extra, None, cc)
        for path, script in (variants or {}).items():
            _link(gen, objects, path, extra, script, cc)
    return out


def compile_smi(out: Path, *, extra: Sequence[str] = (), cc: str | None = None) -> Path:
    """Compile nvsim's ``nvidia-smi``: a C program that dlopens libnvidia-ml.so.1."""
    header = fetch_nvml_header()
    sources = sorted(str(p) for p in SMI_DIR.glob("*.c"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp_out = Path(tmp) / SMI_NAME
        _run(
            [cc or os.environ.get("CC", "gcc"), "-O2", *compiler_flags(Path(tmp), header),
             f"-I{SMI_DIR}", *extra, "-o", str(tmp_out), *sources, "-ldl"],
            "compiling nvidia-smi",
        )  # fmt: skip
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp_out, out)
    return out


def library_path(branch: int | None = None) -> Path:
    """Where the built library lives (it may not exist yet).

    Without ``branch``: the newest library, with every symbol.  With one: the variant
    whose exported symbols are those of that driver branch (see :mod:`nvsim.gating`).
    """
    if branch is None or gating.variant_for(branch) == gating.variant_branches()[-1]:
        return LIB_DIR / LIB_NAME
    return LIB_DIR / f"r{gating.variant_for(branch)}" / LIB_NAME


def smi_path() -> Path:
    return LIB_DIR / SMI_NAME


def build(force: bool = False, cc: str | None = None) -> Path:
    """Compile the library, its per-branch variants and nvidia-smi if their sources
    changed; return the newest library's path."""
    header = fetch_nvml_header()
    digest = _sources_digest(header, generated_headers())
    out = library_path()
    stamp = LIB_DIR / ".digest"
    if not force and out.exists() and stamp.exists() and stamp.read_text() == digest:
        return out
    LIB_DIR.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    variants = {
        library_path(branch): gating.version_script(branch)
        for branch in gating.variant_branches()[:-1]
    }
    compile_library(out, variants=variants, cc=cc)
    compile_smi(smi_path(), cc=cc)
    stamp.write_text(digest)
    return out
