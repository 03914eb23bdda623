"""src/commands/container.rs of the seed: ``nvctl ct`` start/stop/status/update over Bolt."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from bolt.config import Boltfile
from bolt.runtime.oci import Container
from bolt.surge import Orchestrator


class ContainerSubcommand(Enum):
    Start = "start"
    Stop = "stop"
    Status = "status"
    Update = "update"


@dataclass
class ContainerArgs:
    subcommand: ContainerSubcommand


async def container_command(args: ContainerArgs) -> None:
    match args.subcommand:
        case ContainerSubcommand.Start:
            await start_gpu_services()
        case ContainerSubcommand.Stop:
            await stop_gpu_services()
        case ContainerSubcommand.Status:
            await check_gpu_status()
        case ContainerSubcommand.Update:
            await update_drivers()


async def start_gpu_services() -> None:
    boltfile = Boltfile.from_path("Boltfile.toml")
    orchestrator = Orchestrator(boltfile)

    # Start GPU management stack
    await orchestrator.surge_up()

    print("✅ GPU management services started")


async def stop_gpu_services() -> None:
    orchestrator = Orchestrator(Boltfile.from_path("Boltfile.toml"))
    await orchestrator.surge_down()
    print("✅ GPU management services stopped")


async def check_gpu_status() -> None:
    orchestrator = Orchestrator(Boltfile.from_path("Boltfile.toml"))
    for s in await orchestrator.status():
        print(f"{s.service}: {s.status} {s.health or ''}".rstrip())


async def update_drivers() -> None:
    # Use Bolt's capsule system for driver updates
    container = Container("driver-updater")
    await container.start()

    # Wait for completion and check results
    exit_code = await container.wait()
    if exit_code == 0:
        print("✅ Driver update completed successfully")
    else:
        raise RuntimeError("❌ Driver update failed")
