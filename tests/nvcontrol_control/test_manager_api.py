"""``nvcontrol.GpuManager``: the async library API the CLI is a thin layer over."""

from __future__ import annotations

import asyncio

import pytest

import nvcontrol
from nvcontrol.control.errors import RolledBack
from nvcontrol.control.runner import TxOptions
from tests.conftest import NvsimInstance
from tests.nvcontrol_control.helpers import needs_root, settings_of

pytestmark = [pytest.mark.nvsim, pytest.mark.root, needs_root]


def test_gpu_manager_is_exported_lazily() -> None:
    import subprocess
    import sys

    code = "import sys, nvcontrol; print('pynvml' in sys.modules, 'sqlite3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.split() == ["False", "False"]
    assert nvcontrol.GpuManager.__name__ == "GpuManager"


def test_library_applies_snapshots_and_rolls_back(nvsim_in_process: NvsimInstance) -> None:
    async def scenario() -> None:
        async with nvcontrol.GpuManager() as m:
            report = await m.set_power_limit("0", 400.0, None, TxOptions(window_s=0.1))
            assert report.committed and report.outcomes[0].applied == 400.0
            snap = await m.snapshot_create("lib", None)
            assert set(snap.gpus) == {g.uuid for g in m.select(None)}
            await m.set_fans("1", None, 80, TxOptions(window_s=0.1))
            assert await m.snapshot_diff("lib", None) != []
            restored = await m.snapshot_restore("lib", None, TxOptions(window_s=0.1))
            assert restored is not None and restored.committed
            assert await m.snapshot_diff("lib", None) == []
            with pytest.raises(RolledBack, match="not confirmed"):
                await m.apply_offsets(
                    "0",
                    30,
                    None,
                    "P0",
                    TxOptions(window_s=0.1, confirm=True, confirm_timeout_s=0.3),
                )

    asyncio.run(scenario())
    truth = settings_of(nvsim_in_process)
    assert truth[0]["power_limit_w"] == 400.0
    assert truth[0]["offsets"]["P0"]["gpc"] == 0  # the unconfirmed offset was reverted
    assert truth[1]["fans"] == [("auto", None), ("auto", None)]


def test_capsule_provider_captures_and_restores_gpu_state(nvsim_in_process: NvsimInstance) -> None:
    from nvcontrol.control.provider import GpuConfigProvider

    provider = GpuConfigProvider(window_s=0.1)

    async def scenario() -> None:
        doc = await provider.capture(None)
        assert doc is not None
        assert set(doc["gpus"]) == {g["uuid"] for g in settings_of(nvsim_in_process)}
        async with nvcontrol.GpuManager() as m:
            await m.set_power_limit(None, 300.0, None, TxOptions(window_s=0))
        changed = settings_of(nvsim_in_process)
        record = await provider.prepare(doc, None)  # the two-phase protocol: nothing written
        assert settings_of(nvsim_in_process) == changed
        await provider.commit(doc, record, None)
        assert settings_of(nvsim_in_process) == before
        await provider.abort(doc, record, None, committed=True)  # back to the prepared state
        assert settings_of(nvsim_in_process) == changed
        await provider.commit(doc, record, None)

    before = settings_of(nvsim_in_process)
    asyncio.run(scenario())
    assert settings_of(nvsim_in_process) == before
