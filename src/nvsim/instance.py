"""An nvsim instance on disk: bringing it up, finding it, and taking it down.

An instance is a state directory holding:

* ``state``: the shared memory-mapped state (:mod:`nvsim.state`);
* ``lib/libnvidia-ml.so.1`` (and the ``libnvidia-ml.so`` link): the driver library, the
  variant with only the symbols of the pretended driver's branch;
* ``bin/nvidia-smi``: the driver's command-line tool, built on that library;
* ``dev/``: device nodes with NVIDIA's numbers (only when we may create them);
* ``daemon.log``: the output of the tick daemon (:mod:`nvsim.daemon`).

The functions here raise :mod:`basis.errors` exceptions that carry what went wrong and
which exit code the CLI uses; they print nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from basis.errors import InvalidInput, PermissionDenied, Unsupported, UserError
from nvsim import build, gating, layout, models
from nvsim.state import STATE_FILE, StateFile, StateFileError

DEFAULT_STATE_DIR = Path("/run/nvsim")
DEFAULT_DRIVER = "580.95.05"
NVIDIA_MAJOR = 195  # fixed by NVIDIA's kernel module
NVIDIACTL_MINOR = 255
NVIDIA_MODESET_MINOR = 254
# nvidia-uvm gets a dynamic major; without a loaded module we use 510, a number from the
# kernel's dynamic range that NVIDIA's module commonly receives.
UVM_FALLBACK_MAJOR = 510
LOG_FILE = "daemon.log"
DAEMON_START_TIMEOUT_S = 15.0
DAEMON_STOP_TIMEOUT_S = 5.0
FRESH_TICK_US = 2_000_000  # a daemon that ticked this recently is running
DEFAULT_SENSOR_NOISE_PCT = 1.0  # power and temperature sensors jitter about this much
MAX_SENSOR_NOISE_PCT = 10.0

# CUDA version each driver branch ships (cudaDriverGetVersion encoding).
_CUDA_BY_BRANCH = [
    (450, 11000),
    (455, 11010),
    (460, 11020),
    (465, 11030),
    (470, 11040),
    (495, 11050),
    (510, 11060),
    (515, 11070),
    (520, 11080),
    (525, 12000),
    (530, 12010),
    (535, 12020),
    (545, 12030),
    (550, 12040),
    (555, 12050),
    (560, 12060),
    (565, 12070),
    (570, 12080),
    (575, 12090),
    (580, 13000),
]


def default_state_dir() -> Path:
    return Path(os.environ.get("NVSIM_STATE") or DEFAULT_STATE_DIR)


@dataclass(frozen=True)
class Driver:
    version: str
    major: int
    minor: int
    cuda_version: int

    @property
    def nvml_version(self) -> str:
        return f"{self.cuda_version // 1000}.{self.version}"


def parse_driver(text: str) -> Driver:
    """``"550.54.14"`` → the versions nvsim reports for that driver."""
    m = re.fullmatch(r"(\d{3})\.(\d{1,3})(?:\.(\d{1,3}))?", text.strip())
    if not m:
        raise InvalidInput(
            f"driver version {text!r} is not of the form MAJOR.MINOR[.PATCH]",
            hint="for example --driver 550.54.14",
        )
    major = int(m.group(1))
    if major < gating.MIN_BRANCH:
        raise InvalidInput(
            f"driver {text} is older than R{gating.MIN_BRANCH}, the oldest branch nvsim models"
        )
    cuda = [c for branch, c in _CUDA_BY_BRANCH if branch <= major][-1]
    return Driver(text.strip(), major, int(m.group(2)), cuda)


def resolve_models(spec: str, gpus: int) -> list[models.GpuModel]:
    if not 1 <= gpus <= layout.MAX_GPUS:
        raise InvalidInput(f"--gpus {gpus} is out of range (1..{layout.MAX_GPUS})")
    names = [n for n in spec.split(",") if n.strip()]
    try:
        chosen = [models.get_model(n) for n in names]
    except models.UnknownModel as err:
        raise InvalidInput(str(err)) from None
    if len(chosen) == 1:
        return chosen * gpus
    if len(chosen) != gpus:
        raise InvalidInput(
            f"--model lists {len(chosen)} models for {gpus} GPUs; give one or {gpus}"
        )
    return chosen


# --- finding an instance ----------------------------------------------------------------


def daemon_alive(pid: int) -> bool:
    """True if ``pid`` is a running (not zombie) nvsim daemon."""
    if pid <= 0:
        return False
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return fields[0] not in ("Z", "X") and b"nvsim.daemon" in cmdline


def daemon_running(header: layout.Header) -> bool:
    """Is the instance's daemon ticking?

    Its pid answers in our PID namespace; from another one (a container with the state
    directory mounted) the pid is not visible, and recent ticks answer instead.
    """
    pid = header.daemon_pid
    if daemon_alive(pid):
        return True
    if pid <= 0 or Path(f"/proc/{pid}").exists():
        return False
    if header.daemon_pidns and header.daemon_pidns == pid_namespace():
        return False  # our namespace, and the pid is gone: it died (and was reaped)
    return time.time_ns() // 1000 - header.tick_us < FRESH_TICK_US


def pid_namespace() -> int:
    """The inode of this process's PID namespace (0 when /proc does not say)."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


