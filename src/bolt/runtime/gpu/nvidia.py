"""NVIDIA GPUs for containers: discovery through NVML and the ``nvidia.com/gpu`` CDI spec.

Discovery uses nvidia-ml-py (``pynvml``, imported lazily: ``bolt run`` never loads it).
The CDI spec is what NVIDIA's ``nvidia-ctk cdi generate`` produces in spirit: one device
per GPU (named by index and by UUID, plus ``all``), each with its ``/dev/nvidiaN`` node,
and common edits with the control nodes and the NVML library.

On nvsim (the virtual driver) the driver's files live in nvsim's state directory: the
nodes come from ``<state>/dev``, the library is nvsim's ``libnvidia-ml.so.1``, its
``nvidia-smi`` (``<state>/bin``) is mounted at ``/usr/bin/nvidia-smi``, and the state file
is bind-mounted read-only at ``/run/nvsim/state`` with ``NVSIM_STATE`` pointing there, so
processes in the container see the host's virtual GPUs and cannot change or corrupt them.
The extra device ``nvidia.com/gpu=nvsim-state-rw`` remounts the state read-write for the
one container that is given it, and for every privileged GPU container (a GPU management
service such as the seed's privileged gpu-manager, whose NVML setters must work);
docs/nvsim.md explains the trade-off.  nvsim is recognised by ``NVSIM_STATE`` or by a
state file beside the loaded library (``<lib>/../state``).

Limitations on a real driver: only the NVML/CUDA user-space libraries found next to the
loaded ``libnvidia-ml.so.1`` and ``nvidia-smi`` are mounted; no ldcache hook runs, so the
libraries are placed in the loader's default directories instead.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bolt.errors import BoltError, Unsupported
from bolt.runtime.cdi import NVSIM_STATE_RW  # the device that grants write access

LIB = "libnvidia-ml.so.1"
LIB_TARGETS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib64")
NVSIM_MAGIC = b"NVSIM\x00"
NVSIM_CONTAINER_DIR = "/run/nvsim"
SMI = "/usr/bin/nvidia-smi"
CONTROL_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")
# User-space driver libraries mounted when they sit beside libnvidia-ml on a real driver.
EXTRA_LIBS = (
    "libcuda.so.1",
    "libnvidia-ptxjitcompiler.so.1",
    "libnvidia-nvvm.so.4",
    "libnvidia-cfg.so.1",
    "libnvidia-gpucomp.so",
)
CDI_VERSION = "0.6.0"
KIND = "nvidia.com/gpu"


@dataclass(frozen=True)
class Driver:
    """Where the loaded driver's files are."""

    library: str  # resolved path of the libnvidia-ml.so.1 NVML loaded
    version: str
    dev_dir: str  # where /dev/nvidia* nodes are on the host
    nvsim_state: str | None  # nvsim's state directory, None on a real driver


@dataclass(frozen=True)
class NvidiaGpu:
    index: int
    uuid: str
    name: str
    minor: int
    pci_bus_id: str
    memory_total: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def device_node(self) -> str:
        return f"nvidia{self.minor}"

    @property
    def cdi_device(self) -> str:
        """The CDI name ``bolt run --device`` (or ``--gpus UUID``) takes for this GPU."""
        return f"{KIND}={self.uuid}"

    @classmethod
    def discover(cls) -> list[NvidiaGpu]:
        """Every GPU NVML reports, in NVML's order."""
        with _nvml() as nv:
            gpus = []
            for i in range(nv.nvmlDeviceGetCount()):
                h = nv.nvmlDeviceGetHandleByIndex(i)
                try:
                    minor = int(nv.nvmlDeviceGetMinorNumber(h))
                except nv.NVMLError:
                    minor = i
                gpus.append(
                    cls(
                        index=i,
                        uuid=_text(nv.nvmlDeviceGetUUID(h)),
                        name=_text(nv.nvmlDeviceGetName(h)),
                        minor=minor,
                        pci_bus_id=_text(nv.nvmlDeviceGetPciInfo(h).busId),
                        memory_total=int(nv.nvmlDeviceGetMemoryInfo(h).total),
                    )
                )
            return gpus

    @staticmethod
    def driver() -> Driver:
        with _nvml() as nv:
            version = _text(nv.nvmlSystemGetDriverVersion())
            return _locate_driver(version)

    @classmethod
    def cdi_spec(cls) -> dict[str, Any]:
        """The ``nvidia.com/gpu`` CDI spec for this host's GPUs and driver."""
        gpus = cls.discover()
        if not gpus:
            raise Unsupported("NVML reports no GPUs", hint="check the driver with 'bolt gpu list'")
        return build_cdi_spec(gpus, cls.driver())


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _nvml:
    """``with _nvml() as pynvml:`` — init/shutdown, turning a missing driver into exit 3."""

    def __enter__(self) -> Any:
        try:
            import pynvml
        except ImportError:
            raise Unsupported(
                "nvidia-ml-py is not installed", hint="pip install nvidia-ml-py"
            ) from None
        self.nv = pynvml
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise Unsupported(
                f"no NVIDIA driver: {exc}",
                hint='install the NVIDIA driver, or start the virtual one: nvsim up (and eval "$(nvsim env)")',
            ) from None
        return pynvml

    def __exit__(self, *exc: object) -> None:
        try:
            self.nv.nvmlShutdown()
        except self.nv.NVMLError:
            pass


