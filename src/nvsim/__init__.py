"""nvsim — a virtual NVIDIA driver.

A real ``libnvidia-ml.so.1`` (C, built against the official ``nvml.h``) serves NVML calls
from a shared memory-mapped state file; a physical model in Python (``nvsim.model``) moves
that state forward.  ``nvsim up`` starts it, ``nvsim env`` points a process at it.
"""

__version__ = "0.1.0"
