"""Errors nvcontrol reports to users, each with its exit code (the table in the README).

They extend :mod:`basis.errors` so that ``nvctl`` and ``bolt`` share one exit-code table.
NVML return codes map onto them in :func:`from_nvml_code`.
"""

from __future__ import annotations

from basis.errors import ExitCode, InvalidInput, PermissionDenied, Unsupported, UserError

__all__ = [
    "ExitCode",
    "GpuLost",
    "GpuSelectionError",
    "NoDriver",
    "NvctlError",
    "NvmlCallError",
    "PermissionDenied",
    "Unsupported",
    "from_nvml_code",
]

NO_DRIVER_HINT = (
    "no GPU? start the virtual driver: "
    '`nvsim up --gpus 2 --model rtx4090 && eval "$(nvsim env)"`, then run nvctl again'
)


class NvctlError(UserError):
    """Base of nvcontrol's user-facing errors."""


class NoDriver(Unsupported):
    """No NVML library, or the driver is not loaded."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"no NVIDIA driver found ({detail})", hint=NO_DRIVER_HINT)


class GpuSelectionError(InvalidInput):
    """A ``-i/--gpu`` selector names no GPU, or more than one where one is needed."""


class GpuLost(NvctlError):
    """The GPU fell off the bus (NVML_ERROR_GPU_IS_LOST)."""


class NvmlCallError(NvctlError):
    """An NVML call failed with a return code that the caller cannot turn into N/A."""

    def __init__(self, function: str, code: int, text: str, *, gpu: str | None = None) -> None:
        where = f" on {gpu}" if gpu else ""
        super().__init__(f"{function}{where} failed: {text} (NVML error {code})")
        self.function = function
        self.code = code


def from_nvml_code(function: str, code: int, text: str, gpu: str | None = None) -> UserError:
    """The user-facing error for an NVML return code (exit code follows the meaning)."""
    import pynvml

    where = f" on {gpu}" if gpu else ""
    if code == pynvml.NVML_ERROR_NO_PERMISSION:
        return PermissionDenied(
            f"{function}{where}: permission denied by the driver",
            hint="GPU settings need root: run nvctl with sudo",
        )
    if code in (pynvml.NVML_ERROR_NOT_SUPPORTED, pynvml.NVML_ERROR_FUNCTION_NOT_FOUND):
        return Unsupported(f"{function}{where}: not supported by this GPU or driver ({text})")
    if code == pynvml.NVML_ERROR_INVALID_ARGUMENT:
        return InvalidInput(f"{function}{where}: the driver rejected the value ({text})")
    if code == pynvml.NVML_ERROR_GPU_IS_LOST:
        return GpuLost(
            f"{function}{where}: the GPU has fallen off the bus",
            hint="the GPU needs a reset (on nvsim: `nvsim reset`; on hardware: reboot)",
        )
    if code in (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, pynvml.NVML_ERROR_LIBRARY_NOT_FOUND):
        return NoDriver(text)
    return NvmlCallError(function, code, text, gpu=gpu)
