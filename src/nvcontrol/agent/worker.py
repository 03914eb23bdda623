"""The NVML worker: one thread with its own event loop that owns the ``GpuManager``.

Every NVML call (and the journal, whose SQLite connection belongs to one thread) runs
there, never on the agent's main loop, which only moves bytes.  A transaction is a
coroutine on the worker loop, so reads keep being served while it watches its stability
window.  :class:`Job` is the handle the main loop holds: ``await job.result()``, or
``job.interrupt()`` to cancel the work on the worker (the runner then reverts) and still
learn how it ended.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable
from typing import Any

from nvcontrol.control.manager import GpuManager


class Interrupted(Exception):
    """The job was cancelled on the worker (e.g. its client went away)."""


class NvmlWorker:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.manager = GpuManager()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="nvml-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.manager.open()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            self.loop.run_forever()
        finally:
            self.manager.close()
            self.loop.close()

    def submit(self, fn: Callable[[GpuManager], Any]) -> Job:
        return Job(self, fn)

    async def run(self, fn: Callable[[GpuManager], Any]) -> Any:
        return await self.submit(fn).result()

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self._shutdown)
        self._thread.join(timeout=30)

    def _shutdown(self) -> None:
        tasks = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for t in tasks:
            t.cancel()

        async def drain() -> None:
            await asyncio.gather(*tasks, return_exceptions=True)
            self.loop.stop()

        self.loop.create_task(drain())


class Job:
    def __init__(self, worker: NvmlWorker, fn: Callable[[GpuManager], Any]) -> None:
        self._main = asyncio.get_running_loop()
        self._done: asyncio.Future[Any] = self._main.create_future()
        self._worker = worker
        self._task: asyncio.Task[Any] | None = None
        self._cancel_requested = False
        worker.call_soon(self._start, fn)

    def _start(self, fn: Callable[[GpuManager], Any]) -> None:
        self._task = self._worker.loop.create_task(self._wrap(fn))
        if self._cancel_requested:
            self._task.cancel()

    async def _wrap(self, fn: Callable[[GpuManager], Any]) -> None:
        try:
            value = fn(self._worker.manager)
            if inspect.isawaitable(value):
                value = await value
        except asyncio.CancelledError:
            self._settle(None, Interrupted("interrupted"))
        except BaseException as exc:
            self._settle(None, exc)
        else:
            self._settle(value, None)

    def _settle(self, value: Any, exc: BaseException | None) -> None:
        def settle() -> None:
            if self._done.done():
                return
            if exc is not None:
                self._done.set_exception(exc)
            else:
                self._done.set_result(value)

        self._main.call_soon_threadsafe(settle)

    def interrupt(self) -> None:
        def cancel() -> None:
            self._cancel_requested = True
            if self._task is not None:
                self._task.cancel()

        self._worker.call_soon(cancel)

    async def result(self) -> Any:
        return await asyncio.shield(self._done)
