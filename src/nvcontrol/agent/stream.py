"""``GET /api/stream``: the sampler's readings as they are taken, one JSON object a line
(``application/x-ndjson``), for ``nvctl ct monitor`` and any other live viewer.

The first line (``"t": "hello"``) carries the GPU names and the recent history, so a
viewer's graphs start full; then one ``"t": "sample"`` line per reading, and a ``"t":
"ping"`` line when the sampler is quiet, so a viewer tells a stalled agent from a slow
one.  It is a read of the same data as ``/api/samples`` and is authorized the same way
(any role: viewer and up, by session or bearer token); a bearer token is looked up again
every few seconds, so a revoked token's stream ends.

Memory is bounded: each viewer has a short queue.  A viewer that reads slower than the
sampler writes loses its oldest readings (the next line says how many were skipped), and
one that has read nothing for ``STALL_S`` is disconnected.  At most ``MAX_VIEWERS`` streams
are open at once.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

QUEUE = 16  # readings buffered per viewer
MAX_VIEWERS = 32
HISTORY_MAX = 300
PING_S = 10.0
STALL_S = 30.0
RECHECK_S = 5.0  # how often a bearer token is looked up again

_CLOSE: dict[str, Any] = {"t": "close"}


@dataclass(eq=False)  # one per open stream, kept in a set by identity
class Viewer:
    queue: asyncio.Queue[dict[str, Any]]
    skipped: int = 0


class SampleStream:
    """Fan-out of readings to the open streams; ``publish`` never blocks."""

    def __init__(self) -> None:
        self.viewers: set[Viewer] = set()
        self.closed = False

    def publish(self, sample: dict[str, Any]) -> None:
        for v in list(self.viewers):
            if v.queue.full():
                v.queue.get_nowait()  # drop the oldest: a slow viewer skips, never piles up
                v.skipped += 1
            v.queue.put_nowait(sample)

    def close(self) -> None:
        """End every open stream (the agent is stopping)."""
        self.closed = True
        for v in list(self.viewers):
            if v.queue.full():
                v.queue.get_nowait()
            v.queue.put_nowait(_CLOSE)

    async def serve(
        self,
        req: web.Request,
        hello: dict[str, Any],
        still_allowed: Callable[[], bool],
    ) -> web.StreamResponse:
        if self.closed:
            raise web.HTTPServiceUnavailable(text="the agent is stopping")
        if len(self.viewers) >= MAX_VIEWERS:
            raise web.HTTPServiceUnavailable(
                text=json.dumps({"error": {"message": f"at most {MAX_VIEWERS} live streams"}}),
                content_type="application/json",
            )
        viewer = Viewer(asyncio.Queue(maxsize=QUEUE))
        self.viewers.add(viewer)
        resp = web.StreamResponse(
            headers={
                "Content-Type": "application/x-ndjson",
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            }
        )
        try:
            await resp.prepare(req)
            await _write(resp, {"t": "hello", **hello})
            checked = time.monotonic()
            while True:
                try:
                    sample = await asyncio.wait_for(viewer.queue.get(), PING_S)
                except TimeoutError:
                    sample = {"t": "ping", "time": round(time.time(), 3)}
                if sample is _CLOSE:
                    break
                if time.monotonic() - checked > RECHECK_S:
                    checked = time.monotonic()
                    if not still_allowed():
                        await _write(resp, {"t": "error", "message": "the token was revoked"})
                        break
                line = sample if "t" in sample else {"t": "sample", **sample}
                if viewer.skipped:
                    line = {**line, "skipped": viewer.skipped}
                    viewer.skipped = 0
                await asyncio.wait_for(_write(resp, line), STALL_S)
        except (ConnectionResetError, TimeoutError):
            pass  # the viewer went away or stopped reading: drop it
        finally:
            self.viewers.discard(viewer)
        return resp


async def _write(resp: web.StreamResponse, doc: dict[str, Any]) -> None:
    await resp.write(json.dumps(doc, separators=(",", ":"), default=str).encode() + b"\n")


def history_count(raw: str | None) -> int:
    """The ``?history=N`` query value: 0..HISTORY_MAX, default 120; anything else -> 400."""
    if raw is None:
        return 120
    if not raw.isdigit() or int(raw) > HISTORY_MAX:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": {"message": f"history must be 0..{HISTORY_MAX}"}}),
            content_type="application/json",
        )
    return int(raw)
