"""Shared fixtures: a private nvsim instance per test, and markers that must not skip in CI.

``nvsim_gpus`` starts ``nvsim up`` in a temporary state directory and yields a handle whose
``env`` points child processes at it.  In-process NVML users go through ``nvsim_in_process``,
which loads the built library by path once (dlopen then finds it by soname) and points
``NVSIM_STATE`` at the instance before ``nvmlInit``. ``debian_bootstrap`` is the run's one
Debian image from ``bolt image bootstrap`` (``tests/debian_image.py``).
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.debian_image import Bootstrapped

VENV_BIN = Path(sys.executable).parent
IN_CI = os.environ.get("CI") == "true"


def tool(name: str) -> str:
    """Path of one of our console scripts in the running venv."""
    path = VENV_BIN / name
    return str(path) if path.exists() else name


@dataclass
class NvsimInstance:
    state: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [tool("nvsim"), "--state", str(self.state), *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
        )

    def status(self) -> dict:
        return json.loads(self.run("status", "--json").stdout)

    def nvctl(self, *args: str, check: bool = False, **kw) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [tool("nvctl"), *args], env=self.env, capture_output=True, text=True, check=check, **kw
        )


def _start(tmp: Path, gpus: int, model: str, extra: list[str]) -> NvsimInstance:
    state = tmp / "nvsim"
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)
    inst = NvsimInstance(state=state, env=env)
    # Exact readings unless a test asks for noise: tests compare tools' readings taken at
    # different moments, and wait for readings to settle.
    noise = [] if "--sensor-noise" in extra else ["--sensor-noise", "0"]
    inst.run("up", "--gpus", str(gpus), "--model", model, *noise, *extra)
    exports = inst.run("env", "--format", "json").stdout
    env.update(json.loads(exports))
    env["NVCTL_STATE_DIR"] = str(tmp / "nvctl-state")
    env["NVCTL_CONFIG_DIR"] = str(tmp / "nvctl-config")
    return inst


@pytest.fixture
def nvsim_gpus(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[NvsimInstance]:
    """Two virtual RTX 4090s (override with @pytest.mark.parametrize-style indirect params:
    ``request.param = {"gpus": N, "model": M, "args": [...]}``)."""
    if shutil.which(tool("nvsim")) is None:
        pytest.fail("nvsim is not installed in this venv: run ./project.sh setup")
    params = getattr(request, "param", {}) or {}
    inst = _start(
        tmp_path, params.get("gpus", 2), params.get("model", "rtx4090"), params.get("args", [])
    )
    try:
        yield inst
    finally:
        inst.run("down", check=False)


_loaded_lib: ctypes.CDLL | None = None


@pytest.fixture
def nvsim_in_process(
    nvsim_gpus: NvsimInstance, monkeypatch: pytest.MonkeyPatch
) -> Iterator[NvsimInstance]:
    """nvsim_gpus, plus pynvml in this process pointed at it (nvmlInit/Shutdown around)."""
    global _loaded_lib
    from nvsim.build import library_path

    if _loaded_lib is None:
        _loaded_lib = ctypes.CDLL(str(library_path()), mode=ctypes.RTLD_GLOBAL)
    monkeypatch.setenv("NVSIM_STATE", str(nvsim_gpus.state))
    for key in ("NVCTL_STATE_DIR", "NVCTL_CONFIG_DIR"):
        monkeypatch.setenv(key, nvsim_gpus.env[key])
    import pynvml

    pynvml.nvmlInit()
    try:
        yield nvsim_gpus
    finally:
        pynvml.nvmlShutdown()


@pytest.fixture(scope="session")
def debian_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Bootstrapped:
    """This run's ``bolt image bootstrap debian:bookworm`` (tests/debian_image.py): made by
    the first process that asks, once per run, and waited for by the others."""
    from tests.bolt.conftest import require_root
    from tests.debian_image import bootstrapped, run_dir

    require_root()
    return bootstrapped(run_dir(tmp_path_factory))


# ``./project.sh test`` runs pytest with two xdist workers: tests that touch what one host
# has once stay serial, the rest runs beside them (tests/parallel.py says which is which).
@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    if config.getvalue("dist") != "loadgroup":
        return None
    from tests.parallel import HostGroupScheduling

    return HostGroupScheduling(config, log)


# Hardware tests read a real GPU; they are collected only where one is meant to be used.
collect_ignore_glob = [] if os.environ.get("NVCTL_HARDWARE") == "1" else ["hardware/*"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI every requirement (root, runtimes, registry, nvsim) is installed, so a skip
    there hides a broken set-up: report it as a failure instead."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if IN_CI and report.skipped and "hardware" not in item.keywords:
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where nothing may be skipped: {report.longrepr}"