class NoInstance(Unsupported):
    """No nvsim instance is up in the state directory."""


def open_state(
    state_dir: Path, *, require_daemon: bool = True, readonly: bool = False
) -> StateFile:
    """Map the instance's state; raise :class:`NoInstance` if there is none (exit 3).

    ``readonly`` (for commands that only show) works for any user who may read the file.
    """
    try:
        sf = StateFile.open(state_dir, readonly=readonly)
    except StateFileError as err:
        raise NoInstance(
            f"no nvsim instance at {state_dir} ({err})",
            hint=f"start one with: nvsim --state {state_dir} up --gpus 1 --model rtx4090",
        ) from None
    except PermissionError as err:
        raise PermissionDenied(f"cannot open {err.filename}: permission denied") from None
    if require_daemon and not daemon_running(sf.header):
        sf.close()
        raise NoInstance(
            f"the nvsim instance at {state_dir} is not running (its daemon exited; "
            f"see {state_dir / LOG_FILE})",
            hint=f"restart it with: nvsim --state {state_dir} down, then up",
        )
    return sf


def environment(state_dir: Path, ld_library_path: str | None) -> dict[str, str]:
    """The variables that point a process at this instance."""
    open_state(state_dir, readonly=True).close()
    lib = str(state_dir.resolve() / "lib")
    rest = [p for p in (ld_library_path or "").split(":") if p and p != lib]
    return {"NVSIM_STATE": str(state_dir.resolve()), "LD_LIBRARY_PATH": ":".join([lib, *rest])}


def smi_command(state_dir: Path) -> Path:
    """The instance's nvidia-smi (what ``nvidia-smi`` on a real driver's PATH is)."""
    return state_dir.resolve() / "bin" / build.SMI_NAME


# --- up ---------------------------------------------------------------------------------


@dataclass
class UpResult:
    state_dir: Path
    daemon_pid: int
    library: Path
    device_nodes: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def up(
    state_dir: Path,
    gpu_models: Sequence[models.GpuModel],
    driver: Driver,
    *,
    time_scale: float = 1.0,
    seed: int = 0,
    sensor_noise_pct: float = DEFAULT_SENSOR_NOISE_PCT,
) -> UpResult:
    if not 0 < time_scale <= 10_000:
        raise InvalidInput(f"--time-scale {time_scale} is out of range (0 < X <= 10000)")
    if seed < 0:
        raise InvalidInput(f"--seed {seed} must not be negative")
    if not 0 <= sensor_noise_pct <= MAX_SENSOR_NOISE_PCT:  # NaN fails both comparisons
        raise InvalidInput(
            f"--sensor-noise {sensor_noise_pct} is out of range (0..{MAX_SENSOR_NOISE_PCT} %)"
        )
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        raise PermissionDenied(
            f"cannot create {state_dir}: permission denied",
            hint="run as root, or pass --state DIR (or set NVSIM_STATE) to a writable directory",
        ) from None
    except OSError as err:
        raise UserError(f"cannot create {state_dir}: {err.strerror}") from None
    _refuse_if_running(state_dir)
    (state_dir / "driver.json").unlink(missing_ok=True)  # a new instance, a new driver record
    shutil.rmtree(state_dir / "drivers", ignore_errors=True)
    notes: list[str] = []
    library = _install_library(state_dir, driver, notes)

    def fill(state: layout.State) -> None:
        h = state.header
        h.gpu_count = len(gpu_models)
        h.driver_version = driver.version.encode()
        h.nvml_version = driver.nvml_version.encode()
        h.driver_major, h.driver_minor = driver.major, driver.minor
        h.cuda_version = driver.cuda_version
        h.start_us = time.time_ns() // 1000
        h.time_scale = time_scale
        for index, model in enumerate(gpu_models):
            models.init_gpu(state.gpus[index], model, index, seed, sensor_noise_pct)

    StateFile.create(state_dir, fill).close()
    nodes = make_device_nodes(state_dir, len(gpu_models), notes)
    pid = _start_daemon(state_dir)
    return UpResult(state_dir, pid, library, nodes, notes)


def _refuse_if_running(state_dir: Path) -> None:
    try:
        with StateFile.open(state_dir) as sf:
            pid = sf.header.daemon_pid
            running = daemon_running(sf.header)
    except StateFileError:
        return
    if running:
        raise UserError(
            f"an nvsim instance is already up at {state_dir} (daemon pid {pid})",
            hint=f"take it down first: nvsim --state {state_dir} down",
        )


