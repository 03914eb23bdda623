"""``nvctl agent serve``: one asyncio process hosting the QUIC API, the HTTPS dashboard and
``/metrics``, with NVML on its own worker thread (:mod:`nvcontrol.agent.worker`)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bolt.network import quic
from nvcontrol.agent import db, identity, keys
from nvcontrol.agent.readcache import DEFAULT_MAX_AGE_S, ReadCache
from nvcontrol.agent.service import Caller, Service
from nvcontrol.agent.tunnel import TunnelRules, Tunnels
from nvcontrol.agent.worker import NvmlWorker
from nvcontrol.remote import api


@dataclass(frozen=True)
class ServeOptions:
    listen: tuple[str, int] = ("0.0.0.0", quic.DEFAULT_PORT)
    http: tuple[str, int] | None = None
    limits: quic.Limits = field(default_factory=quic.Limits)
    sample_interval_s: float = 1.0
    tunnels: TunnelRules = field(default_factory=TunnelRules)
    read_max_age_s: float = DEFAULT_MAX_AGE_S


async def serve(opts: ServeOptions, say: Callable[[str], None]) -> None:
    key_path, cert_path, fingerprint = identity.ensure()
    conn = db.connect()
    worker = NvmlWorker()
    worker.start()
    try:
        await worker.run(_repair(say))
        service = Service(worker, conn, ReadCache(opts.read_max_age_s))
        tunnels = Tunnels(opts.tunnels, conn)

        async def handler(ctx: quic.CallContext, method: str, params: dict[str, Any]) -> Any:
            if method == "tunnel":  # a byte stream to bolt://SERVICE:PORT (agent/tunnel.py)
                return await tunnels.serve(ctx, params)
            caller = Caller(ctx.key_fp, ctx.principal, "quic")
            return await service.call(caller, method, params, ctx.emit, ctx.messages)

        server = quic.QuicServer(
            cert_path=str(cert_path),
            key_path=str(key_path),
            authorize=lambda fp: keys.role_of(conn, fp),
            handler=handler,
            encode_error=api.encode_error,
            limits=opts.limits,
        )
        host, port = await server.start(*opts.listen)
        say(f"nvctl agent: QUIC on {host}:{port} (identity {fingerprint})")
        web = None
        if opts.http is not None:
            from nvcontrol.agent.web import WebApp

            web = WebApp(
                service,
                str(cert_path),
                str(key_path),
                opts.sample_interval_s,
                connections=lambda: len(server.connections),
            )
            h_host, h_port = await web.start(*opts.http)
            say(f"nvctl agent: HTTPS on {h_host}:{h_port}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        say("nvctl agent: stopping (live transactions are reverted)")
        server.close()
        if web is not None:
            await web.stop()
        await asyncio.sleep(0)
        await service.flush_audits()
    finally:
        worker.stop()
        conn.close()


def _repair(say: Callable[[str], None]) -> Callable[[Any], Any]:
    def repair(_m: Any) -> int:
        from nvcontrol.control import paths
        from nvcontrol.control.journal import exists

        if not exists(paths.journal_path()):
            return 0
        from nvcontrol.control.recovery import repair as run_repair

        return run_repair(say)

    return repair


def run(opts: ServeOptions) -> None:
    def say(text: str) -> None:
        print(text, flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(opts, say))
    sys.stdout.flush()
