"""The driver-updater job: stage a driver package from ``/drivers``, verify it, build and
test it in isolation, and report (one JSON line on stdout), then exit.

    python3 -m nvcontrol.ct.updater [--version V] [--package NAME]

1. **Stage.** The chosen package (``--package NAME``, else the one of ``--version``, else
   the newest staged) and its ``NAME.sha256`` are copied from ``/drivers`` into the
   container's own scratch directory; everything after works on that copy.
2. **Verify.** The copy matches ``NAME.sha256``; every member matches the package's
   ``SHA256SUMS`` and its manifest is valid; the driver branch supports the architecture of
   every installed GPU (``$NVCTL_UPDATE_GPUS``, a JSON list that ``nvctl ct update`` passes:
   this container has no GPU of its own); kernel headers for the running kernel are present
   (``/lib/modules/RELEASE/build``, mounted read-only).
3. **Build and test.** The package's library is unpacked into the scratch directory and
   loaded there, apart from the installed driver: it must export the NVML entry points and
   answer ``nvmlInit`` with DRIVER_NOT_LOADED (no device is visible in isolation).

Nothing here installs: that is ``nvctl ct update --install`` on the host, where the driver
is.  Exit codes: 0 ready (or nothing staged), 2 the package is bad or does not fit these
GPUs, 3 this machine cannot build it (no kernel headers), 1 the build/test failed.
Packages are nvsim driver bundles (:mod:`nvsim.bundle` reads them).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from basis.errors import ExitCode, UserError
from nvcontrol.ct.update_core import (
    Gpu,
    Problem,
    check_architectures,
    check_kernel_headers,
    choose,
    exit_code_of,
)

DRIVERS = Path(os.environ.get("DRIVERS_DIR", "/drivers"))
MODULES = Path("/lib/modules")
KERNEL_TREES = ("/lib/modules", "/usr/src")
SUFFIX = ".tar.gz"
GPUS_ENV = "NVCTL_UPDATE_GPUS"
ENTRY_POINTS = ("nvmlInit_v2", "nvmlShutdown", "nvmlSystemGetDriverVersion",
                "nvmlDeviceGetCount_v2", "nvmlDeviceGetHandleByIndex_v2")  # fmt: skip
NVML_ERROR_DRIVER_NOT_LOADED = 9


def staged_versions(drivers: Path) -> dict[str, str | None]:
    """Each staged package's driver version (None: not a readable package)."""
    from nvsim import bundle

    out: dict[str, str | None] = {}
    if not drivers.is_dir():
        return out
    for path in sorted(drivers.glob(f"*{SUFFIX}")):
        try:
            out[path.name] = bundle.read(path)[0].version
        except UserError:
            out[path.name] = None
    return out


def kernel_headers_present(release: str) -> bool:
    build = MODULES / release / "build"
    return build.is_dir() and any(build.iterdir())


def gpus_from_env() -> list[Gpu] | None:
    text = os.environ.get(GPUS_ENV)
    if not text:
        return None
    return [Gpu.from_json(d) for d in json.loads(text)]


def build_and_test(
    members: dict[str, bytes], scratch: Path
) -> tuple[dict[str, Any], list[Problem]]:
    """Load the package's library from ``scratch``, apart from the installed driver."""
    from nvsim import bundle

    for name in bundle.PAYLOAD:
        (scratch / name).parent.mkdir(parents=True, exist_ok=True)
        (scratch / name).write_bytes(members[name])
        os.chmod(scratch / name, 0o755)
    # The library finds its state through $NVSIM_STATE first: an empty directory here, so
    # the test never reaches a device (nor the installed driver's state).
    os.environ["NVSIM_STATE"] = str(scratch / "no-device")
    try:
        lib = ctypes.CDLL(str(scratch / bundle.LIBRARY), mode=os.RTLD_LOCAL)
    except OSError as err:
        return {"library": "does not load"}, [Problem("build", f"the library does not load: {err}",
                                                      ExitCode.FAILURE)]  # fmt: skip
    missing = [s for s in ENTRY_POINTS if not hasattr(lib, s)]
    if missing:
        return {"library": "loads"}, [Problem("build", f"the library lacks {', '.join(missing)}",
                                              ExitCode.FAILURE)]  # fmt: skip
    rc = lib.nvmlInit_v2()
    if rc != NVML_ERROR_DRIVER_NOT_LOADED:
        if rc == 0:
            lib.nvmlShutdown()
        msg = f"nvmlInit answered {rc} in isolation, expected DRIVER_NOT_LOADED (9)"
        return {"library": "loads"}, [Problem("build", msg, ExitCode.FAILURE)]
    return {"library": "loads, exports the NVML entry points, answers nvmlInit in isolation",
            "kernel_module": "none to compile (user-space virtual driver)"}, []  # fmt: skip


def run(version: str | None, package: str | None) -> tuple[dict[str, Any], int]:
    from nvsim import bundle

    release = os.uname().release
    staged = staged_versions(DRIVERS)
    report: dict[str, Any] = {
        "kernel": release,
        "drivers_dir": str(DRIVERS),
        "staged": sorted(staged),
        "kernel_trees": {t: os.path.isdir(t) and bool(os.listdir(t)) for t in KERNEL_TREES},
        "package": None,
        "checks": {},
        "problems": [],
        "result": "nothing staged",
    }

    def reject(problems: list[Problem]) -> tuple[dict[str, Any], int]:
        report["problems"] = [p.to_json() for p in problems]
        report["result"] = "rejected"
        return report, exit_code_of(problems)

    if not staged and version is None and package is None:
        return report, int(ExitCode.OK)
    try:
        name = choose(staged, version, package)
    except ValueError as err:
        return reject([Problem("package", str(err))])
    report["package"] = name
    scratch = Path(tempfile.mkdtemp(prefix="nvctl-update-"))
    try:
        copy = scratch / "stage" / name
        copy.parent.mkdir()
        shutil.copyfile(DRIVERS / name, copy)
        if bundle.sidecar(DRIVERS / name).exists():
            shutil.copyfile(bundle.sidecar(DRIVERS / name), bundle.sidecar(copy))
        report["checks"]["staged"] = str(copy)
        try:
            report["checks"]["sha256"] = bundle.check_sidecar(copy)
        except UserError as err:
            return reject([Problem("checksum", err.message)])
        try:
            manifest, members = bundle.read(copy)
        except UserError as err:
            return reject([Problem("package", err.message)])
        report["manifest"] = manifest.to_json()
        gpus = gpus_from_env()
        problems = [] if gpus is None else check_architectures(manifest.architectures, gpus)
        report["checks"]["architectures"] = (
            "not checked: no GPU inventory (nvctl ct update passes it)" if gpus is None
            else f"{len(gpus)} GPU(s) supported" if not problems else "unsupported"
        )  # fmt: skip
        problems += check_kernel_headers(release, kernel_headers_present(release))
        report["checks"]["kernel_headers"] = str(MODULES / release / "build")
        if problems:
            return reject(problems)
        report["build"], problems = build_and_test(members, scratch / "build")
        if problems:
            return reject(problems)
        report["result"] = "ready to install"
        return report, int(ExitCode.OK)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nvcontrol.ct.updater")
    parser.add_argument("--version", default=None)
    parser.add_argument("--package", default=None)
    args = parser.parse_args(argv)
    report, code = run(args.version, args.package)
    print(json.dumps(report), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
