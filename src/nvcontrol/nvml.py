"""The one NVML backend: nvidia-ml-py (module ``pynvml``), for real drivers and nvsim alike.

Owns the NVML session, GPU enumeration (handles and identity cached once per session),
tolerant reads (a value the GPU or driver cannot give is ``None`` — shown as N/A — never
an exception), batched field-value reads for hot sampling, and *checked* calls through
NVML function pointers for the setters whose nvidia-ml-py wrappers ignore the C return
code.  It must not print, parse arguments or know about snapshots: layers above do that.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pynvml

from nvcontrol.errors import GpuLost, NoDriver, from_nvml_code

T = TypeVar("T")

# Return codes that mean "this value does not exist here": shown as N/A.
_NA_CODES = frozenset(
    {
        pynvml.NVML_ERROR_NOT_SUPPORTED,
        pynvml.NVML_ERROR_FUNCTION_NOT_FOUND,
        pynvml.NVML_ERROR_NO_DATA,
        pynvml.NVML_ERROR_NOT_FOUND,
        pynvml.NVML_ERROR_INVALID_ARGUMENT,
        pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH,
        pynvml.NVML_ERROR_UNKNOWN,
    }
)

_FIELD_DECODERS: dict[int, Callable[[Any], float | int]] = {
    pynvml.NVML_VALUE_TYPE_DOUBLE: lambda v: v.dVal,
    pynvml.NVML_VALUE_TYPE_UNSIGNED_INT: lambda v: v.uiVal,
    pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG: lambda v: v.ulVal,
    pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG: lambda v: v.ullVal,
    pynvml.NVML_VALUE_TYPE_SIGNED_LONG_LONG: lambda v: v.sllVal,
    pynvml.NVML_VALUE_TYPE_SIGNED_INT: lambda v: v.siVal,
    pynvml.NVML_VALUE_TYPE_UNSIGNED_SHORT: lambda v: v.usVal,
}


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def error_text(code: int) -> str:
    try:
        return _text(pynvml.nvmlErrorString(code))
    except Exception:  # the library may be gone while we report its error
        return f"NVML error {code}"


@dataclass
class Gpu:
    """One GPU of the session: its handle and identity, read once at enumeration."""

    index: int
    handle: Any
    uuid: str
    name: str
    pci_bus_id: str
    serial: str | None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        """How errors name this GPU: index and UUID."""
        return f"GPU {self.index} ({self.uuid})"

    def get(self, fn: Callable[..., T], *args: Any) -> T | None:
        """Call an nvidia-ml-py getter; N/A (``None``) where the value does not exist.

        A lost GPU raises :class:`GpuLost`; every other NVML error reads as N/A so that one
        old GPU or one missing sensor never breaks a whole table.
        """
        try:
            return fn(self.handle, *args)
        except pynvml.NVMLError as err:
            if err.value == pynvml.NVML_ERROR_GPU_IS_LOST:
                raise from_nvml_code(fn.__name__, err.value, str(err), self.label) from None
            return None

    def static(self, key: str, fn: Callable[..., T], *args: Any) -> T | None:
        """Like :meth:`get`, but remembered for the session (identity, ranges, limits)."""
        if key not in self._cache:
            self._cache[key] = self.get(fn, *args)
        return self._cache[key]  # type: ignore[no-any-return]

    def call(self, function: str, *args: Any) -> None:
        """Call an NVML C function through its pointer and raise on a non-zero return.

        Used for the setters and getters whose nvidia-ml-py wrappers drop the return code
        (nvmlDeviceSetClockOffsets, nvmlDeviceGetClockOffsets, SetPowerManagementLimit_v2).
        Pass structs with ``ctypes.byref``.
        """
        try:
            fn = pynvml._nvmlGetFunctionPointer(function)
        except pynvml.NVMLError as err:
            raise from_nvml_code(function, err.value, str(err), self.label) from None
        ret = fn(self.handle, *args)
        if ret != pynvml.NVML_SUCCESS:
            raise from_nvml_code(function, ret, error_text(ret), self.label)

    def try_call(self, function: str, *args: Any) -> int:
        """Like :meth:`call` but returns the NVML code instead of raising (0 = success)."""
        try:
            fn = pynvml._nvmlGetFunctionPointer(function)
        except pynvml.NVMLError as err:
            return int(err.value)
        return int(fn(self.handle, *args))

    def fields(self, field_ids: Sequence[int]) -> dict[int, float | int | None]:
        """Read many field values in one NVML call; N/A per field where unsupported."""
        try:
            values = pynvml.nvmlDeviceGetFieldValues(self.handle, list(field_ids))
        except pynvml.NVMLError as err:
            if err.value == pynvml.NVML_ERROR_GPU_IS_LOST:
                raise GpuLost(f"{self.label} has fallen off the bus") from None
            return dict.fromkeys(field_ids)
        out: dict[int, float | int | None] = {}
        for fid, v in zip(field_ids, values, strict=True):
            if v.nvmlReturn != pynvml.NVML_SUCCESS:
                out[fid] = None
                continue
            decode = _FIELD_DECODERS.get(v.valueType)
            out[fid] = decode(v.value) if decode else None
        return out


class Nvml:
    """An NVML session.  ``with Nvml() as nvml: nvml.gpus ...``.

    Initialisation failures become :class:`NoDriver` (exit code 3, with a hint that says
    how to start nvsim).  GPUs are enumerated once; handles are cached.
    """

    _lock = threading.Lock()

    def __init__(self) -> None:
        self._gpus: list[Gpu] | None = None
        self._system: dict[str, Any] | None = None
        self._open = False

    def __enter__(self) -> Nvml:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> Nvml:
        if self._open:
            return self
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as err:
            if err.value == pynvml.NVML_ERROR_LIBRARY_NOT_FOUND:
                raise NoDriver("libnvidia-ml.so.1 could not be loaded") from None
            if err.value == pynvml.NVML_ERROR_DRIVER_NOT_LOADED:
                raise NoDriver("the NVIDIA kernel driver is not loaded") from None
            raise from_nvml_code("nvmlInit", err.value, str(err)) from None
        self._open = True
        return self

    def close(self) -> None:
        if self._open:
            self._open = False
            try:
                pynvml.nvmlShutdown()
            except pynvml.NVMLError:
                pass  # shutting down a session whose driver vanished: nothing to release

    @property
    def gpus(self) -> list[Gpu]:
        if self._gpus is None:
            self._gpus = self._enumerate()
        return self._gpus

    def _enumerate(self) -> list[Gpu]:
        count = pynvml.nvmlDeviceGetCount()
        gpus = []
        for index in range(count):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            uuid = _text(pynvml.nvmlDeviceGetUUID(handle))
            pci = _text(pynvml.nvmlDeviceGetPciInfo(handle).busId)
            # A lost GPU still answers with its UUID and bus id, but not with a name.
            name = _nullable_text(_or_none(pynvml.nvmlDeviceGetName, handle)) or "(GPU lost)"
            serial = _nullable_text(_or_none(pynvml.nvmlDeviceGetSerial, handle))
            gpus.append(Gpu(index, handle, uuid, name, pci, serial))
        return gpus

    def system(self) -> dict[str, Any]:
        """Driver, NVML and CUDA versions (read once per session)."""
        if self._system is None:
            self._system = self._read_system()
        return self._system

    def _read_system(self) -> dict[str, Any]:
        def safe(fn: Callable[[], Any]) -> Any:
            try:
                return fn()
            except pynvml.NVMLError:
                return None

        cuda = safe(pynvml.nvmlSystemGetCudaDriverVersion)
        return {
            "driver_version": _nullable_text(safe(pynvml.nvmlSystemGetDriverVersion)),
            "nvml_version": _nullable_text(safe(pynvml.nvmlSystemGetNVMLVersion)),
            "cuda_driver_version": f"{cuda // 1000}.{cuda % 1000 // 10}" if cuda else None,
        }

    def by_uuid(self, uuids: Iterable[str]) -> list[Gpu]:
        wanted = set(uuids)
        return [g for g in self.gpus if g.uuid in wanted]


def _or_none(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except pynvml.NVMLError:
        return None


def _nullable_text(value: bytes | str | None) -> str | None:
    return None if value is None else _text(value)


def struct_version(struct: type[ctypes.Structure], version: int) -> int:
    """NVML's versioned-struct convention: sizeof | (version << 24)."""
    return ctypes.sizeof(struct) | (version << 24)