def loaded_library() -> str | None:
    """The file this process mapped as libnvidia-ml.so.1 (call while NVML is loaded)."""
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.rstrip("\n").split(maxsplit=5)[-1]
            if os.path.basename(path).startswith("libnvidia-ml.so"):
                return os.path.realpath(path)
    return None


def _is_nvsim_state(path: Path) -> bool:
    try:
        with open(path / "state", "rb") as f:
            return f.read(len(NVSIM_MAGIC)) == NVSIM_MAGIC
    except OSError:
        return False


def _locate_driver(version: str) -> Driver:
    library = loaded_library()
    if library is None:
        raise BoltError(
            "NVML is initialised but libnvidia-ml.so.1 is not mapped; cannot locate the driver"
        )
    candidates = []
    if os.environ.get("NVSIM_STATE"):
        candidates.append(Path(os.environ["NVSIM_STATE"]))
    candidates.append(Path(library).parent.parent)
    for state in candidates:
        if _is_nvsim_state(state):
            return Driver(
                library=library,
                version=version,
                dev_dir=str(state.resolve() / "dev"),
                nvsim_state=str(state.resolve()),
            )
    return Driver(library=library, version=version, dev_dir="/dev", nvsim_state=None)


def _node(driver: Driver, name: str) -> dict[str, Any] | None:
    host = os.path.join(driver.dev_dir, name)
    if not os.path.exists(host):
        return None
    return {"path": f"/dev/{name}", "hostPath": host}


def _library_mounts(driver: Driver) -> list[dict[str, Any]]:
    libs = [driver.library]
    if driver.nvsim_state is None:
        libdir = os.path.dirname(driver.library)
        libs += [
            os.path.join(libdir, n) for n in EXTRA_LIBS if os.path.exists(os.path.join(libdir, n))
        ]
    mounts = []
    for lib in libs:
        soname = LIB if lib == driver.library else os.path.basename(lib)
        for target in LIB_TARGETS:
            mounts.append(
                {
                    "hostPath": lib,
                    "containerPath": f"{target}/{soname}",
                    "options": ["ro", "nosuid", "nodev", "bind"],
                }
            )
    smi = (
        SMI if driver.nvsim_state is None else os.path.join(driver.nvsim_state, "bin", "nvidia-smi")
    )
    if os.path.exists(smi):
        mounts.append(
            {"hostPath": smi, "containerPath": SMI, "options": ["ro", "nosuid", "nodev", "bind"]}
        )
    return mounts


def _nvsim_state_mount(driver: Driver, mode: str) -> dict[str, Any]:
    return {
        "hostPath": os.path.join(driver.nvsim_state or "", "state"),
        "containerPath": f"{NVSIM_CONTAINER_DIR}/state",
        "options": [mode, "nosuid", "nodev", "bind"],
    }


def build_cdi_spec(gpus: list[NvidiaGpu], driver: Driver) -> dict[str, Any]:
    """The CDI document for ``gpus`` served by ``driver`` (only files that exist on this
    host are named)."""
    common: dict[str, Any] = {
        "deviceNodes": [n for n in (_node(driver, c) for c in CONTROL_NODES) if n is not None],
        "mounts": _library_mounts(driver),
        # No NVIDIA_DRIVER_VERSION: CDI env edits override the container's own, and a
        # service may set it itself (the seed's driver-test names the version it tests).
        # NVML tells a program the driver's version.
        "env": [],
    }
    if driver.nvsim_state is not None:
        # Read-only: root in a GPU container must not be able to corrupt the state that
        # every host NVML client maps.  Setters inside then answer NO_PERMISSION.
        common["mounts"].append(_nvsim_state_mount(driver, "ro"))
        common["env"].append(f"NVSIM_STATE={NVSIM_CONTAINER_DIR}")
    devices = []
    all_nodes = []
    for gpu in gpus:
        node = _node(driver, gpu.device_node)
        nodes = [node] if node is not None else []
        all_nodes += nodes
        edits = {"deviceNodes": nodes} if nodes else {"env": [f"NVIDIA_VISIBLE_DEVICES={gpu.uuid}"]}
        devices.append({"name": str(gpu.index), "containerEdits": edits})
        devices.append({"name": gpu.uuid, "containerEdits": edits})
    devices.append(
        {
            "name": "all",
            "containerEdits": {"deviceNodes": all_nodes}
            if all_nodes
            else {"env": ["NVIDIA_VISIBLE_DEVICES=all"]},
        }
    )
    if driver.nvsim_state is not None:
        # Requested explicitly, next to a GPU device, by the one container that sets.
        devices.append(
            {
                "name": NVSIM_STATE_RW,
                "containerEdits": {"mounts": [_nvsim_state_mount(driver, "rw")]},
            }
        )
    if not common["deviceNodes"]:
        del common["deviceNodes"]
    return {"cdiVersion": CDI_VERSION, "kind": KIND, "devices": devices, "containerEdits": common}


def write_spec(path: str, text: str) -> None:
    """Write atomically (a runtime reading the directory never sees half a file)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, target)
