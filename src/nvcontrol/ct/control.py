"""``nvctl ct`` as a library: the stack's lifecycle over :class:`bolt.surge.Orchestrator`,
and its status joined with the GPUs the services use.

Nothing here re-implements Surge: start is ``baseimage.ensure`` + a current CDI spec +
``surge_up`` + ``wait_ready``; stop is ``surge_down``; status is ``Orchestrator.status``
with each container's start time and GPU selection from the engine.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from basis.errors import UserError

if TYPE_CHECKING:
    from bolt.surge.orchestrator import Orchestrator

Say = Callable[[str], None]
READY_TIMEOUT_S = 180.0


@dataclass
class StartReport:
    images: list[str] = field(default_factory=list)
    built: list[str] = field(default_factory=list)
    cdi: str | None = None
    seconds: float = 0.0


def ensure_cdi_spec(say: Say) -> str | None:
    """Write the ``nvidia.com/gpu`` CDI spec for the driver NVML finds now, when the spec
    on disk is missing or describes another driver (nvsim instances come and go).  The
    path written, or None when there is no driver (GPU services then fail to start)."""
    from bolt.runtime import cdi
    from bolt.runtime.gpu.nvidia import NvidiaGpu, write_spec

    try:
        text = json.dumps(NvidiaGpu.cdi_spec(), indent=2) + "\n"
    except UserError as err:
        say(f"no GPU driver: {err}")
        return None
    path = Path(cdi.spec_dirs()[0]) / "nvidia.json"
    try:
        current = path.read_text()
    except OSError:
        current = None
    if current != text:
        write_spec(str(path), text)
        say(f"wrote the CDI spec {path}")
    return str(path)


def long_running(orch: Orchestrator) -> list[str]:
    """Services that stay up: every one with a health check or ports; driver-updater is
    a job that runs to completion."""
    return [n for n in orch.boltfile.services if n != "driver-updater"]


async def start(
    orch: Orchestrator, say: Say, progress: object, *, rebuild: bool = False
) -> StartReport:
    from nvcontrol.ct import baseimage

    began = time.monotonic()
    report = StartReport()
    stack_dir = orch.boltfile.directory
    report.images = await asyncio.to_thread(
        baseimage.ensure, orch.root, stack_dir, say, progress, rebuild
    )
    report.cdi = await asyncio.to_thread(ensure_cdi_spec, say)
    new_base = baseimage.BASE in report.images
    result = await orch.surge_up(build=rebuild or new_base, timeout=READY_TIMEOUT_S)
    report.built = list(result.built)
    say("waiting for the services to be healthy")
    await orch.wait_ready(long_running(orch), READY_TIMEOUT_S)
    report.seconds = time.monotonic() - began
    return report


async def stop(orch: Orchestrator, timeout: float | None = None) -> list[str]:
    return await orch.surge_down(timeout=timeout)


# ---------------------------------------------------------------------------- status


def _gpu_tokens(value: str | None) -> list[str]:
    if not value:
        return []
    return [t.strip() for t in value.removeprefix("device=").split(",") if t.strip()]


def _uses(tokens: list[str], gpu: dict[str, Any]) -> bool:
    return any(t == "all" or t == str(gpu["index"]) or t == gpu["uuid"] for t in tokens)


def _gpu_summary(info: dict[str, Any]) -> dict[str, Any]:
    clocks = info.get("clocks", {}).get("current", {})
    offsets = info.get("offsets") or {}
    pstates = offsets.get("pstates") or {}
    p0: dict[str, Any] = pstates.get("P0") or next(iter(pstates.values()), {}) or {}
    return {
        "index": info["index"],
        "uuid": info["uuid"],
        "model": info["name"],
        "temperature_c": info.get("temperature", {}).get("gpu_c"),
        "power_w": info.get("power", {}).get("usage_w"),
        "power_limit_w": info.get("power", {}).get("limit_w"),
        "clocks_mhz": {
            "graphics": clocks.get("graphics_mhz"),
            "memory": clocks.get("memory_mhz"),
        },
        "offsets_mhz": {
            "graphics": (p0.get("graphics") or {}).get("offset_mhz"),
            "memory": (p0.get("memory") or {}).get("offset_mhz"),
        },
        "services": [],
    }


async def read_gpus() -> tuple[list[dict[str, Any]], str | None]:
    """Each GPU's summary as the host's NVML reads it, or an empty list and why."""
    from nvcontrol.control.manager import GpuManager

    try:
        async with GpuManager() as m:
            infos = await m.gpu_info(None)
    except UserError as err:
        return [], str(err)
    return [_gpu_summary(i) for i in infos], None


async def status(orch: Orchestrator) -> dict[str, Any]:
    states = await orch.status()
    now = time.time()
    services = []
    gpus, gpu_error = await read_gpus()
    for s in states:
        info = await asyncio.to_thread(orch.engine.inspect, s.id)
        running = s.status == "running"
        tokens = _gpu_tokens(info.intent.gpus) if info.intent is not None else []
        used = [g["uuid"] for g in gpus if _uses(tokens, g)]
        services.append(
            {
                "service": s.service,
                "name": s.name,
                "state": s.status,
                "health": s.health,
                "exit_code": s.exit_code,
                "uptime_s": round(now - info.started, 1) if running and info.started else None,
                "restarts": s.restart_count,
                "image": s.image,
                "ports": s.ports,
                "gpus": used,
            }
        )
        for g in gpus:
            if g["uuid"] in used and running:
                g["services"].append(s.service)
    doc: dict[str, Any] = {
        "project": orch.project,
        "file": str(orch.boltfile.path),
        "services": services,
        "gpus": gpus,
    }
    if gpu_error is not None:
        doc["gpu_error"] = gpu_error
    return doc


def dashboard_urls(doc: dict[str, Any]) -> list[str]:
    """http://HOST:PORT of each port the web-interface publishes (8080 by the stack)."""
    out = []
    for s in doc["services"]:
        if s["service"] != "web-interface" or s["state"] != "running":
            continue
        for p in s["ports"]:
            host = p.get("host_ip") or "127.0.0.1"
            if host in ("0.0.0.0", "::", ""):
                host = "127.0.0.1"
            if p.get("host_port"):
                out.append(f"http://{host}:{p['host_port']}/")
    return out


def quic_listeners(doc: dict[str, Any], root: Path) -> list[str]:
    """``HOST:PORT/udp, identity FP`` of each published QUIC listener of the stack (the
    quic network's way in from other hosts)."""
    from bolt.network import identity
    from bolt.surge import quicnet

    cert = quicnet.identity_dir(root, str(doc["project"])) / "listener" / "cert.pem"
    try:
        fp = identity.cert_fingerprint(identity.load_cert(cert.read_text()))
    except (OSError, identity.KeyError_):
        fp = "unknown"
    out = []
    for s in doc["services"]:
        for p in s["ports"] if s["state"] == "running" else []:
            if p.get("protocol") == "udp" and p.get("host_port"):
                host = p.get("host_ip") or "0.0.0.0"
                out.append(f"{host}:{p['host_port']}/udp, identity {fp} ({s['service']})")
    return out


def default_root() -> Path:
    return Path(os.environ.get("BOLT_ROOT", "/var/lib/bolt"))