def _install_library(state_dir: Path, driver: Driver, notes: list[str]) -> Path:
    """Install the library variant of the driver's branch (only the symbols that branch
    has) in ``lib/`` and nvidia-smi in ``bin/``, as a driver installation does."""
    try:
        build.build()
    except (build.BuildError, OSError) as err:
        # A read-only install or an offline machine can still use what was built before.
        if not build.library_path(driver.major).exists():
            raise UserError(f"cannot build libnvidia-ml.so.1: {err}") from None
        notes.append(f"using the previously built library; rebuilding failed: {err}")
    target = _install_file(build.library_path(driver.major), state_dir / "lib" / build.LIB_NAME)
    link = state_dir / "lib" / "libnvidia-ml.so"
    link.unlink(missing_ok=True)
    link.symlink_to(build.LIB_NAME)
    if build.smi_path().exists():
        _install_file(build.smi_path(), state_dir / "bin" / build.SMI_NAME)
    return target


def _install_file(source: Path, target: Path) -> Path:
    target.parent.mkdir(exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, tmp)
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)
    return target


def uvm_major() -> int:
    try:
        for line in Path("/proc/devices").read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == "nvidia-uvm":
                return int(parts[0])
    except OSError:
        pass
    return UVM_FALLBACK_MAJOR


def device_node_specs(gpu_count: int) -> list[tuple[str, int, int]]:
    """(name, major, minor) of every node an instance with ``gpu_count`` GPUs has."""
    uvm = uvm_major()
    specs = [(f"nvidia{i}", NVIDIA_MAJOR, i) for i in range(gpu_count)]
    specs += [
        ("nvidiactl", NVIDIA_MAJOR, NVIDIACTL_MINOR),
        ("nvidia-modeset", NVIDIA_MAJOR, NVIDIA_MODESET_MINOR),
        ("nvidia-uvm", uvm, 0),
        ("nvidia-uvm-tools", uvm, 1),
    ]
    return specs


def make_device_nodes(state_dir: Path, gpu_count: int, notes: list[str]) -> list[Path]:
    dev = state_dir / "dev"
    dev.mkdir(exist_ok=True)
    made: list[Path] = []
    for name, major, minor in device_node_specs(gpu_count):
        path = dev / name
        path.unlink(missing_ok=True)
        try:
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        except PermissionError:
            notes.append(
                f"no device nodes in {dev}: creating them needs root (CAP_MKNOD); "
                "NVML works without them"
            )
            break
        os.chmod(path, 0o666)
        made.append(path)
    return made


def _start_daemon(state_dir: Path) -> int:
    log_path = state_dir / LOG_FILE
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nvsim.daemon", str(state_dir.resolve())],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            cwd="/",
        )
    deadline = time.monotonic() + DAEMON_START_TIMEOUT_S
    with StateFile.open(state_dir) as sf:
        while time.monotonic() < deadline:
            if sf.header.daemon_pid == proc.pid and sf.header.seq > 0:
                return proc.pid
            if proc.poll() is not None:
                break
            time.sleep(0.02)
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
    raise UserError(
        "the nvsim daemon did not start: " + (" | ".join(tail) or "no output"),
        hint=f"see {log_path}",
    )


# --- down -------------------------------------------------------------------------------


def down(state_dir: Path) -> list[str]:
    """Stop the daemon and remove what ``up`` created; returns what was done."""
    state_path = state_dir / STATE_FILE
    if not state_path.exists() and not (state_dir / "lib").exists():
        raise NoInstance(f"no nvsim instance at {state_dir}")
    done: list[str] = []
    gpu_count = layout.MAX_GPUS
    try:
        with StateFile.open(state_dir) as sf:
            pid = sf.header.daemon_pid
            gpu_count = max(gpu_count, sf.header.gpu_count)
            sf.retire()  # clients still attached get errors, not the last values
    except StateFileError:
        pid = 0
    if daemon_alive(pid):
        stop_daemon(pid)
        done.append(f"stopped daemon {pid}")
    removed = 0
    for name, _, _ in device_node_specs(gpu_count):
        path = state_dir / "dev" / name
        if path.exists() or path.is_symlink():
            path.unlink()
            removed += 1
    if removed:
        done.append(f"removed {removed} device nodes")
    for path in (
        state_dir / "lib" / build.LIB_NAME,
        state_dir / "lib" / "libnvidia-ml.so",
        state_dir / "bin" / build.SMI_NAME,
        state_path,
        state_dir / LOG_FILE,
        state_dir / "driver.json",
    ):
        path.unlink(missing_ok=True)
    shutil.rmtree(state_dir / "drivers", ignore_errors=True)  # drivers kept by nvsim.driver
    for directory in (state_dir / "dev", state_dir / "lib", state_dir / "bin", state_dir):
        try:
            directory.rmdir()
        except OSError:
            pass  # not ours to empty, or already gone
    done.append(f"removed {state_dir}" if not state_dir.exists() else f"cleaned {state_dir}")
    return done


def stop_daemon(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + DAEMON_STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            if not daemon_alive(pid):
                return
            time.sleep(0.02)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # it exited on its own meanwhile
