"""nvcontrol — an NVIDIA GPU control panel: monitoring, control, snapshots, transactions.

Library first: ``nvcontrol.nvml`` is the one NVML backend (nvidia-ml-py, for real drivers
and nvsim alike); the ``nvctl`` CLI is a thin layer over the library.
"""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # GpuManager pulls in NVML and SQLite: import it only when asked for.
    if name == "GpuManager":
        from nvcontrol.control.manager import GpuManager

        return GpuManager
    raise AttributeError(f"module 'nvcontrol' has no attribute {name!r}")
