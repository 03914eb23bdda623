"""Load generators for stability probes: nvsim's simulated load, or a CUDA workload.

On nvsim (``$NVSIM_STATE`` set, or the loaded NVML library lives in an nvsim build) the
load is driven through the ``nvsim load`` mechanism.  On real hardware a matrix-multiply
loop runs on the GPU through PyTorch or CuPy when either is importable; otherwise
:func:`pick` returns ``None`` and callers say plainly that no load generator is available.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from nvcontrol.control.journal import Journal
from nvcontrol.errors import NvctlError
from nvcontrol.nvml import Gpu


class LoadGenerator(Protocol):
    name: str

    def start(self, gpus: Sequence[Gpu]) -> None: ...
    def stop(self) -> None: ...


def nvsim_state() -> str | None:
    """nvsim's state directory when the NVML in use is nvsim's, else ``None``."""
    state = os.environ.get("NVSIM_STATE")
    if state:
        return state
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    if "libnvidia-ml" in maps and "nvsim" in maps:
        return "/run/nvsim"  # nvsim's default state directory
    return None


class NvsimLoad:
    """Full load through ``nvsim load GPU 100``; restores 0% when stopped."""

    name = "nvsim simulated load"

    def __init__(self, state: str) -> None:
        self.state = state
        self.gpus: list[Gpu] = []
        exe = Path(sys.executable).with_name("nvsim")
        self.exe = str(exe) if exe.exists() else (shutil.which("nvsim") or "nvsim")

    def _load(self, gpu: Gpu, pct: int) -> None:
        self.set_load(gpu.uuid, pct, gpu.label)

    def set_load(self, uuid: str, pct: int, label: str | None = None) -> None:
        done = subprocess.run(
            [self.exe, "--state", self.state, "load", uuid, str(pct)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise NvctlError(f"{label or uuid}: `nvsim load` failed: {done.stderr.strip()}")

    def start(self, gpus: Sequence[Gpu]) -> None:
        for g in gpus:
            self._load(g, 100)
            self.gpus.append(g)

    def stop(self) -> None:
        while self.gpus:
            self._load(self.gpus.pop(), 0)


class CudaLoad:
    """Back-to-back matrix multiplies on each GPU in a thread, via PyTorch or CuPy."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.name = f"CUDA matrix multiply ({backend})"
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, gpus: Sequence[Gpu]) -> None:
        for g in gpus:
            t = threading.Thread(target=self._spin, args=(g.index,), daemon=True)
            t.start()
            self.threads.append(t)

    def _spin(self, index: int) -> None:
        if self.backend == "torch":
            import torch

            dev = torch.device(f"cuda:{index}")
            a = torch.randn(4096, 4096, device=dev)
            while not self.stopping.is_set():
                a = (a @ a).clamp_(-1, 1)
            torch.cuda.synchronize(dev)
        else:
            import cupy

            with cupy.cuda.Device(index):
                a = cupy.random.randn(4096, 4096, dtype=cupy.float32)
                while not self.stopping.is_set():
                    a = cupy.clip(a @ a, -1, 1)
                cupy.cuda.Device(index).synchronize()

    def stop(self) -> None:
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=10)


@contextmanager
def running(
    load: LoadGenerator, gpus: Sequence[Gpu], journal: Callable[[], Journal]
) -> Iterator[None]:
    """Load ``gpus`` for the block.  A load that outlives its process (nvsim's, which
    lives in the driver's state) is registered in the journal first, so a SIGKILL'd
    probe's load is taken off by the next nvctl command (:mod:`.recovery`); a CUDA load
    dies with its process."""
    load_id = None
    if isinstance(load, NvsimLoad):
        load_id = journal().register_load([g.uuid for g in gpus], load.state)
    try:
        load.start(gpus)
        yield
    finally:
        load.stop()
        if load_id is not None:
            journal().remove_load(load_id)


def take_off(nvsim_state: str, uuids: Sequence[str]) -> None:
    """Remove the simulated load a dead probe left on these GPUs."""
    gen = NvsimLoad(nvsim_state)
    for uuid in uuids:
        gen.set_load(uuid, 0)


def pick() -> LoadGenerator | None:
    state = nvsim_state()
    if state is not None:
        return NvsimLoad(state)
    for backend in ("torch", "cupy"):
        try:
            __import__(backend)
        except ImportError:
            continue
        return CudaLoad(backend)
    return None


NO_LOAD_HINT = (
    "no load generator is available: install PyTorch or CuPy with CUDA support, or run your "
    "own GPU workload during the test"
)
