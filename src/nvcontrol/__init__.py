"""nvcontrol — an NVIDIA GPU control panel: monitoring, control, snapshots, transactions.

Library first: ``nvcontrol.nvml`` is the one NVML backend (nvidia-ml-py, for real drivers
and nvsim alike); the ``nvctl`` CLI is a thin layer over the library.
"""

__version__ = "0.1.0"
