"""The seed's remote GPU management example: a command to an nvcontrol agent over QUIC.

``endpoint`` is ``HOST:PORT`` of ``nvctl agent serve`` (the stack's gpu-manager serves on
3000); the client key and the pinned agent identity come from ``nvctl remote keygen`` and
the known-hosts file, as for ``nvctl --remote``.
"""

from __future__ import annotations

from typing import Any

from bolt.network.quic import QuicClient


async def remote_gpu_control(endpoint: str, gpu_params: dict[str, Any], **connect: Any) -> Any:
    client = await QuicClient.connect(endpoint, **connect)

    # Send GPU commands over QUIC
    try:
        return await client.send_command("overclock", gpu_params)
    finally:
        await client.close()
