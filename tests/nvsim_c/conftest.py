"""Fixtures for the C library tests: the built library, a fake state and pynvml bound to it.

pynvml loads ``libnvidia-ml.so.1`` by soname; loading the built file by path once with
RTLD_GLOBAL makes that lookup find ours.  Each test gets its own state file and its own
init/shutdown, so the library re-reads NVSIM_STATE every time.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from pathlib import Path

import pynvml
import pytest

from nvsim import build
from tests.nvsim_c import fakestate

_lib: ctypes.CDLL | None = None


@pytest.fixture(scope="session")
def libnvml() -> ctypes.CDLL:
    """The built library, loaded globally so pynvml's dlopen by soname finds it."""
    global _lib
    if _lib is None:
        path = build.build()
        _lib = ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
    return _lib


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[fakestate.FakeState]:
    """Two GeForce-like GPUs in a fresh state file that NVSIM_STATE points at."""
    st = fakestate.create(tmp_path / "nvsim")
    monkeypatch.setenv("NVSIM_STATE", str(st.directory))
    try:
        yield st
    finally:
        st.close()


@pytest.fixture
def nvml(libnvml: ctypes.CDLL, fake: fakestate.FakeState) -> Iterator[fakestate.FakeState]:
    """`fake`, with pynvml initialised against it for the duration of the test."""
    pynvml.nvmlInit()
    try:
        yield fake
    finally:
        pynvml.nvmlShutdown()


def call(name: str, *args: object) -> int:
    """Call an NVML symbol through pynvml's function table and return the raw code."""
    fn = pynvml._nvmlGetFunctionPointer(name)
    return int(fn(*args))
