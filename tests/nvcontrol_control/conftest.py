"""Fixtures of the GPU-control tests."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import NvsimInstance, _start


@pytest.fixture
def shared_nvsim() -> Iterator[NvsimInstance]:
    """An instance another user can reach (pytest's tmp dirs are private to root)."""
    base = Path(tempfile.mkdtemp(prefix="nvctl-nonroot-"))
    os.chmod(base, 0o755)
    inst = _start(base, 2, "rtx4090", [])
    try:
        yield inst
    finally:
        inst.run("down", check=False)
        shutil.rmtree(base, ignore_errors=True)
