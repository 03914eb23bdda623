from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import NvsimInstance
from tests.remote.agent_fixture import Agent, make_agent


@pytest.fixture
def agent(nvsim_gpus: NvsimInstance, tmp_path: Path) -> Iterator[Agent]:
    a = make_agent(nvsim_gpus, tmp_path / "remote")
    a.env["NVCTL_SYSTEMD_DIR"] = str(tmp_path / "remote" / "systemd")  # the agent host's units
    a.start("--idle-timeout", "2")
    try:
        yield a
    finally:
        log = a.stop()
        assert "Traceback" not in log, log
