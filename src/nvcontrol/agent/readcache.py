"""The agent's cache of GPU readings: a remote read of GPU state is answered from a reading
at most ``max_age_s`` old instead of calling NVML each time, and never from a reading
older than the last change made through this agent.

Rules (the whole contract):

- Only the read methods in :data:`CACHED` are cached, per method and arguments.
- A change through the agent (any mutating call, a confirmation) empties the cache when it
  starts and again when it ends, and nothing is cached while one is running: a
  transaction applies, watches and may revert inside its call, so a reading taken during
  it is never kept.
- A reading is dated by when it *started*; it is served while younger than ``max_age_s``.
  A change made on the host by something else (a local ``nvctl``) shows within that age.
- Callers that miss at once share one NVML read (one reading per key in flight).

``max_age_s = 0`` turns the cache off (every read calls NVML).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

# Not ``sample``: `gpu watch --remote` asks for a fresh reading at its own interval.
CACHED = frozenset({"gpu_list", "gpu_info", "power_status", "offsets_status", "fan_status"})
DEFAULT_MAX_AGE_S = 0.25  # NVML's own power and utilisation readings move about this often
MAX_KEYS = 64  # selectors are free text: bound what a client can make us keep


class ReadCache:
    def __init__(
        self, max_age_s: float = DEFAULT_MAX_AGE_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_age_s = max_age_s
        self.clock = clock
        self.generation = 0
        self.changing = 0  # changes in flight
        self.hits = 0
        self.misses = 0
        self._entries: dict[str, tuple[float, Any]] = {}
        self._inflight: dict[str, tuple[int, asyncio.Future[Any]]] = {}

    # ------------------------------------------------------------------ changes

    def invalidate(self) -> None:
        self.generation += 1
        self._entries.clear()

    def begin_change(self) -> None:
        self.changing += 1
        self.invalidate()

    def end_change(self) -> None:
        self.changing = max(0, self.changing - 1)
        self.invalidate()

    # ------------------------------------------------------------------ reads

    async def read(
        self, method: str, params: dict[str, Any], load: Callable[[], Awaitable[Any]]
    ) -> Any:
        if method not in CACHED or self.max_age_s <= 0 or self.changing:
            self.misses += 1
            return await load()
        key = method + json.dumps(params, sort_keys=True, separators=(",", ":"))
        hit = self._entries.get(key)
        if hit is not None and self.clock() - hit[0] < self.max_age_s:
            self.hits += 1
            return hit[1]
        shared = self._inflight.get(key)
        if shared is not None and shared[0] == self.generation:
            self.hits += 1
            return await asyncio.shield(shared[1])
        self.misses += 1
        generation, started = self.generation, self.clock()
        fut: asyncio.Future[Any] = asyncio.ensure_future(load())
        self._inflight[key] = (generation, fut)
        try:
            value = await asyncio.shield(fut)
        finally:
            if self._inflight.get(key, (None, None))[1] is fut:
                del self._inflight[key]
        if generation == self.generation and not self.changing:
            if len(self._entries) >= MAX_KEYS:
                self._entries.clear()
            self._entries[key] = (started, value)
        return value
