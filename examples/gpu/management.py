"""src/gpu/management.rs of the seed: overclocking inside the gpu-manager service, with a
capsule snapshot taken first and restored when the command fails."""

from __future__ import annotations

from bolt.capsules.snapshots import Snapshot
from bolt.config import Boltfile
from bolt.runtime.gpu.nvidia import NvidiaGpu  # noqa: F401  (the seed imports it too)
from bolt.surge import Orchestrator


class GpuManager:
    def __init__(self, bolt_orchestrator: Orchestrator) -> None:
        self.bolt_orchestrator = bolt_orchestrator

    @classmethod
    async def new(cls) -> GpuManager:
        boltfile = Boltfile.from_path("Boltfile.toml")
        orchestrator = Orchestrator(boltfile)

        return cls(bolt_orchestrator=orchestrator)

    async def overclock_gpu(self, gpu_id: int, memory: int, core: int) -> None:
        # Create snapshot before overclocking
        snapshot = await Snapshot.create("pre-overclock")

        # Execute overclocking in isolated container
        try:
            await self.bolt_orchestrator.execute_in_service(
                "gpu-manager",
                f"nvidia-settings -a '[gpu:{gpu_id}]/GPUMemoryTransferRateOffset[3]={memory}'",
            )
        except Exception:
            # Restore snapshot on failure
            await snapshot.restore()
            raise
        print("✅ Overclocking applied successfully")
